"""The drawer interface: how a job turns each step's logits into one token per live slot.

A job decodes its samples in *slots* 0..W-1 (one KV sequence each; the slots may be shared with
other jobs, :mod:`engine.runtime.slots`, each job with its own drawer for all W slots, of which it
uses those that hold its samples). Per step the slot loop asks each job's drawer once::

    tokens, logprobs = drawer.draw(rows, live)

- ``live``: int64 array of the slots that draw now, in increasing order;
- ``rows``: float32 ``(len(live), n_vocab)``, the step's logits, row ``j`` belonging to slot
  ``live[j]`` (a view into llama.cpp's buffer, valid until the next decode; a drawer may change it
  in place only if it puts the raw values back before returning), or ``None``: draw the *first*
  token of each live slot's sample from the prompt's last row (``setup.prompt_row``);
- returns ``tokens`` (int64, one per live slot; ``-1`` only when ``can_end`` is true and nothing
  more may be drawn, e.g. a grammar that admits no further token) and ``logprobs`` (float64: the
  token's log-probability under the *raw* logits, before penalty, temperature or truncation; the
  samples' perplexities are made of these, without a second pass).

``drawer.restart(slot, seed)`` gives the slot to the job's next sample (seeded with ``seed``): the
drawer forgets what that slot has seen (its penalty history is the prompt alone again, its random
stream starts from ``seed``). ``drawer.close()`` frees what the drawer holds (native samplers).
One sample's draws depend on its own seed only, never on its slot or on the other samples.

A drawer is built by a factory from a :class:`DrawerSetup` that holds everything it may need,
explicitly: the sampling parameters, each slot's first seed, the prompt's tokens and last row of
logits, the vocabulary size, the host thread pool (:class:`HostWork`), and the native handles
(:class:`engine.runtime._internals.LlamaContext` and ``LlamaModel``) for drawers that call
llama.cpp's samplers. A drawer never reaches into the runtime.

Factories are registered by name (:func:`register`); ``RuntimeOptions.sampler`` names the one a
job uses ("logos", "numpy", "native" are built in, in :mod:`engine.runtime.draw`; a job with a
GBNF grammar uses "grammar"). A drawer module registers itself on import, and the module that
runs jobs (:mod:`engine.runtime.llama`) imports the built-in ones, so that this module, the
interface, imports none of them (no import circle), e.g.::

    from engine.runtime import drawers
    drawers.register("backend", BackendDrawer, label="llama.cpp backend sampler",
                     available=lambda setup: ...)

``available(setup)`` (optional) says whether the factory can serve this job (False: the runtime
falls back to "logos" and says so in ``GenerationStats.notes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from engine.runtime.sampling import SamplingParams


@runtime_checkable
class Drawer(Protocol):
    """What a job asks of its drawer (see the module docstring for the contract)."""

    can_end: bool  # may return token -1 (nothing more may be drawn for that slot)

    def draw(self, rows: np.ndarray | None, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def restart(self, slot: int, seed: int) -> None: ...

    def close(self) -> None: ...


class HostWork:
    """The host's share of a step spread over worker threads when it is large (``n * n_vocab`` at
    least ``threshold`` logits); numpy and llama.cpp release the GIL. Owned by the runtime (one
    pool per loaded model), lent to each job's drawer."""

    def __init__(self, n_threads: int, threshold: int, n_vocab: int, draw_threads: int = 1) -> None:
        self.n_threads = max(1, int(n_threads))
        self.threshold = int(threshold)
        self.n_vocab = int(n_vocab)
        self.draw_threads = max(1, int(draw_threads))  # threads of a step's draws in C (draw.draw_threads)
        self._pool = None

    @property
    def started(self) -> bool:
        return self._pool is not None

    def _get_pool(self):
        if self._pool is None and self.n_threads >= 2:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.n_threads, thread_name_prefix="logos-host")
        return self._pool

    def spreads(self, n: int) -> bool:
        """Whether a step of ``n`` rows is large enough to spread over threads (and there are some)."""
        return n > 1 and n * self.n_vocab >= self.threshold and self.n_threads >= 2

    def chunked(self, n: int, fn: Callable[[int, int], Any]) -> list:
        """``fn(lo, hi)`` over [0, n) in one chunk per worker thread (results in order), or in this
        thread when the work is small or there is no second thread."""
        pool = self._get_pool() if self.spreads(n) else None
        if pool is None:
            return [fn(0, n)]
        k = min(n, self.n_threads)
        bounds = [(n * i // k, n * (i + 1) // k) for i in range(k)]
        futures = [pool.submit(fn, lo, hi) for lo, hi in bounds[1:]]
        first = fn(*bounds[0])
        return [first] + [f.result() for f in futures]

    def lse(self, rows: np.ndarray) -> np.ndarray:
        """log-sum-exp of each row of logits (float64), for the tokens' log-probabilities."""

        def part(lo, hi):
            r = rows[lo:hi]
            mx = r.max(axis=1)
            return mx + np.log(np.exp(r - mx[:, None]).sum(axis=1, dtype=np.float64))

        return np.concatenate(self.chunked(len(rows), part))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


@dataclass
class DrawerSetup:
    """Everything a drawer factory may use, handed over explicitly."""

    params: SamplingParams
    seeds: Sequence[int]  # the seed of the sample each slot starts with (len = slots)
    prompt_seen: np.ndarray  # int64, the prompt's distinct token ids (the penalty's first history)
    prompt_row: np.ndarray  # float32 (n_vocab,), raw logits after the prompt (a copy)
    lse_prompt: float | None  # log-sum-exp of prompt_row (None: computed at the first prompt_lse())
    n_vocab: int
    host: HostWork
    context: Any = None  # engine.runtime._internals.LlamaContext (the last decode's outputs)
    model: Any = None  # engine.runtime._internals.LlamaModel (vocabulary, sampler chains)
    grammar: str | None = None  # GBNF text, for the "grammar" drawer
    window: int = 0  # tokens one sequence may hold (the penalty window of llama.cpp's chain)
    extra: dict = field(default_factory=dict)  # for a drawer's own settings

    def prompt_lse(self) -> float:
        """The log-sum-exp of ``prompt_row`` (``lse_prompt``; computed once, at the first call, where
        None: a job whose first draws run in C never needs it)."""
        if self.lse_prompt is None:
            self.lse_prompt = float(self.host.lse(self.prompt_row[None, :])[0])
        return self.lse_prompt

    @property
    def width(self) -> int:
        return len(self.seeds)


Factory = Callable[[DrawerSetup], Drawer]


@dataclass(frozen=True)
class _Entry:
    factory: Factory
    label: str | Callable[[], str]
    available: Callable[[DrawerSetup], bool] | None
    shares: bool = False


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, factory: Factory, *, label: str | Callable[[], str] | None = None,
             available: Callable[[DrawerSetup], bool] | None = None, shares: bool = False) -> None:
    """Make ``factory`` the drawer called ``name`` (``RuntimeOptions.sampler``); ``label`` (text,
    or a function giving it) is what stats and provenance record (default: the name).
    ``shares``: its drawers draw correctly for any subset of a step's rows handed to them (a
    copy, row j for slot live[j]), so jobs using it can share the slots with other jobs
    (:mod:`engine.runtime.slots`); a drawer that reads the context's outputs itself cannot."""
    _REGISTRY[name] = _Entry(factory, label or name, available, bool(shares))


def registered() -> list[str]:
    return sorted(_REGISTRY)


def label(name: str) -> str:
    entry = _REGISTRY.get(name)
    if entry is None:
        return name
    return entry.label() if callable(entry.label) else entry.label


def make(name: str, setup: DrawerSetup) -> tuple[Drawer, str]:
    """The drawer ``name`` for this job and the label it runs under. An unknown name is a
    ValueError naming the known ones."""
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return entry.factory(setup), label(name)


def shares(name: str) -> bool:
    """Whether jobs drawn by ``name`` may share the slots with other jobs (see :func:`register`)."""
    entry = _REGISTRY.get(name)
    return entry is not None and entry.shares


def usable(name: str, setup: DrawerSetup) -> bool:
    entry = _REGISTRY.get(name)
    return entry is not None and (entry.available is None or bool(entry.available(setup)))


__all__ = ["Drawer", "DrawerSetup", "HostWork", "register", "registered", "make", "usable", "label", "shares"]
