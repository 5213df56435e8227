"""What a GGUF file says about itself, read without loading the weights: architecture, layer and
head counts (for the KV-cache estimate) and training context.

The file check is engine.modelfiles.gguf_info's: a missing, partial or non-GGUF file raises
:class:`engine.modelfiles.errors.ModelFileError` with the path and the reason.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

from engine.modelfiles.errors import ModelFileError  # one error type for model files

# architectures LOGOS uses (and llama.cpp runs); when llama.cpp refuses a file of another
# architecture, the error says "unsupported architecture"
TESTED_ARCHITECTURES = ("llama", "qwen3", "qwen2", "mistral", "gemma", "phi3", "gpt2")
MAX_COUNT = 1 << 32  # layers, heads, lengths: anything larger is a damaged header, not a model


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
    n_params: int = 0  # weights (elements of every tensor); 0: unknown

    def params(self) -> int:
        """Weights, or an estimate from the tensor bytes (about one byte a weight, Q8_0) when the
        count is unknown."""
        return int(self.n_params or self.tensor_bytes or self.file_bytes)

    def kv_bytes_per_token(self, type_bytes: float = 2.0) -> int:
        """K and V cache bytes for one token position (all layers), f16 cache by default."""
        per_layer = self.n_head_kv * (self.head_dim_k + self.head_dim_v) * type_bytes
        return int(self.n_layer * per_layer)

    def as_dict(self) -> dict:
        return asdict(self)


def read_facts(path: str | os.PathLike) -> GGUFFacts:
    """Check the file (engine.modelfiles.gguf_info: missing, not GGUF, partial copy) and read the
    numbers the planner needs. Raises ModelFileError naming the file and the reason."""
    from engine.modelfiles.gguf_info import read_header

    h = read_header(path)
    arch = h.get("general.architecture", "str")
    if not arch:
        raise ModelFileError(path, "missing: not a language model file", field="general.architecture")

    def num(key: str, default: int = 0) -> int:
        name = f"{arch}.{key}"
        v = h.get(name, "int|list[int]")  # a count, or per-layer counts (take the largest)
        if isinstance(v, list):
            v = max(v) if v else default
        if v is None:
            return default
        if v > MAX_COUNT:
            raise ModelFileError(h.path, f"{v:,} is implausible (over {MAX_COUNT:,})", field=name,
                                 offset=h.offsets.get(name))
        return int(v)

    n_embd = num("embedding_length")
    n_head = num("attention.head_count", 1) or 1
    n_head_kv = num("attention.head_count_kv", n_head) or n_head
    head_k = num("attention.key_length", n_embd // n_head if n_head else 0)
    head_v = num("attention.value_length", head_k)
    tokens = h.get("tokenizer.ggml.tokens", "list[str]")
    n_vocab = len(tokens) if tokens is not None else num("vocab_size")
    return GGUFFacts(
        path=str(path), file_bytes=h.file_size, architecture=arch, n_layer=num("block_count"),
        n_embd=n_embd, n_head=n_head, n_head_kv=n_head_kv, head_dim_k=head_k, head_dim_v=head_v,
        n_ctx_train=num("context_length"), n_vocab=int(n_vocab or 0),
        tensor_bytes=sum(int(t.nbytes) for t in h.tensors), name=str(h.get("general.name", "str") or ""),
        n_params=sum(math.prod(t.shape) for t in h.tensors),
    )
