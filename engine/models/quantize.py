"""Quantise a GGUF with llama.cpp's own quantiser, with progress and an atomic result.

``quantize(src, dst, "Q4_K_M", progress)`` runs ``llama_model_quantize`` (through
engine.runtime.quantize) in a worker thread and reports progress as the output grows towards
its estimated size. The output is written as ``DST.part`` and renamed only after it passes the
GGUF check, so a failed or interrupted run leaves nothing that looks like a model.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.modelfiles.errors import ModelFileError
from engine.modelfiles.gguf_info import read_header

Progress = Callable[[str, int, int], None]

# name -> (gguf.LlamaFileType value, approximate bits per weight of the 2-D tensors)
QUANT_TYPES: dict[str, tuple[int, float]] = {
    "F32": (0, 32.0),
    "F16": (1, 16.0),
    "BF16": (32, 16.0),
    "Q8_0": (7, 8.5),
    "Q6_K": (18, 6.56),
    "Q5_K_M": (17, 5.7),
    "Q4_K_M": (15, 4.9),
    "Q4_0": (2, 4.5),
}
DEFAULT_QUANTS = ("F16", "Q8_0", "Q5_K_M", "Q4_K_M")


@dataclass
class QuantizeResult:
    path: Path
    quant: str
    size: int
    seconds: float


def _estimate_size(src: Path, bpw: float) -> int:
    h = read_header(src)
    total = h.data_start
    for t in h.tensors:
        n = 1
        for d in t.shape:
            n *= d
        total += int(n * (bpw / 8 if len(t.shape) > 1 else 4))
    return max(total, 1)


def quantize(src: str | Path, dst: str | Path, quant: str, progress: Progress | None = None,
             threads: int | None = None, poll_s: float = 0.2) -> QuantizeResult:
    src, dst = Path(src), Path(dst)
    quant = quant.upper()
    if quant not in QUANT_TYPES:
        raise ValueError(f"unknown quantisation {quant!r}; choose from {', '.join(QUANT_TYPES)}")
    read_header(src)  # refuse a partial or foreign input before llama.cpp sees it
    if src.resolve() == dst.resolve():
        raise ModelFileError(dst, "output would overwrite the input")
    ftype, bpw = QUANT_TYPES[quant]
    estimate = _estimate_size(src, bpw)
    dst.parent.mkdir(parents=True, exist_ok=True)
    part = dst.with_name(dst.name + ".part")
    part.unlink(missing_ok=True)
    from engine.runtime.quantize import quantize_file

    error: list[BaseException] = []

    def work():
        try:
            quantize_file(src, part, ftype, threads or max(1, (os.cpu_count() or 2)))
        except BaseException as exc:  # reported on the calling thread
            error.append(exc)

    t0 = time.perf_counter()
    worker = threading.Thread(target=work, name=f"quantize-{quant}", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(poll_s)
            if progress:
                size = part.stat().st_size if part.exists() else 0
                progress("quantize", min(size, estimate - 1), estimate)
        if error:
            raise ModelFileError(src, f"llama.cpp could not quantise to {quant}: {error[0]}")
        read_header(part)
        os.replace(part, dst)
    except BaseException:
        if not worker.is_alive():
            part.unlink(missing_ok=True)
        raise
    size = dst.stat().st_size
    if progress:
        progress("quantize", estimate, estimate)
    return QuantizeResult(dst, quant, size, time.perf_counter() - t0)
