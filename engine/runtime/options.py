"""The runtime's settings, passed in: :class:`RuntimeOptions`.

Nothing under ``engine/runtime`` reads the environment. The edges (the engine process,
``engine/process/server.py``; the ``logos`` command) build the options from it with
:meth:`RuntimeOptions.from_mapping` (``os.environ`` passed in) and hand them to
:meth:`engine.runtime.llama.Runtime.load`; tests and benchmarks build them directly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping

SAMPLERS = ("logos", "numpy", "native", "backend")

# environment variable -> option field (read only by from_mapping, at the edge)
ENVIRONMENT = {
    "LOGOS_SAMPLER": "sampler",
    "LOGOS_REFILL": "refill",
    "LOGOS_KV_STREAMS": "kv_streams",
    "LOGOS_SHARE_SLOTS": "share_slots",
    "LOGOS_PARALLEL_HOST_WORK": "parallel_host_work",
    "LOGOS_FUSED_STEPS": "fused_steps",
    "LOGOS_THREADED_DRAWS": "threaded_draws",
    "LOGOS_PROMPT_CACHE": "prompt_cache",
    "LOGOS_THREADS": "n_threads",
    "LOGOS_LLAMA_LOG": "llama_log",
}


@dataclass(frozen=True)
class RuntimeOptions:
    """How the runtime runs a job; none of these changes which samples a seed gives, except
    ``sampler="native"`` (llama.cpp's chain draws other samples for the same seed).

    - ``sampler``: who draws the tokens (:mod:`engine.runtime.drawers`): "logos" (the reference
      order for a whole step in one C call, or numpy where the extension is not built; same draws),
      "numpy" (the numpy implementation even where the C one is built), "native" (llama.cpp's own
      chain in the same order, one C call per sample and step), "backend" (that chain inside
      llama.cpp's compute graph, :mod:`engine.runtime.backend_sampling`; other draws than the
      default, same distribution; where the device cannot run it, "logos"). A name registered with
      :func:`engine.runtime.drawers.register` works too.
    - ``refill``: a finished sample's slot starts the job's next sample at once (False: the slots
      wait for each other and the samples start in waves; for comparison).
    - ``kv_streams``: one KV stream per sequence when it gives the job at least as many slots
      (False: always the unified cache; for comparison).
    - ``share_slots``: jobs queued while a job runs join its slots where they can
      (:mod:`engine.runtime.slots`; False: each job waits for the one before it; for comparison).
    - ``parallel_host_work``: from this many logits per step (rows x vocabulary) the host's share
      of a step is spread over threads (numpy and llama.cpp release the GIL); below it one thread
      is faster than the hand-off.
    - ``fused_steps``: a lone job's steps (draw, record, close, start its next samples in the freed
      slots, llama_decode) run in one C call (``engine.runtime._stepper.run_steps``) where the
      compiled sampler draws and the host would not spread the step over threads (False: every
      step in Python; for comparison). Same samples either way.
    - ``threaded_draws``: the steps in C spread a step's draws over llama.cpp's threads where both
      use the same OpenMP (the CPU backend on Linux; its threads wait between two decodes). False:
      the draws in one thread; for comparison. Same samples either way.
    - ``prompt_cache``: a job whose prompt is the one the slots still hold from the job before
      (same tokens, same KV layout, nothing decoded in between) starts from those cells: its prompt
      is not decoded again and not copied to the slots (its log-probabilities and last row are
      kept with it). False: every job decodes its prompt; for comparison. Same samples either way.
    - ``n_threads``: llama.cpp's threads (None: the planner's choice, one per physical core).
    - ``llama_log``: echo llama.cpp's log to stderr (it is always kept in memory for error messages).
    """

    sampler: str = "logos"
    refill: bool = True
    kv_streams: bool = True
    share_slots: bool = True
    parallel_host_work: int = 1 << 18
    fused_steps: bool = True
    threaded_draws: bool = True
    prompt_cache: bool = True
    n_threads: int | None = None
    llama_log: bool = False

    def replace(self, **changes) -> "RuntimeOptions":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> "RuntimeOptions":
        """The options an environment asks for (``os.environ`` passed in by the edge). A value that
        does not parse keeps the default: a tuning knob never stops the engine."""
        out = cls()
        changes: dict = {}
        if env.get("LOGOS_SAMPLER"):
            changes["sampler"] = str(env["LOGOS_SAMPLER"]).strip()
        for name in ("LOGOS_REFILL", "LOGOS_KV_STREAMS", "LOGOS_SHARE_SLOTS", "LOGOS_FUSED_STEPS",
                     "LOGOS_THREADED_DRAWS", "LOGOS_PROMPT_CACHE"):
            if name in env:
                changes[ENVIRONMENT[name]] = str(env[name]).strip() != "0"
        if "LOGOS_LLAMA_LOG" in env:
            changes["llama_log"] = str(env["LOGOS_LLAMA_LOG"]).strip() == "1"
        for name in ("LOGOS_PARALLEL_HOST_WORK", "LOGOS_THREADS"):
            try:
                value = int(env[name])
            except (KeyError, ValueError, TypeError):
                continue
            if value > 0:
                changes[ENVIRONMENT[name]] = value
        return out.replace(**changes)


__all__ = ["RuntimeOptions", "ENVIRONMENT", "SAMPLERS"]
