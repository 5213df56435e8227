"""What a GGUF file says about itself, read without loading the weights: architecture, layer and
head counts (for the KV-cache estimate), training context, and whether the file is complete.

A missing, truncated or non-GGUF file raises :class:`ModelFileError` with the path and the reason.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

# architectures this build's llama.cpp runs and that LOGOS uses; others are refused before loading
# (llama.cpp knows many more; the list only says what LOGOS Desktop was tested with)
TESTED_ARCHITECTURES = ("llama", "qwen3", "qwen2", "mistral", "gemma", "phi3", "gpt2")


class ModelFileError(ValueError):
    """A model file that cannot be used: ``str()`` names the file and says why."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass
class GGUFFacts:
    path: str
    file_bytes: int
    architecture: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_ctx_train: int
    n_vocab: int
    tensor_bytes: int
    name: str = ""

    def kv_bytes_per_token(self, type_bytes: float = 2.0) -> int:
        """K and V cache bytes for one token position (all layers), f16 cache by default."""
        per_layer = self.n_head_kv * (self.head_dim_k + self.head_dim_v) * type_bytes
        return int(self.n_layer * per_layer)

    def as_dict(self) -> dict:
        return asdict(self)


def _field_value(reader, key: str):
    field = reader.fields.get(key)
    if field is None:
        return None
    try:
        return field.contents()
    except Exception:  # noqa: BLE001 - older gguf versions
        part = field.parts[field.data[0]] if field.data else None
        if part is None:
            return None
        return part.tobytes().decode() if part.dtype.kind == "u" and part.itemsize == 1 else part[0]


def read_facts(path: str | os.PathLike) -> GGUFFacts:
    p = Path(path)
    if not p.exists():
        raise ModelFileError(p, "file not found")
    if not p.is_file():
        raise ModelFileError(p, "not a file")
    size = p.stat().st_size
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise ModelFileError(p, f"not a GGUF file (starts with {magic!r}, expected b'GGUF')")
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(p), "r")
    except Exception as exc:  # noqa: BLE001 - a damaged header shows up as many exception types
        raise ModelFileError(p, f"damaged or truncated GGUF header ({type(exc).__name__}: {exc})") from None
    end = 0
    tensor_bytes = 0
    for t in reader.tensors:
        end = max(end, int(t.data_offset) + int(t.n_bytes))
        tensor_bytes += int(t.n_bytes)
    if end > size:
        raise ModelFileError(p, f"truncated GGUF: the tensors need {end:,} bytes, the file has {size:,} "
                                "(a half-copied file? copy it again)")
    arch = _field_value(reader, "general.architecture")
    if not arch:
        raise ModelFileError(p, "GGUF without general.architecture: not a language model file")
    arch = str(arch)

    def num(key: str, default: int = 0) -> int:
        v = _field_value(reader, f"{arch}.{key}")
        if v is None:
            return default
        if isinstance(v, (list, tuple)):  # per-layer arrays: take the largest
            v = max(v) if v else default
        return int(v)

    n_embd = num("embedding_length")
    n_head = num("attention.head_count", 1) or 1
    n_head_kv = num("attention.head_count_kv", n_head) or n_head
    head_k = num("attention.key_length", n_embd // n_head if n_head else 0)
    head_v = num("attention.value_length", head_k)
    tokens = _field_value(reader, "tokenizer.ggml.tokens")
    n_vocab = len(tokens) if isinstance(tokens, (list, tuple)) else num("vocab_size")
    name = _field_value(reader, "general.name") or ""
    return GGUFFacts(
        path=str(p), file_bytes=size, architecture=arch, n_layer=num("block_count"),
        n_embd=n_embd, n_head=n_head, n_head_kv=n_head_kv, head_dim_k=head_k, head_dim_v=head_v,
        n_ctx_train=num("context_length"), n_vocab=int(n_vocab or 0), tensor_bytes=tensor_bytes,
        name=str(name),
    )
