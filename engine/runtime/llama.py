"""The llama.cpp runtime: load a GGUF as the planner says, tokenise with special tokens, and decode
the N samples of a job together.

The layers, as in llama-cpp-python (``_internals.py`` thin handles, policy on top):
- :mod:`engine.runtime._internals`: thin handles on llama.cpp's model, context (with its batch and
  memory) and sampler chains; no policy;
- :mod:`engine.runtime.drawers` / :mod:`engine.runtime.draw`: who draws the tokens, behind one
  small interface (``draw(rows, live) -> (tokens, logprobs)``);
- :mod:`engine.runtime.job`: one job's state (:class:`~engine.runtime.job.JobState`: its slots,
  tokens, log-probabilities, stop state) and its step loop;
- this module, :class:`Runtime`: loading (the planner's plan), the KV layout and the slots of a
  job, the prompt, and the job from request to samples;
- settings come in as :class:`~engine.runtime.options.RuntimeOptions`; nothing here reads the
  environment (the engine process and the ``logos`` command build the options from it).

How a job runs (:meth:`Runtime.stream`):
1. the prompt is evaluated once, in sequence 0 (with log-probabilities of every prompt token, so
   the full-text perplexity needs no second pass);
2. the prompt's KV cache is copied to sequence ids 1..W (``llama_memory_seq_cp``: in the unified
   cache the cells are shared, not duplicated);
3. all W sequences advance together: one ``llama_decode`` per step with one token per live
   sequence; the logits of the whole batch are sampled in the reference order by one drawer call
   (by default one C call for the step, each sample with its own seed), and the stop checks are
   array operations over the live sequences;
4. a sample stops on its closing tag by token id (tags typed as control tokens render as empty
   text, so a text stop would never fire), on an end-of-generation token, or at the length limit;
5. a job with more samples than slots (sequences that fit in the context) keeps its batch full:
   when a sample finishes, its slot drops the sample's tokens from its cache (keeping its copy of
   the prompt's) and starts the job's next sample in the same step (with that sample's own seed,
   so the samples do not depend on the slots); the prompt stays in sequence 0;
6. each finished sample is handed to ``on_sample`` and forgotten (:meth:`Runtime.stream`): the
   job's memory does not grow with N; :meth:`Runtime.generate` collects them into a list;
7. jobs queued while a job runs share its slots where they can (:mod:`engine.runtime.slots`: a
   joining job's prompt is evaluated in sequence 0 or a freed slot, and freed slots go to the job
   with the fewest samples in slots); each ``stream`` call waits for its own job only.

Cancellation is a ``threading.Event`` checked between steps and, inside llama.cpp, a native abort
flag polled between graph nodes (:class:`engine.runtime.native.AbortFlag`, no Python callback).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from engine.runtime import _internals as native
from engine.runtime import backend_sampling as _backend_sampling  # noqa: F401 - registers "backend"
from engine.runtime import draw as _draw  # registers "logos", "numpy", "native", "grammar"
from engine.runtime import drawers
from engine.runtime._internals import Cancelled, LlamaContext, LlamaModel, RuntimeLoadError
from engine.runtime.drawers import DrawerSetup, HostWork
from engine.runtime.gguf_facts import ModelFileError, read_facts
from engine.runtime.job import GenerationStats, JobState, Sample, StopRule, collect
from engine.runtime.native import (_LOG_LINES, _LOG_LOCK, AbortFlag, _backend_init, _llama, _llama_error_lines,
                                   recent_log, set_log_echo)
from engine.runtime.options import RuntimeOptions
from engine.runtime.planner import Plan, PlanError, plan as make_plan
from engine.runtime.sampling import SamplingParams, log_softmax_at
from engine.runtime.slots import SlotScheduler

PROMPT_CHUNK = 128  # prompt tokens per llama_decode when every prompt token's logits are needed
STREAM_PAD = 256  # per-sequence KV streams are sized in steps of this many tokens (fewer context rebuilds)
MAX_SLOTS = 256  # sequences decoded together, at most (the planner chooses within it)


class Runtime:
    """One loaded model with one context. :meth:`stream` may be called from several threads: the
    jobs go through one queue and share the slots where they can (:mod:`engine.runtime.slots`);
    each call returns when its own job ends. ``options`` (:class:`RuntimeOptions`) may be
    replaced between jobs (a job reads them when it starts)."""

    shares_slots = True  # jobs queued together run in one set of slots (the engine process may submit concurrently)

    def __init__(self, options: RuntimeOptions | None = None) -> None:
        self.options = options or RuntimeOptions()
        self.path: Path | None = None
        self.facts = None
        self.plan: Plan | None = None
        self.backend = None
        self.model: LlamaModel | None = None
        self.context: LlamaContext | None = None
        self.host: HostWork | None = None
        self.abort_flag: AbortFlag | None = None  # llama.cpp polls it between graph nodes
        self._n_ctx_job = 0
        self._slots = SlotScheduler(self)
        self._rules: dict[tuple, StopRule] = {}  # (stop ids, count, texts, max_new, ignore_eos) -> the rule
        self._closed = False

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike, *, n_gpu_layers: int | str = "auto", n_ctx: int | None = None,
             n_threads: int | None = None, n_seq_max: int | None = None,
             progress: Callable[[float], None] | None = None,
             abort: threading.Event | None = None, allow_overcommit: bool = False,
             options: RuntimeOptions | None = None) -> "Runtime":
        """Check the file, plan memory, load. ``n_seq_max``: sequences of the context (slots + 1
        for the prompt); None lets the planner choose from the device and its free memory.
        Raises ModelFileError (bad file), PlanError (does not fit; the plan's reasons say why),
        RuntimeLoadError (llama.cpp refused, with its message) or Cancelled (``abort`` set
        during loading)."""
        from engine.runtime.backend import backend_info

        options = options or RuntimeOptions()
        facts = read_facts(path)
        ll = _llama()
        set_log_echo(options.llama_log)
        _backend_init(ll)
        with _LOG_LOCK:
            _LOG_LINES.clear()  # the error quoted below must be this load's
        rt = cls(options)
        rt.path = Path(path)
        rt.facts = facts
        rt.backend = backend_info()
        rt.plan = make_plan(facts, rt.backend, n_ctx=n_ctx,
                            n_seq_max=None if n_seq_max is None else min(int(n_seq_max), MAX_SLOTS + 1),
                            n_gpu_layers=n_gpu_layers, n_threads=n_threads or options.n_threads)
        if not rt.plan.fits and not allow_overcommit:
            raise PlanError(f"{path}: model does not fit in memory: " + "; ".join(rt.plan.reasons))

        def _progress(frac: float) -> bool:
            if progress is not None:
                try:
                    progress(frac)
                except Exception:  # noqa: BLE001 - a failing observer must not break loading
                    pass
            return not (abort is not None and abort.is_set())

        rt.model = LlamaModel.load(ll, rt.path, rt.plan.n_gpu_layers, _progress)
        if rt.model is None:
            if abort is not None and abort.is_set():
                raise Cancelled("model loading cancelled")
            why = _llama_error_lines() or "llama.cpp could not load it"
            if facts.architecture not in _supported_architectures():
                why = f"unsupported architecture {facts.architecture!r} ({why})"
            raise RuntimeLoadError(f"{path}: {why}")
        rt.abort_flag = AbortFlag(ll)
        rt.context = LlamaContext(rt.model, rt.abort_flag, max(PROMPT_CHUNK, rt.plan.n_seq_max))
        draws = _draw.draw_threads(rt.plan.n_threads, rt.backend.system_info) if options.threaded_draws else 1
        rt.host = HostWork(rt.plan.n_threads, options.parallel_host_work, rt.model.n_vocab, draws)
        try:
            rt._default_context()
        except RuntimeLoadError:
            rt.close()
            raise
        rt._n_ctx_job = rt.context.n_ctx
        return rt

    def _open_context(self, n_ctx: int, n_seq: int, unified: bool) -> None:
        """(Re)create the llama.cpp context with this KV layout, unless it already has it.

        ``unified``: one KV buffer shared by all sequences (the prompt's cells are shared, but every
        token attends over the cells of every sequence, masked). Not unified: one stream per
        sequence, each ``n_ctx / n_seq`` cells, the prompt copied into each stream; a token then
        attends over its own sequence only, which is what a batch of samples with a short shared
        prompt wants (llama.cpp's own advice for ``n_seq_max > 1`` without a long common prefix)."""
        self.context.open(n_ctx, n_seq, unified, self.plan.n_batch, self.plan.n_threads)

    def _default_context(self) -> None:
        """The load-time layout: one unified cache of the planned size."""
        self._open_context(int(self.plan.n_ctx), int(self.plan.n_seq_max), unified=True)

    @property
    def loaded(self) -> bool:
        # not the context's pointer: the slot loop's thread may be re-creating the context for
        # another KV layout while a caller submits a job
        return bool(self.context is not None and self.model is not None and not self._closed)

    @property
    def n_vocab(self) -> int:
        return self.model.n_vocab if self.model is not None else 0

    @property
    def n_ctx(self) -> int:
        """Tokens one job may use in all (prompt once + every sample's output)."""
        return self._n_ctx_job

    def describe(self) -> dict:
        return {"path": str(self.path), "architecture": self.facts.architecture,
                "n_vocab": self.n_vocab, "n_ctx": self.n_ctx, "backend": self.backend.backend,
                "n_gpu_layers": self.plan.n_gpu_layers, "plan": self.plan.as_dict()}

    def close(self) -> None:
        self._closed = True
        self._slots.shutdown()
        if self.host is not None:
            self.host.close()
        if self.context is not None:
            self.context.free()
        if self.model is not None:
            self.model.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ vocabulary
    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        """Token ids of ``text``. Special-token parsing is on: a tag that is an added token becomes
        its one id instead of ``<``, ``Protein``, ``S``, ``>``. BOS is added when the model says so."""
        return self.model.tokenize(text, add_special, parse_special)

    def piece(self, token: int) -> bytes:
        """The bytes of one token with special tokens rendered (``special=True``)."""
        return self.model.piece(token)

    def detokenize(self, tokens: Iterable[int]) -> str:
        return self.model.text_of(list(tokens)).decode("utf-8", errors="replace")

    def token_id(self, text: str) -> int | None:
        """The id of ``text`` when it is exactly one token (a tag), else None."""
        ids = self.tokenize(text, add_special=False, parse_special=True)
        return ids[0] if len(ids) == 1 else None

    def is_eog(self, token: int) -> bool:
        return bool(self.model.eog_mask()[token])

    def is_control(self, token: int) -> bool:
        return self.model.is_control(token)

    def eos_id(self) -> int:
        return self.model.eos()

    # ------------------------------------------------------------------ jobs
    def sampler_name(self, grammar=None) -> str:
        """Which drawer a job runs with (recorded in provenance: the llama.cpp chain draws other
        samples for the same seed; compiled and numpy draw the same)."""
        return drawers.label("grammar" if grammar else self.options.sampler)

    def generate(self, prompt: str | list[int], n: int = 1, params: SamplingParams | None = None,
                 seed: int = 0, *, on_sample: Callable[[Sample], None] | None = None,
                 **kwargs) -> tuple[list[Sample], GenerationStats]:
        """:meth:`stream`, with the samples also collected (in index order) and returned. For jobs
        whose samples are consumed as they come (the engine process) use :meth:`stream`."""
        return collect(self.stream, prompt, n, params, seed, on_sample, **kwargs)

    def stream(self, prompt: str | list[int], n: int = 1, params: SamplingParams | None = None,
               seed: int = 0, *, stop_ids: Iterable[int] = (), stop_count: int = 1,
               stop_texts: Iterable[str] = (), grammar: str | None = None,
               cancel: threading.Event | None = None, score_prompt: bool = True,
               on_sample: Callable[[Sample], None] | None = None,
               on_progress: Callable[[int, int, int, float], None] | None = None,
               on_prompt: Callable[[int, int], None] | None = None,
               ignore_eos: bool = False) -> GenerationStats:
        """Generate ``n`` samples of one prompt, handing each to ``on_sample`` as it finishes (in
        the order they finish) and keeping none. ``stop_ids``: token ids that close the record;
        generation stops after ``stop_count`` of them. ``stop_texts``: text stops, for closing tags
        that are not one token. ``on_progress`` is called with (samples done, n, tokens generated,
        seconds) after each step; ``on_prompt`` with (prompt tokens evaluated, prompt tokens) after
        each prompt chunk. ``ignore_eos``: do not stop on end-of-generation tokens (fixed-length
        runs, for benchmarks)."""
        if not self.loaded:
            raise RuntimeError("no model loaded")
        params = params or SamplingParams()
        params.check()
        if n < 1:
            raise ValueError("n must be >= 1")
        cancel = cancel or threading.Event()
        stats = GenerationStats()
        ptoks = self.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
        if not ptoks:
            raise ValueError("empty prompt")
        n_prompt = len(ptoks)
        stats.n_prompt = n_prompt
        n_ctx = self.n_ctx
        if n_prompt + 1 > n_ctx:
            raise ValueError(f"the prompt has {n_prompt} tokens; the context holds {n_ctx}")
        max_new = self._new_token_limit(n_prompt, int(params.max_new_tokens), stats)
        rule = self._stop_rule(stop_ids, stop_count, stop_texts, max_new, ignore_eos)
        job = JobState(ptoks=ptoks, n=n, params=params, seed=seed, rule=rule, grammar=grammar,
                       score_prompt=score_prompt, cancel=cancel, on_sample=on_sample, on_progress=on_progress,
                       on_prompt=on_prompt, stats=stats,
                       sampler="grammar" if grammar else self.options.sampler)
        return self._slots.submit(job).wait()  # the job runs in the slot loop's thread

    def _stop_rule(self, stop_ids: Iterable[int], stop_count: int, stop_texts: Iterable[str], max_new: int,
                   ignore_eos: bool) -> StopRule:
        """The job's StopRule; the last few dozen are kept (a task's jobs ask the same one, and its
        masks cost a few numpy calls over the vocabulary). Its arrays are read-only."""
        n_vocab = self.n_vocab
        ids = tuple(sorted({int(t) for t in stop_ids if 0 <= int(t) < n_vocab}))
        stop_bytes = [s.encode() for s in stop_texts if s]
        key = (ids, int(stop_count), tuple(stop_bytes), int(max_new), bool(ignore_eos))
        rule = self._rules.get(key)
        if rule is None:
            stop_mask = np.zeros(n_vocab, dtype=bool)
            stop_mask[list(ids)] = True
            rule = StopRule(stop_mask=stop_mask,
                            eog_mask=self.model.eog_mask() if not ignore_eos else np.zeros(n_vocab, dtype=bool),
                            stop_count=stop_count, stop_bytes=stop_bytes, max_new=max_new)
            for a in (rule.stop_mask, rule.eog_mask, rule.ends, rule.end_codes):
                a.setflags(write=False)
            if len(self._rules) >= 64:
                self._rules.clear()
            self._rules[key] = rule
        return rule

    def _new_token_limit(self, n_prompt: int, max_new: int, stats: GenerationStats) -> int:
        """``max_new_tokens`` lowered to what the context and the model's training length allow."""
        n_ctx = self.n_ctx
        room = n_ctx - n_prompt
        if room < 1:
            raise ValueError(f"no room to generate: prompt {n_prompt} tokens, context {n_ctx}")
        if max_new > room:
            stats.notes.append(f"max_new_tokens lowered from {max_new} to {room}: context {n_ctx} tokens")
            max_new = room
        train_ctx = int(getattr(self.facts, "n_ctx_train", 0) or 0)
        if train_ctx and n_prompt + max_new > train_ctx:
            if train_ctx - n_prompt < 1:
                raise ValueError(f"the prompt has {n_prompt} tokens; the model was trained on {train_ctx}")
            stats.notes.append(f"max_new_tokens lowered from {max_new} to {train_ctx - n_prompt}: "
                               f"the model was trained on sequences of {train_ctx} tokens")
            max_new = train_ctx - n_prompt
        stats.max_new_tokens = max_new
        return max_new

    def _layout(self, n: int, n_prompt: int, max_new: int, stats: GenerationStats) -> tuple[int, bool]:
        """Choose the KV layout for a job of ``n`` samples and return its slots (samples decoded
        together) and whether the cache is unified (one stream per sequence otherwise: only then
        may other jobs join the slots).

        Unified (the load-time context): the prompt's cells are shared, ``room // max_new``
        slots. One stream per sequence: each sample attends over its own prompt copy and output
        only, which is cheaper as soon as several samples decode together; used when it gives the
        job at least as many slots as the unified layout, within the same token budget."""
        n_ctx = self.n_ctx
        seq_cap = self.plan.n_seq_max - 1 if self.plan.n_seq_max > 1 else 1
        unified_cap = max(1, min(seq_cap, (n_ctx - n_prompt) // max_new))
        per_seq = -(-(n_prompt + max_new) // STREAM_PAD) * STREAM_PAD
        streams_cap = min(n, seq_cap, n_ctx // per_seq - 1)
        if self.options.kv_streams and n >= 2 and streams_cap >= 2 and streams_cap >= min(n, unified_cap):
            try:
                self._open_context(per_seq * (streams_cap + 1), streams_cap + 1, unified=False)
                stats.layout = f"{streams_cap + 1} streams of {per_seq} tokens"
                return streams_cap, False
            except RuntimeLoadError as exc:  # e.g. out of memory: the unified layout still works
                stats.notes.append(f"per-sequence KV streams unavailable ({exc}); unified cache used")
        self._default_context()
        stats.layout = f"unified {n_ctx} tokens"
        return unified_cap, True

    def _evaluate_prompt(self, ptoks: list[int], score_prompt: bool, cancel: threading.Event,
                         on_prompt, stats: GenerationStats, seq: int = 0) -> tuple[float, np.ndarray]:
        """The prompt in sequence ``seq``: returns the sum of its tokens' log-probabilities (0 without
        ``score_prompt``) and a read-only copy of the logits after its last token (kept with the
        prompt for the next job: ``engine.runtime.slots.KeptPrompt``)."""
        ctx = self.context
        n_prompt = len(ptoks)
        t0 = time.perf_counter()
        prompt_lp = 0.0
        last_row = None
        chunk = PROMPT_CHUNK if score_prompt else ctx.batch.cap
        for start in range(0, n_prompt, chunk):
            if cancel.is_set():
                raise Cancelled("cancelled")
            part = ptoks[start:start + chunk]
            k = len(part)
            is_last = start + k == n_prompt
            if score_prompt:
                want = True
            else:
                want = np.zeros(k, dtype=np.int8)
                want[-1] = 1 if is_last else 0
            ctx.decode(part, np.arange(start, start + k), seq, want)
            rows = ctx.logits(k if score_prompt else (1 if is_last else 0))
            if score_prompt:
                nxt = np.array(ptoks[start + 1:start + k + 1], dtype=np.int64)
                if len(nxt):
                    prompt_lp += float(log_softmax_at(rows[:len(nxt)], nxt).sum())
            if is_last:
                last_row = np.array(rows[-1], dtype=np.float32, copy=True)
                last_row.setflags(write=False)
            if on_prompt is not None:
                on_prompt(start + k, n_prompt)
        stats.prompt_s = time.perf_counter() - t0
        return prompt_lp, last_row

    def _make_drawer(self, job: JobState, last_row: np.ndarray, seeds: list[int], seqs: np.ndarray):
        """The job's drawer for the slots (``seeds``: the seed each slot starts with) and its
        label; ``job.sampler`` becomes the drawer's name (the default one where the asked one
        cannot serve this job: a tuning knob never stops a job, the stats' notes say so)."""
        setup = DrawerSetup(params=job.params, seeds=seeds,
                            prompt_seen=np.unique(np.array(job.ptoks, dtype=np.int64)), prompt_row=last_row,
                            lse_prompt=None, n_vocab=self.n_vocab,
                            host=self.host, context=self.context, model=self.model, grammar=job.grammar,
                            window=max(1, self.n_ctx), extra={"seqs": seqs.tolist()})
        name = job.sampler
        if not job.grammar and not drawers.usable(name, setup):
            why = ("is unknown (known: " + ", ".join(drawers.registered()) + ")"
                   if name not in drawers.registered() else "cannot serve this job")
            job.stats.notes.append(f"sampler {name!r} {why}; the default one drew the tokens")
            name = "logos"
        job.sampler = name
        return drawers.make(name, setup)

    # ------------------------------------------------------------------ other uses of the model
    def candidates(self, row: np.ndarray, history: Iterable[int], params: SamplingParams) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, probabilities) that the native chain draws from for one row of logits after
        ``history`` (most probable first); compare :func:`engine.runtime.sampling.distribution`."""
        ll = self.model.ll
        chain = native.reference_chain(ll, params, 0, self.n_vocab, self.n_ctx, history, draw=False)
        try:
            view, _ = native.apply_sampler(ll, chain, np.asarray(row, dtype=np.float32), self.n_vocab)
        finally:
            native.free_sampler(ll, chain)
        logits = view["logit"].astype(np.float64)
        order = np.lexsort((view["id"], -logits))
        ids, logits = view["id"][order].astype(np.int64), logits[order]
        if params.temperature == 0:
            return ids[:1], np.array([1.0])
        probs = np.exp(logits - logits.max())
        return ids, probs / probs.sum()

    def token_logprobs(self, tokens: list[int]) -> list[float]:
        """log p(token i | tokens before it) for i >= 1, by one forward pass over the sequence
        (the separate perplexity pass of the reference pipeline; generation does not need it)."""
        if not self.loaded:
            raise RuntimeError("no model loaded")
        # in the slot loop's thread, between loops: a decode from another thread would start a
        # second OpenMP team and slow every later decode (engine.runtime.slots)
        return self._slots.call(lambda: self._token_logprobs(tokens))

    def run_in_loop(self, fn):
        """``fn()`` in the thread that decodes this runtime's jobs, between jobs (for llama.cpp
        calls outside jobs, e.g. a benchmark's own decode loop); its result, or its error raised."""
        if not self.loaded:
            raise RuntimeError("no model loaded")
        return self._slots.call(fn)

    def _token_logprobs(self, tokens: list[int]) -> list[float]:
        with self._slots.busy:  # not while a slot loop uses the context
            ctx = self.context
            if len(tokens) > ctx.n_ctx_seq:
                self._default_context()
            ctx.clear()
            out: list[float] = []
            for start in range(0, len(tokens), PROMPT_CHUNK):
                part = tokens[start:start + PROMPT_CHUNK]
                ctx.decode(part, np.arange(start, start + len(part)), 0, True)
                nxt = np.array(tokens[start + 1:start + len(part) + 1], dtype=np.int64)
                if len(nxt):
                    out.extend(log_softmax_at(ctx.logits(len(part))[:len(nxt)], nxt).tolist())
            ctx.clear()
            return out


def _supported_architectures() -> tuple[str, ...]:
    from engine.runtime.gguf_facts import TESTED_ARCHITECTURES

    return TESTED_ARCHITECTURES


native_seed = native.native_seed

__all__ = ["recent_log", "_backend_init", "Runtime", "RuntimeOptions", "Sample", "GenerationStats", "Cancelled",
           "RuntimeLoadError", "ModelFileError", "PlanError", "SamplingParams"]
