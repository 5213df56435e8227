"""One job's decoding state: the samples in their slots, what they have drawn, when they stop.

:class:`JobState` holds a job's arrays (the sample each slot decodes, its tokens and their
log-probabilities so far, its closing-tag count, its text when a closing tag is matched as text)
and the methods that change them: :meth:`JobState.record` (append a step's draws and find the
samples that stop), :meth:`JobState.close` / :meth:`JobState.restart` (a slot's sample ends; the
slot takes the job's next sample), :meth:`JobState.run` (the step loop). Its memory is
``slots x max_new_tokens``, whatever the number of samples: each finished sample is handed to
``finish`` (a :class:`SampleMaker`, which turns it into a :class:`Sample` and passes it on) and
forgotten.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from engine.runtime._internals import Cancelled, LlamaContext
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
    max_batch: int = 0  # slots: samples decoded together
    refills: int = 0  # samples started in the slot of a finished one (jobs with more samples than slots)
    max_new_tokens: int = 0  # the limit applied: asked, or less to stay inside the context
    layout: str = ""  # KV cache layout of the job (unified, or one stream per sequence)
    llama_s: float = 0.0  # of decode_s, the time inside llama_decode; the rest is the host's share
    sampler: str = ""  # which implementation drew the tokens (engine.runtime.drawers)
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

    piece: Callable[[int], bytes]
    n_prompt_scored: int
    prompt_lp: float
    on_sample: Callable[[Sample], None] | None
    done: int = 0

    def __call__(self, index: int, seed: int, tokens: list[int], logprobs: list[float], stop: str) -> None:
        shown = tokens[:-1] if stop == "eog" else tokens  # the end-of-generation token is not text
        text = b"".join(self.piece(t) for t in shown).decode("utf-8", errors="replace")
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


@dataclass
class JobState:
    """A job of ``n`` samples decoded in ``len(seqs)`` slots (one KV sequence each); see
    :meth:`run`. Built by :meth:`engine.runtime.llama.Runtime.stream`."""

    ctx: LlamaContext
    drawer: Drawer
    n: int
    seed: int
    seqs: np.ndarray  # the KV sequence of each slot (all 0 in a one-sequence context)
    n_prompt: int
    rule: StopRule
    finish: Callable[[int, int, list, list, str], None]  # (index, seed, tokens, logprobs, stop)
    piece: Callable[[int], bytes]
    stats: GenerationStats
    refill: bool = True

    def __post_init__(self) -> None:
        width = len(self.seqs)
        self.width = width
        self.multi = self.ctx.n_seq > 1
        self.index = np.arange(width, dtype=np.int64)  # the sample each slot decodes (-1: none)
        self.length = np.zeros(width, dtype=np.int64)  # its tokens so far
        self.toks = np.zeros((width, self.rule.max_new), dtype=np.int64)
        self.lps = np.zeros((width, self.rule.max_new), dtype=np.float64)
        self.stops = np.zeros(width, dtype=np.int64)  # closing tags seen
        self.texts = [b""] * width if self.rule.stop_bytes else None
        self.started = width  # samples started so far
        self.finished: list = []  # (index, tokens, logprobs, stop), handed on once the decode is launched
        self.fresh: list[int] = []  # slots restarted in this step (their first tokens are drawn next)

    def seed_of(self, i: int) -> int:
        return sample_seed(self.seed, i)

    def close(self, s: int, stop: str) -> bool:
        """The sample in slot s is done; True when the slot starts the job's next sample.
        Without refilling the slots wait until all are free."""
        k = int(self.length[s])
        self.finished.append((int(self.index[s]), self.toks[s, :k].tolist(), self.lps[s, :k].tolist(), stop))
        self.index[s] = -1
        if not self.refill or self.started == self.n:
            return False
        self.restart(s)
        return True

    def restart(self, s: int) -> None:
        """Slot s takes the job's next sample (its own seed). The slot keeps its copy of the
        prompt's cache and drops the finished sample's tokens (copying the prompt again would
        cost a buffer copy between KV streams)."""
        i = self.started
        self.index[s] = i
        self.length[s] = 0
        self.stops[s] = 0
        if self.texts is not None:
            self.texts[s] = b""
        self.drawer.restart(s, self.seed_of(i))
        self.ctx.seq_rm(int(self.seqs[s]), self.n_prompt)
        self.started += 1
        self.stats.refills += 1

    def record(self, slots: np.ndarray, tok: np.ndarray, lp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Append each slot's drawn token; returns the slots that go on and their tokens (the
        others are closed; those restarted are added to ``fresh``)."""
        rule = self.rule
        if self.drawer.can_end:
            dead = tok < 0  # e.g. the grammar admits nothing more
            if dead.any():
                for j in np.flatnonzero(dead).tolist():
                    if self.close(int(slots[j]), "grammar"):
                        self.fresh.append(int(slots[j]))
                slots, tok, lp = slots[~dead], tok[~dead], lp[~dead]
        length = self.length
        length[slots] += 1
        t = length[slots]
        self.toks[slots, t - 1] = tok
        self.lps[slots, t - 1] = lp
        self.stats.tokens_generated += len(slots)
        at_limit = t >= rule.max_new
        texts = self.texts
        if texts is None and not rule.ends[tok].any() and not at_limit.any():
            return slots, tok
        hit = rule.stop_mask[tok]
        if rule.stop_count > 1:
            self.stops[slots] += hit
            hit = hit & (self.stops[slots] >= rule.stop_count)
        eog = ~rule.stop_mask[tok] & rule.eog_mask[tok]
        if texts is not None:
            for j in np.flatnonzero(~hit & ~eog).tolist():
                s = int(slots[j])
                texts[s] += self.piece(int(tok[j]))
                if any(texts[s].endswith(sb) for sb in rule.stop_bytes):
                    self.stops[s] += 1
                    hit[j] = self.stops[s] >= rule.stop_count
        done = hit | eog | at_limit
        for j in np.flatnonzero(done).tolist():
            if self.close(int(slots[j]), "stop_token" if hit[j] else "eog" if eog[j] else "length"):
                self.fresh.append(int(slots[j]))
        return slots[~done], tok[~done]

    def _start_wave(self) -> None:
        """Without refilling: every slot is free, the next samples start together."""
        for s in range(min(self.width, self.n - self.started)):
            self.restart(s)
            self.fresh.append(s)

    def run(self, cancel: threading.Event, on_progress: Callable[[int, int, int, float], None] | None,
            t_dec: float) -> None:
        """Decode the job. Slots start with samples 0..W-1. Per step: one draw for every live slot,
        the stop checks as array operations, the restarts (a restarted slot draws its sample's
        first token from the prompt's last row in the same step, so every decode carries one
        token for every busy slot until the job runs out of samples: llama.cpp decodes a batch
        with a gap in its sequences more slowly), one llama_decode for the survivors in slot
        order, then, while that decode runs (on a GPU), the finished samples are handed on and
        progress is reported. Python loops only over the samples that finish (and over the live
        ones when a closing tag is not one token and has to be matched as text)."""
        ctx, drawer, stats = self.ctx, self.drawer, self.stats
        seqs, multi, n, n_prompt = self.seqs, self.multi, self.n, self.n_prompt
        live = np.arange(self.width)
        rows = None
        while live.size:
            if cancel.is_set():
                raise Cancelled("cancelled")
            tok, lp = drawer.draw(rows, live)  # every live slot (at the first step from the prompt's row)
            self.fresh = []
            going, going_tok = self.record(live, tok, lp)
            parts = [(going, going_tok)]
            while True:
                if (not self.fresh and not self.refill and self.started < n
                        and not any(len(g) for g, _ in parts)):
                    self._start_wave()
                if not self.fresh:
                    break
                slots = np.array(self.fresh, dtype=np.int64)
                self.fresh = []
                ftok, flp = drawer.draw(None, slots)  # the restarted samples' first tokens
                parts.append(self.record(slots, ftok, flp))
            if len(parts) > 1:  # the batch goes in slot order
                going = np.concatenate([g for g, _ in parts])
                going_tok = np.concatenate([t for _, t in parts])
                order = np.argsort(going, kind="stable")
                going, going_tok = going[order], going_tok[order]
            if going.size:
                # advance every going sequence by its last token in one batch; on a GPU the call
                # returns before the work is done, and the bookkeeping below overlaps it
                t_ll = time.perf_counter()
                ctx.decode(going_tok, n_prompt - 1 + self.length[going], seqs[going] if multi else 0, True)
                stats.llama_s += time.perf_counter() - t_ll
            stats.steps += 1
            finish = self.finish
            for item in self.finished:
                i = item[0]
                finish(i, self.seed_of(i), *item[1:])
            self.finished.clear()
            if on_progress is not None:
                on_progress(self.done, n, stats.tokens_generated, time.perf_counter() - t_dec)
            live = going
            rows = ctx.logits(len(live)) if live.size else None

    @property
    def done(self) -> int:
        return getattr(self.finish, "done", 0)


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
