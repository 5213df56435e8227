"""llama.cpp's own quantiser (``llama_model_quantize``), the thin native call behind
``engine.models.quantize``. Kept here because engine/runtime is the only importer of llama_cpp."""

from __future__ import annotations

import ctypes
from pathlib import Path


def quantize_file(src: str | Path, dst: str | Path, ftype: int, nthread: int = 0) -> None:
    """Write ``dst`` as ``src`` quantised to llama file type ``ftype`` (gguf.LlamaFileType).

    Blocks until done (llama.cpp has no progress callback for quantisation). Raises RuntimeError
    when llama.cpp reports a failure.
    """
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = int(ftype)
    params.nthread = int(nthread)
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize returned {rc} for {src}")
