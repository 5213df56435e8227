"""One job's state: what it asks for, its samples as they finish, when they stop.

:class:`JobState` is one job (prompt, samples, seed, :class:`StopRule`, callbacks, its drawer and
counters); the slots that decode the samples of one or several jobs together, and the step loop,
are :class:`engine.runtime.slots.SlotLoop`. Each finished sample is handed to the job's
``finish`` (a :class:`SampleMaker`, which turns it into a :class:`Sample` and passes it on) and
forgotten: a job's memory does not grow with its number of samples.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from engine.runtime.drawers import Drawer
from engine.runtime.sampling import sample_seed


@dataclass
class Sample:
    index: int
    seed: int
    tokens: list[int]
    text: str  # generated pieces, special tokens shown, end-of-generation tokens left out
    logprobs: list[float]  # model log-probability of each generated token
    stop: str  # "stop_token" | "eog" | "length" | "grammar"
    ppl: float  # perplexity of the full text (prompt + output)
    ppl_output: float  # perplexity of the generated tokens only
    n_tokens: int = 0  # tokens generated (remote backends report the count without the ids)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class GenerationStats:
    n_prompt: int = 0
    prompt_s: float = 0.0
    decode_s: float = 0.0
    tokens_generated: int = 0
    steps: int = 0
    steps_in_c: int = 0  # of steps, those run in one C call with the steps around them (RuntimeOptions.fused_steps)
    max_batch: int = 0  # slots: samples decoded together
    refills: int = 0  # samples started in the slot of a finished one (jobs with more samples than slots)
    max_new_tokens: int = 0  # the limit applied: asked, or less to stay inside the context
    layout: str = ""  # KV cache layout of the job (unified, or one stream per sequence)
    llama_s: float = 0.0  # of decode_s, the time inside llama_decode; the rest is the host's share
    sampler: str = ""  # which implementation drew the tokens (engine.runtime.drawers)
    prompt_reused: bool = False  # the prompt's cells came from the job before (RuntimeOptions.prompt_cache)
    shared_jobs: int = 1  # the most jobs that were in the slots together while this one ran (engine.runtime.slots)
    notes: list = field(default_factory=list)  # why the limit was lowered

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_generated / self.decode_s if self.decode_s > 0 else 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["tokens_per_s"] = round(self.tokens_per_s, 2)
        return d


@dataclass
class SampleMaker:
    """Turns each finished sequence into a :class:`Sample` (text, perplexities) and hands it to
    ``on_sample``; keeps nothing but the count."""

    text_of: Callable[[list[int]], bytes]  # the bytes of a run of tokens
    n_prompt_scored: int
    prompt_lp: float
    on_sample: Callable[[Sample], None] | None
    done: int = 0

    def __call__(self, index: int, seed: int, tokens: list[int], logprobs: list[float], stop: str) -> None:
        shown = tokens[:-1] if stop == "eog" else tokens  # the end-of-generation token is not text
        text = self.text_of(shown).decode("utf-8", errors="replace")
        out_lp = float(sum(logprobs))
        n_out = len(logprobs)
        ppl_out = math.exp(-out_lp / n_out) if n_out else float("nan")
        total_n = n_out + self.n_prompt_scored
        ppl = math.exp(-(out_lp + self.prompt_lp) / total_n) if total_n else float("nan")
        self.done += 1
        if self.on_sample is not None:
            self.on_sample(Sample(index=index, seed=seed, tokens=tokens, text=text, logprobs=logprobs, stop=stop,
                                  ppl=ppl, ppl_output=ppl_out, n_tokens=len(tokens)))


@dataclass
class StopRule:
    """When a sample ends: ``stop_count`` closing tags (by id in ``stop_mask``, or as text in
    ``stop_bytes``), an end-of-generation token (``eog_mask``), or ``max_new`` tokens."""

    stop_mask: np.ndarray  # bool per token id
    eog_mask: np.ndarray  # bool per token id (all False: ignore end-of-generation tokens)
    stop_count: int
    stop_bytes: list[bytes]
    max_new: int

    def __post_init__(self) -> None:
        self.ends = self.stop_mask | self.eog_mask  # a token that may end a sample
        # per token id, for the C step loop: 1 closing tag, 2 end of generation (the tag first), 0 neither
        self.end_codes = np.where(self.stop_mask, 1, np.where(self.eog_mask, 2, 0)).astype(np.uint8)


@dataclass(eq=False)
class JobState:
    """One job in the shared slots (:class:`engine.runtime.slots.SlotLoop`): what it asks for
    (prompt, samples, seed, stop rule, callbacks), its drawer once it runs, and its counters. Its
    samples depend on its own seeds only, never on the slots or on the other jobs in them.
    Built by :meth:`engine.runtime.llama.Runtime.stream`; the caller waits in :meth:`wait`."""

    ptoks: list
    n: int
    params: object  # SamplingParams
    seed: int
    rule: StopRule
    grammar: str | None
    score_prompt: bool
    cancel: threading.Event
    on_sample: Callable | None
    on_progress: Callable | None
    on_prompt: Callable | None
    stats: GenerationStats
    sampler: str = ""  # the drawer's registered name (chosen when the job is made)
    # set when it runs
    key: int = 0  # the job's number in its runtime (slots record whose sample they hold)
    drawer: Drawer | None = None
    finish: SampleMaker | None = None
    prompt_seq: int | None = None  # the KV sequence holding its prompt while it has samples to start
    started: int = 0  # samples started so far
    in_flight: int = 0  # samples in slots now
    t_dec: float = 0.0
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.n_prompt = len(self.ptoks)
        self.finished: list = []  # (index, tokens, logprobs, stop), handed on once the step's decode is launched
        self._done = threading.Event()

    def seed_of(self, i: int) -> int:
        return sample_seed(self.seed, i)

    @property
    def pending(self) -> int:
        return self.n - self.started

    @property
    def done(self) -> int:
        return self.finish.done if self.finish is not None else 0

    def end(self, error: BaseException | None = None) -> None:
        """The job is off the slots (all samples handed on, or ``error``); wakes :meth:`wait`."""
        if self._done.is_set():
            return
        self.error = error
        if self.drawer is not None:
            try:
                self.drawer.close()
            finally:
                self.drawer = None
        self._done.set()

    @property
    def ended(self) -> bool:
        return self._done.is_set()

    def wait(self) -> GenerationStats:
        """Block until the job ends; its stats, or its error raised here (in the caller's thread).
        An interrupt while waiting (Ctrl-C) cancels the job."""
        try:
            while not self._done.wait(0.1):
                pass
        except BaseException:
            self.cancel.set()
            raise
        if self.error is not None:
            raise self.error
        return self.stats


def collect(stream, prompt, n, params, seed, on_sample=None, **kwargs):
    """Run ``stream(prompt, n, params, seed, on_sample=..., **kwargs)`` and also keep its samples:
    (the samples in index order, the stats). What ``generate`` is, for any backend's ``stream``."""
    samples: list[Sample] = []

    def keep(s: Sample) -> None:
        samples.append(s)
        if on_sample is not None:
            on_sample(s)

    stats = stream(prompt, n, params, seed, on_sample=keep, **kwargs)
    samples.sort(key=lambda s: s.index)
    return samples, stats


__all__ = ["JobState", "StopRule", "SampleMaker", "Sample", "GenerationStats", "collect"]
