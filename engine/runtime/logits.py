"""Full next-token logits of whole sequences, for the model parity and perplexity checks
(``engine.models.parity``). Thin calls into llama_cpp: this is the only package allowed to import it.

``Scorer(path)`` loads a model once (CPU, no planning: the checks run on small batches),
``tokenize(text)`` tokenises as the runtime does (model's own BOS rule, special tokens parsed),
``logits(ids)`` returns a float32 array (len(ids), n_vocab).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.runtime.native import NativeHandles
from engine.runtime.native import tokenize as native_tokenize


def _init(ll) -> None:
    try:  # share the runtime's log capture and backend initialisation when present
        from engine.runtime.llama import _backend_init

        _backend_init(ll)
    except ImportError:
        ll.llama_backend_init()


class Scorer(NativeHandles):
    def __init__(self, path: str | Path, n_ctx: int = 512, n_threads: int | None = None, vocab_only: bool = False,
                 exact: bool = True):
        """``exact``: keep the KV cache in F32 and flash attention off, so that an F32 model's logits
        differ from a float32 reference by rounding only (the default F16 cache adds ~1e-2)."""
        import llama_cpp as ll

        _init(ll)
        self._ll = ll
        self.path = Path(path)
        self.n_ctx = int(n_ctx)
        mparams = ll.llama_model_default_params()
        mparams.n_gpu_layers = 0
        mparams.vocab_only = bool(vocab_only)
        self._model = ll.llama_model_load_from_file(str(path).encode(), mparams)
        if not self._model:
            raise RuntimeError(f"{path}: llama.cpp could not load the model")
        self._vocab = ll.llama_model_get_vocab(self._model)
        self.n_vocab = int(ll.llama_vocab_n_tokens(self._vocab))
        self._ctx = None
        self._batch = None
        if not vocab_only:
            cparams = ll.llama_context_default_params()
            cparams.n_ctx = self.n_ctx
            cparams.n_batch = self.n_ctx
            cparams.n_ubatch = self.n_ctx
            cparams.n_seq_max = 1
            threads = int(n_threads or max(1, min(4, os.cpu_count() or 1)))
            cparams.n_threads = threads
            cparams.n_threads_batch = threads
            cparams.no_perf = True
            if exact:
                cparams.type_k = 0  # GGML_TYPE_F32
                cparams.type_v = 0
                cparams.flash_attn_type = 0  # LLAMA_FLASH_ATTN_TYPE_DISABLED
            self._ctx = ll.llama_init_from_model(self._model, cparams)
            if not self._ctx:
                self.close()
                raise RuntimeError(f"{path}: llama.cpp could not create a context of {self.n_ctx} tokens")
            self._batch = ll.llama_batch_init(self.n_ctx, 0, 1)

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = True) -> list[int]:
        return native_tokenize(self._ll, self._vocab, text, add_special, parse_special)

    def logits(self, ids: list[int]) -> np.ndarray:
        """Logits after each token of ``ids`` (one fresh sequence; the cache is cleared first)."""
        if self._ctx is None:
            raise RuntimeError("loaded vocabulary only")
        ll = self._ll
        n = len(ids)
        if not 0 < n <= self.n_ctx:
            raise ValueError(f"sequence of {n} tokens does not fit the context of {self.n_ctx}")
        ll.llama_memory_clear(ll.llama_get_memory(self._ctx), True)
        b = self._batch
        for i, tok in enumerate(ids):
            b.token[i] = int(tok)
            b.pos[i] = i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 1
        b.n_tokens = n
        rc = ll.llama_decode(self._ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed ({rc})")
        ptr = ll.llama_get_logits(self._ctx)
        return np.ctypeslib.as_array(ptr, shape=(n, self.n_vocab)).copy()

