"""Sampling in the order of the LOGOS reference pipeline (Hugging Face ``generate`` with do_sample).

Per step and per sequence: repetition penalty over every token seen so far (prompt and output),
then temperature, then top-k, then top-p, then min-p (0 = off, the reference has none), then one
draw from the remaining distribution with the sequence's own random generator. llama.cpp's default
chain differs (temperature last, min-p 0.05), which is why the runtime samples here, in numpy,
from the logits llama.cpp returns for the whole batch.

The log-probability recorded for perplexity is the model's own (log-softmax of the raw logits),
as a separate perplexity pass would compute it, not the probability after the warpers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

# The authors' commands (LOGOS-GRAMMAR.md): temperature 1.2, top-p 0.85, repetition penalty 1.05;
# top-k 50 is the transformers default; min-p 0 keeps parity with the reference.
REFERENCE_DEFAULTS = {
    "temperature": 1.2,
    "top_k": 50,
    "top_p": 0.85,
    "min_p": 0.0,
    "repetition_penalty": 1.05,
    "max_new_tokens": 1000,
}
# upper bounds: far above any useful value, low enough that no arithmetic overflows
MAX_TEMPERATURE = 1e6
MAX_PENALTY = 1e6
MAX_TOKENS = 1 << 24


@dataclass
class SamplingParams:
    temperature: float = 1.2
    top_k: int = 50
    top_p: float = 0.85
    min_p: float = 0.0
    repetition_penalty: float = 1.05
    max_new_tokens: int = 1000

    @classmethod
    def from_dict(cls, data: dict | None, base: "SamplingParams | None" = None) -> "SamplingParams":
        """Build from a request; unknown keys are an error (named), values are checked."""
        out = cls(**asdict(base)) if base is not None else cls()
        if not data:
            out.check()
            return out
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown sampling field(s): {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        for key, value in data.items():
            if value is None:
                continue
            kind = type(getattr(out, key))
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError(f"sampling field {key!r} must be a number, got {value!r}")
            try:
                number = float(value)
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"sampling field {key!r} must be a number, got {value!r}") from None
            if not math.isfinite(number):
                raise ValueError(f"sampling field {key!r} must be a finite number, got {value!r}")
            if kind is int:
                if number != int(number):
                    raise ValueError(f"sampling field {key!r} must be a whole number, got {value!r}")
                setattr(out, key, int(number))
            else:
                setattr(out, key, number)
        out.check()
        return out

    def check(self) -> None:
        """Every field a finite number in its range (NaN fails every comparison, so it is named
        first: a NaN temperature or penalty would otherwise pass and the sampler draw garbage)."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            if not math.isfinite(float(value)):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0 (0 = greedy)")
        if self.temperature > MAX_TEMPERATURE:
            raise ValueError(f"temperature must be <= {MAX_TEMPERATURE:g}")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0 (0 = off)")
        if self.top_k > MAX_TOKENS:
            raise ValueError(f"top_k must be <= {MAX_TOKENS}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError("top_p must be in (0, 1]")
        if not 0.0 <= self.min_p < 1.0:
            raise ValueError("min_p must be in [0, 1)")
        if self.repetition_penalty <= 0:
            raise ValueError("repetition_penalty must be > 0 (1 = off)")
        if self.repetition_penalty > MAX_PENALTY:
            raise ValueError(f"repetition_penalty must be <= {MAX_PENALTY:g}")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.max_new_tokens > MAX_TOKENS:
            raise ValueError(f"max_new_tokens must be <= {MAX_TOKENS}")

    def as_dict(self) -> dict:
        return asdict(self)


def log_softmax_at(logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """log p(token) under the raw logits, one row per token. logits: (n, V) float32."""
    logits = logits.astype(np.float64, copy=False)
    m = logits.max(axis=1)
    lse = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
    return logits[np.arange(len(tokens)), tokens] - lse


def apply_repetition_penalty(row: np.ndarray, seen: np.ndarray, penalty: float) -> None:
    """In place, as transformers' RepetitionPenaltyLogitsProcessor: divide positive scores of seen
    tokens by the penalty, multiply negative ones."""
    if penalty == 1.0 or seen.size == 0:
        return
    vals = row[seen]
    row[seen] = np.where(vals < 0, vals * penalty, vals / penalty)


def distribution(row: np.ndarray, seen: np.ndarray, params: SamplingParams,
                 mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(candidate token ids, their probabilities) after penalty, temperature, top-k, top-p and
    min-p, for one row of logits (length V). ``seen``: unique token ids of the sequence so far.
    ``mask``: optional bool array, True = allowed (constrained decoding). Temperature 0 = greedy."""
    scores = np.array(row, dtype=np.float32, copy=True)
    apply_repetition_penalty(scores, seen, params.repetition_penalty)
    if mask is not None:
        scores[~mask] = -np.inf
    if params.temperature == 0:
        return np.array([int(np.argmax(scores))]), np.array([1.0])
    scores = scores / np.float32(params.temperature)
    vocab = scores.shape[0]
    k = params.top_k if 0 < params.top_k < vocab else vocab
    if k < vocab:
        # keep every token whose score reaches the k-th largest (ties kept, as transformers does)
        kth = np.partition(scores, vocab - k)[vocab - k]
        cand = np.nonzero(scores >= kth)[0]
    else:
        cand = np.nonzero(np.isfinite(scores))[0]
    if cand.size == 0:
        return np.array([int(np.argmax(row))]), np.array([1.0])
    cs = scores[cand].astype(np.float64)
    order = np.argsort(-cs, kind="stable")
    cand, cs = cand[order], cs[order]
    probs = np.exp(cs - cs[0])
    probs /= probs.sum()
    if params.top_p < 1.0:
        # transformers removes the tail whose cumulative probability (ascending) is <= 1 - top_p;
        # in descending order: keep tokens until the cumulative mass first reaches top_p.
        cum = np.cumsum(probs)
        keep = int(np.searchsorted(cum, params.top_p, side="left")) + 1
        keep = max(1, min(keep, cand.size))
        cand, probs = cand[:keep], probs[:keep]
        probs = probs / probs.sum()
    if params.min_p > 0:
        ok = probs >= params.min_p * probs[0]
        cand, probs = cand[ok], probs[ok]
        probs = probs / probs.sum()
    return cand, probs


def _draw(probs: np.ndarray, u: float) -> int:
    """Inverse-CDF draw (the procedure numpy's Generator.choice uses with ``p``)."""
    cdf = np.cumsum(probs)
    cdf /= cdf[-1]
    return min(int(np.searchsorted(cdf, u, side="right")), probs.size - 1)


def sample_row(row: np.ndarray, seen: np.ndarray, params: SamplingParams,
               rng: np.random.Generator, mask: np.ndarray | None = None) -> int:
    """Draw one token from one row of logits with the sequence's own generator (one uniform per
    draw, as :func:`sample_batch` does, so both give the same token for the same generator state)."""
    cand, probs = distribution(row, seen, params, mask)
    if params.temperature == 0:
        return int(cand[0])
    return int(cand[_draw(probs, rng.random())])


def sample_batch(rows: np.ndarray, seen: list[np.ndarray], params: SamplingParams,
                 rngs: list[np.random.Generator], masks: list | None = None) -> np.ndarray:
    """One token per row of ``rows`` (N, V), vectorised over the batch: the same distribution as
    :func:`distribution` row by row (candidates ordered by score, then token id) and the same
    draw as :func:`sample_row`. The number of numpy calls does not grow with N (a decode step of
    a small model takes about a millisecond, so per-row Python work would be the bottleneck)."""
    n, vocab = rows.shape
    scores = np.array(rows, dtype=np.float32, copy=True)
    rp = params.repetition_penalty
    if rp != 1.0:
        lens = [len(x) for x in seen]
        if sum(lens):
            r_idx = np.repeat(np.arange(n), lens)
            c_idx = np.concatenate(seen).astype(np.int64, copy=False)
            vals = scores[r_idx, c_idx]
            scores[r_idx, c_idx] = np.where(vals < 0, vals * rp, vals / rp)
    if masks is not None:
        for j, m in enumerate(masks):
            if m is not None:
                scores[j, ~m] = -np.inf
    if params.temperature == 0:
        return scores.argmax(axis=1)
    scores /= np.float32(params.temperature)
    k = params.top_k if 0 < params.top_k < vocab else vocab
    kk = min(vocab, k + 16)  # room for ties at the k-th score
    ar = np.arange(n)[:, None]
    if kk < vocab:
        idx = np.argpartition(scores, vocab - kk, axis=1)[:, vocab - kk:]  # the kk largest, unordered
    else:
        idx = np.broadcast_to(np.arange(vocab), (n, vocab))
    vals = scores[ar, idx].astype(np.float64)
    order = np.lexsort((idx, -vals), axis=1)
    cand = idx[ar, order]
    vals = vals[ar, order]
    kth = vals[:, k - 1:k]
    keep = (vals >= kth) & np.isfinite(vals)
    probs = np.where(keep, np.exp(vals - vals[:, :1]), 0.0)
    probs /= probs.sum(axis=1, keepdims=True)
    if params.top_p < 1.0:
        cum = np.cumsum(probs, axis=1)
        reach = cum >= params.top_p
        count = keep.sum(axis=1)
        first = np.where(reach.any(axis=1), reach.argmax(axis=1) + 1, count)
        first = np.clip(first, 1, count)
        probs = np.where(np.arange(probs.shape[1])[None, :] < first[:, None], probs, 0.0)
        probs /= probs.sum(axis=1, keepdims=True)
    if params.min_p > 0:
        probs = np.where(probs >= params.min_p * probs[:, :1], probs, 0.0)
        probs /= probs.sum(axis=1, keepdims=True)
    # the kept candidates are a prefix of each row (scores descending), so the draw below is
    # _draw(probs[:last], u) for every row at once: cumsum of trailing zeros adds nothing
    exact = keep.all(axis=1) if kk < vocab else np.zeros(n, dtype=bool)  # more ties than the margin
    u = np.array([0.0 if exact[j] else rngs[j].random() for j in range(n)])
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    last = np.maximum((probs > 0).sum(axis=1), 1)
    pos = np.minimum((cdf <= u[:, None]).sum(axis=1), last - 1)
    out = cand[np.arange(n), pos].astype(np.int64)
    for j in np.flatnonzero(exact):  # exact per-row path
        out[j] = sample_row(rows[j], np.asarray(seen[j]), params, rngs[j], masks[j] if masks is not None else None)
    return out


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of a job seeded with ``seed`` (recorded in provenance)."""
    return (int(seed) * 1_000_003 + int(index)) % (2**63)
