"""Does a GGUF behave like the Hugging Face checkpoint it came from? And what does each
quantisation cost?

``check_parity(gguf, hf_dir)``:
1. tokenises a corpus of grammar strings with the HF tokenizer (child process, see
   hf_reference) and with llama.cpp (special tokens parsed, the model's own BOS rule):
   ``token_parity`` is the fraction of strings with identical ids;
2. runs both models on the same (HF) ids and compares next-token logits at every position:
   ``argmax_agreement`` (fraction of positions), ``max_abs_logit_diff``, ``mean_abs_logit_diff``;
3. quantises the GGUF to each requested type with llama.cpp and reports perplexity on the same
   held-out text for each, with its relative change against F16 and its argmax agreement with F16.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from engine.modelfiles.gguf_info import inspect_gguf
from engine.models.hf_reference import load_logits, run_reference
from engine.models.quantize import DEFAULT_QUANTS, quantize

Progress = Callable[[str, int, int], None]


def default_corpus() -> list[str]:
    text = resources.files("engine.models").joinpath("data/grammar_heldout.txt").read_text(encoding="utf-8")
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def read_corpus(path: str | Path) -> list[str]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    out = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    if not out:
        raise ValueError(f"{path}: no text lines")
    return out


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def nll_sum(logits: np.ndarray, ids: list[int]) -> tuple[float, int]:
    """Summed negative log-likelihood of ids[1:] given the logits after each earlier token."""
    if len(ids) < 2:
        return 0.0, 0
    lp = _log_softmax(logits[: len(ids) - 1])
    picked = lp[np.arange(len(ids) - 1), np.asarray(ids[1:])]
    return float(-picked.sum()), len(ids) - 1


@dataclass
class QuantReport:
    quant: str
    size: int
    perplexity: float
    ppl_delta_vs_f16: float          # (ppl - ppl_f16) / ppl_f16
    argmax_agreement_vs_f16: float
    seconds: float


@dataclass
class ParityReport:
    gguf: str
    hf: str
    n_texts: int
    n_positions: int
    token_parity: float
    argmax_agreement: float
    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    perplexity_hf: float
    perplexity_gguf: float
    gguf_quant: str
    token_mismatches: list[dict] = field(default_factory=list)
    quantizations: list[QuantReport] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _score(path: Path, seqs: list[list[int]], n_ctx: int, threads: int | None):
    """(logits per sequence, perplexity) with llama.cpp."""
    from engine.runtime.logits import Scorer

    out, nll, n = [], 0.0, 0
    with Scorer(path, n_ctx=n_ctx, n_threads=threads) as s:
        for ids in seqs:
            lg = s.logits(ids)
            a, b = nll_sum(lg, ids)
            nll, n = nll + a, n + b
            out.append(lg)
    return out, math.exp(nll / max(n, 1))


def check_parity(gguf_path: str | Path, hf_dir: str | Path, *, texts: list[str] | None = None,
                 max_tokens: int = 256, quants: tuple[str, ...] | list[str] = DEFAULT_QUANTS,
                 threads: int | None = None, progress: Progress | None = None,
                 workdir: str | Path | None = None) -> ParityReport:
    from engine.runtime.logits import Scorer

    gguf_path, hf_dir = Path(gguf_path), Path(hf_dir)
    info = inspect_gguf(gguf_path, with_hash=False)
    texts = list(texts) if texts is not None else default_corpus()
    steps = 3 + len(quants)
    with tempfile.TemporaryDirectory(prefix="logos-parity-", dir=workdir) as tmp:
        tmp = Path(tmp)
        if progress:
            progress("reference", 0, steps)
        hf_ids = run_reference(hf_dir, texts, tmp, max_tokens=max_tokens, threads=threads or 2)
        if progress:
            progress("tokenize", 1, steps)
        with Scorer(gguf_path, vocab_only=True) as s:
            ll_ids = [s.tokenize(t) for t in texts]
        mismatches = [{"text": t, "hf": a, "gguf": b} for t, a, b in zip(texts, hf_ids, ll_ids) if a != b]
        seqs = [ids[:max_tokens] for ids in hf_ids]
        n_ctx = max(len(x) for x in seqs) + 8
        if progress:
            progress("logits", 2, steps)
        ll_logits, ppl_gguf = _score(gguf_path, seqs, n_ctx, threads)
        agree = total = 0
        max_diff = 0.0
        abs_sum = 0.0
        nll_hf = 0.0
        n_hf = 0
        for i, (ids, lg) in enumerate(zip(seqs, ll_logits)):
            ref = load_logits(tmp, i)
            if ref.shape[1] != lg.shape[1]:  # HF may pad its output beyond the GGUF vocabulary
                width = min(ref.shape[1], lg.shape[1])
                ref, lg = ref[:, :width], lg[:, :width]
            agree += int((ref.argmax(-1) == lg.argmax(-1)).sum())
            total += len(ids)
            diff = np.abs(ref - lg)
            max_diff = max(max_diff, float(diff.max()))
            abs_sum += float(diff.mean()) * len(ids)
            a, b = nll_sum(ref, ids)
            nll_hf, n_hf = nll_hf + a, n_hf + b
        report = ParityReport(
            gguf=str(gguf_path), hf=str(hf_dir), n_texts=len(texts), n_positions=total,
            token_parity=1.0 - len(mismatches) / max(len(texts), 1),
            argmax_agreement=agree / max(total, 1), max_abs_logit_diff=max_diff,
            mean_abs_logit_diff=abs_sum / max(total, 1), perplexity_hf=math.exp(nll_hf / max(n_hf, 1)),
            perplexity_gguf=ppl_gguf, gguf_quant=info.quant, token_mismatches=mismatches[:5],
        )
        if quants:
            report.quantizations = compare_quantizations(gguf_path, seqs, quants, tmp, n_ctx, threads, progress,
                                                         step0=3, steps=steps, source_quant=info.quant)
    if progress:
        progress("done", steps, steps)
    return report


def compare_quantizations(gguf_path: Path, seqs: list[list[int]], quants, tmp: Path, n_ctx: int,
                          threads: int | None, progress: Progress | None = None, *, step0: int = 0,
                          steps: int = 0, source_quant: str | None = None) -> list[QuantReport]:
    """Perplexity of each quantisation of ``gguf_path`` on ``seqs``, against its F16 version."""
    import time

    quants = [q.upper() for q in quants]
    order = ["F16"] + [q for q in quants if q != "F16"]
    results: dict[str, tuple[list[np.ndarray], float, int, float]] = {}
    for k, q in enumerate(order):
        if progress:
            progress(f"quantize {q}", step0 + k, steps)
        t0 = time.perf_counter()
        if q == source_quant:
            path = gguf_path
        else:
            path = quantize(gguf_path, tmp / f"model-{q}.gguf", q, threads=threads).path
        lg, ppl = _score(path, seqs, n_ctx, threads)
        results[q] = (lg, ppl, path.stat().st_size, time.perf_counter() - t0)
        if path != gguf_path:
            path.unlink(missing_ok=True)
    base_lg, base_ppl = results["F16"][0], results["F16"][1]
    out = []
    for q in order:
        if q not in quants:
            continue
        lg, ppl, size, secs = results[q]
        agree = sum(int((a.argmax(-1) == b.argmax(-1)).sum()) for a, b in zip(lg, base_lg))
        total = sum(len(a) for a in lg)
        out.append(QuantReport(q, size, ppl, (ppl - base_ppl) / base_ppl, agree / max(total, 1), secs))
    return out
