"""Convert a Hugging Face LOGOS checkpoint folder (Llama or Qwen3) to one GGUF file.

Our own converter on the ``gguf`` package. It writes the header, metadata and tensor table
first (shapes are known from the safetensors headers), then streams the tensors shard by shard,
each converted in row chunks from a memory map: the model is never held twice in memory. The
output is written to ``OUT.part`` and renamed at the end, so an interrupted conversion leaves no
file that looks complete.

Progress: ``progress(stage, done, total)`` with stage ``"tokenizer"`` or ``"tensors"`` (bytes of
source tensors done / total).
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from engine.modelfiles.errors import ModelFileError
from engine.models.card import CARD_FILE, add_card_to_writer, load_card_json
from engine.models.hf_config import ModelConfig, read_config
from engine.models.hf_tokenizer import GGUFVocab, map_tokenizer
from engine.models.safetensors_io import TensorRef, list_tensors

Progress = Callable[[str, int, int], None]
OUTTYPES = ("f32", "f16", "bf16")
_CHUNK_ELEMENTS = 1 << 24  # rows are converted 16 M elements at a time

# Hugging Face tensor name (layer part with {bid}) -> gguf.MODEL_TENSOR member name
_GLOBAL = {
    "model.embed_tokens.weight": "TOKEN_EMBD",
    "model.norm.weight": "OUTPUT_NORM",
    "lm_head.weight": "OUTPUT",
}
_LAYER = {
    "input_layernorm.weight": "ATTN_NORM",
    "self_attn.q_proj.weight": "ATTN_Q",
    "self_attn.k_proj.weight": "ATTN_K",
    "self_attn.v_proj.weight": "ATTN_V",
    "self_attn.o_proj.weight": "ATTN_OUT",
    "self_attn.q_norm.weight": "ATTN_Q_NORM",
    "self_attn.k_norm.weight": "ATTN_K_NORM",
    "post_attention_layernorm.weight": "FFN_NORM",
    "mlp.gate_proj.weight": "FFN_GATE",
    "mlp.up_proj.weight": "FFN_UP",
    "mlp.down_proj.weight": "FFN_DOWN",
}
_IGNORED = re.compile(r"^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$")
_LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)$")


@dataclass
class PlannedTensor:
    gguf_name: str
    ref: TensorRef | None       # None for tensors we compute (rope_freqs)
    shape: tuple[int, ...]      # numpy order (rows, cols)
    ggml_type: str              # "F32" | "F16" | "BF16"
    permute_heads: int = 0      # >0: Llama q/k row permutation with this many heads
    data: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * (4 if self.ggml_type == "F32" else 2)


@dataclass
class ConvertResult:
    path: Path
    arch: str
    outtype: str
    n_tensors: int
    n_params: int
    pre_tokenizer: str
    n_vocab: int
    seconds: float
    warnings: list[str] = field(default_factory=list)


def _expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    h, hd = cfg.hidden, cfg.head_dim
    shapes = {
        "ATTN_NORM": (h,), "FFN_NORM": (h,),
        "ATTN_Q": (cfg.n_head * hd, h), "ATTN_K": (cfg.n_head_kv * hd, h), "ATTN_V": (cfg.n_head_kv * hd, h),
        "ATTN_OUT": (h, cfg.n_head * hd),
        "FFN_GATE": (cfg.intermediate, h), "FFN_UP": (cfg.intermediate, h), "FFN_DOWN": (h, cfg.intermediate),
    }
    if cfg.qk_norm:
        shapes["ATTN_Q_NORM"] = (hd,)
        shapes["ATTN_K_NORM"] = (hd,)
    return shapes


def llama3_rope_factors(cfg: ModelConfig) -> np.ndarray:
    """Per-frequency divisors for Llama-3 style rope scaling (GGUF tensor ``rope_freqs.weight``).

    Follows the published rule: wavelengths shorter than original_ctx/high_freq_factor keep their
    frequency, longer than original_ctx/low_freq_factor are divided by ``factor``, and the band in
    between is interpolated smoothly.
    """
    r = cfg.rope
    factor = float(r["factor"])
    low = float(r.get("low_freq_factor", 1.0))
    high = float(r.get("high_freq_factor", 4.0))
    old_ctx = float(r.get("original_max_position_embeddings", 8192))
    freqs = 1.0 / (cfg.rope_theta ** (np.arange(0, cfg.head_dim, 2, dtype=np.float64) / cfg.head_dim))
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


def plan_tensors(cfg: ModelConfig, refs: list[TensorRef], outtype: str) -> tuple[list[PlannedTensor], list[str]]:
    """Map every checkpoint tensor to its GGUF name, type and shape; refuse what does not fit."""
    import gguf

    names = gguf.TENSOR_NAMES
    MT = gguf.MODEL_TENSOR
    arch_enum = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == cfg.gguf_arch)
    allowed = set(gguf.MODEL_TENSORS[arch_enum])
    shapes = _expected_shapes(cfg)
    big = {"f32": "F32", "f16": "F16", "bf16": "BF16"}[outtype]
    warnings: list[str] = []

    by_name = {r.name: r for r in refs}
    planned: list[PlannedTensor] = []
    seen: set[str] = set()
    for ref in refs:
        if _IGNORED.match(ref.name):
            continue
        if ref.name in _GLOBAL:
            kind = _GLOBAL[ref.name]
            if kind == "OUTPUT" and cfg.tied:
                warnings.append("lm_head.weight ignored: config.json tie_word_embeddings is true")
                continue
            expect = (cfg.vocab_size, cfg.hidden) if kind != "OUTPUT_NORM" else (cfg.hidden,)
            gname = names[getattr(MT, kind)] + ".weight"
            bid = None
        else:
            m = _LAYER_RE.match(ref.name)
            if not m or m.group(2) not in _LAYER:
                raise ModelFileError(ref.shard, f"unexpected tensor for {cfg.hf_arch}: no GGUF equivalent", field=ref.name)
            bid, part = int(m.group(1)), m.group(2)
            kind = _LAYER[part]
            if bid >= cfg.n_layers:
                raise ModelFileError(ref.shard, f"layer {bid} but config.json num_hidden_layers is {cfg.n_layers}", field=ref.name)
            if kind not in shapes:
                raise ModelFileError(ref.shard, f"unexpected tensor for {cfg.hf_arch}", field=ref.name)
            expect = shapes[kind]
            gname = names[getattr(MT, kind)].format(bid=bid) + ".weight"
        if getattr(MT, kind) not in allowed:
            raise ModelFileError(ref.shard, f"tensor kind {kind} is not part of llama.cpp's {cfg.gguf_arch}", field=ref.name)
        if ref.shape != expect:
            if kind in ("TOKEN_EMBD", "OUTPUT") and len(ref.shape) == 2 and ref.shape[1] == cfg.hidden:
                raise ModelFileError(cfg.path, f"is {cfg.vocab_size} but {ref.name} in {ref.shard.name} has "
                                     f"{ref.shape[0]} rows", field="vocab_size")
            raise ModelFileError(ref.shard, f"shape {list(ref.shape)} does not match config.json (expected {list(expect)})",
                                 field=ref.name)
        permute = 0
        if cfg.permute_qk and kind == "ATTN_Q":
            permute = cfg.n_head
        elif cfg.permute_qk and kind == "ATTN_K":
            permute = cfg.n_head_kv
        planned.append(PlannedTensor(gname, ref, ref.shape, "F32" if len(ref.shape) == 1 else big, permute))
        seen.add(ref.name)

    required = ["model.embed_tokens.weight", "model.norm.weight"]
    for bid in range(cfg.n_layers):
        required += [f"model.layers.{bid}.{part}" for part, kind in _LAYER.items() if kind in shapes]
    if not cfg.tied:
        if "lm_head.weight" not in by_name:
            if "tie_word_embeddings" in cfg.raw:
                raise ModelFileError(cfg.path, "is false but the checkpoint has no lm_head.weight", field="tie_word_embeddings")
            cfg.tied = True  # no output matrix and no statement either way: transformers ties by default
            warnings.append("no lm_head.weight: output tied to the token embedding")
    missing = [n for n in required if n not in seen]
    if missing:
        shard_note = "" if len(missing) == 1 else f" (and {len(missing) - 1} more)"
        raise ModelFileError(refs[0].shard.parent if refs else cfg.path.parent,
                             f"required tensor is missing from every shard{shard_note}", field=missing[0])
    if cfg.rope["type"] == "llama3":
        factors = llama3_rope_factors(cfg)
        planned.append(PlannedTensor(names[MT.ROPE_FREQS] + ".weight", None, factors.shape, "F32", data=factors))
    return planned, warnings


def _convert_tensor(t: PlannedTensor) -> np.ndarray:
    if t.data is not None:
        return t.data
    ref = t.ref
    out_dtype = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}[t.ggml_type]
    out = np.empty(t.shape, dtype=out_dtype)
    flat_out = out.reshape(t.shape[0], -1) if len(t.shape) > 1 else out.reshape(1, -1)
    src = np.memmap(ref.shard, dtype=np.uint8, mode="r", offset=ref.begin, shape=(ref.end - ref.begin,))
    rows = flat_out.shape[0]
    row_elems = flat_out.shape[1]
    step = max(1, _CHUNK_ELEMENTS // max(1, row_elems))
    itemsize = 2 if ref.dtype in ("BF16", "F16") else 4 if ref.dtype == "F32" else 8
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        raw = src[r0 * row_elems * itemsize:r1 * row_elems * itemsize]
        if ref.dtype == "BF16":
            u = raw.view(np.uint16).astype(np.uint32)
            u <<= 16
            chunk = u.view(np.float32)
        elif ref.dtype in ("F16", "F32", "F64"):
            chunk = raw.view({"F16": np.float16, "F32": np.float32, "F64": np.float64}[ref.dtype]).astype(np.float32)
        else:
            raise ModelFileError(ref.shard, f"dtype {ref.dtype} is not a floating-point weight", field=ref.name)
        chunk = chunk.reshape(r1 - r0, row_elems)
        if t.ggml_type == "BF16":
            bits = chunk.view(np.uint32)
            flat_out[r0:r1] = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
        else:
            flat_out[r0:r1] = chunk
    del src
    if t.permute_heads:
        n_head = t.permute_heads
        rows_, cols = out.shape
        out = out.reshape(n_head, 2, rows_ // n_head // 2, cols).swapaxes(1, 2).reshape(rows_, cols)
    return np.ascontiguousarray(out)


def _write_metadata(writer, cfg: ModelConfig, vocab: GGUFVocab, outtype: str) -> None:
    import gguf

    writer.add_name(cfg.name)
    writer.add_type("model")
    writer.add_context_length(cfg.context_length)
    writer.add_embedding_length(cfg.hidden)
    writer.add_block_count(cfg.n_layers)
    writer.add_feed_forward_length(cfg.intermediate)
    writer.add_head_count(cfg.n_head)
    writer.add_head_count_kv(cfg.n_head_kv)
    writer.add_key_length(cfg.head_dim)
    writer.add_value_length(cfg.head_dim)
    writer.add_rope_dimension_count(cfg.head_dim)
    writer.add_rope_freq_base(cfg.rope_theta)
    writer.add_layer_norm_rms_eps(cfg.rms_eps)
    writer.add_vocab_size(cfg.vocab_size)
    rope = cfg.rope
    if rope["type"] == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    elif rope["type"] == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(rope["factor"]))
        if "original_max_position_embeddings" in rope:
            writer.add_rope_scaling_orig_ctx_len(int(rope["original_max_position_embeddings"]))
        if rope.get("beta_fast") is not None:
            writer.add_rope_scaling_yarn_beta_fast(float(rope["beta_fast"]))
        if rope.get("beta_slow") is not None:
            writer.add_rope_scaling_yarn_beta_slow(float(rope["beta_slow"]))
    writer.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                          "bf16": gguf.LlamaFileType.MOSTLY_BF16}[outtype])

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    for key, value in (("bos", vocab.bos_id), ("eos", vocab.eos_id), ("pad", vocab.pad_id), ("unk", vocab.unk_id)):
        if value is not None:
            getattr(writer, f"add_{key}_token_id")(value)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(vocab.add_eos)


def convert_hf_to_gguf(hf_dir: str | Path, out_path: str | Path, progress: Progress | None = None,
                       outtype: str = "f16") -> ConvertResult:
    """Convert the checkpoint in ``hf_dir`` to ``out_path`` (F32, F16 or BF16 weights; norms F32).

    Raises ModelFileError (naming the file and field) before anything is written when the folder
    cannot be converted; removes its partial output if writing fails.
    """
    import gguf

    t0 = time.perf_counter()
    hf_dir, out_path = Path(hf_dir), Path(out_path)
    outtype = outtype.lower()
    if outtype not in OUTTYPES:
        raise ValueError(f"outtype must be one of {OUTTYPES}, not {outtype!r}")
    cfg = read_config(hf_dir)
    refs = list_tensors(hf_dir)
    if progress:
        progress("tokenizer", 0, 1)
    vocab = map_tokenizer(hf_dir, cfg.vocab_size, cfg.raw)
    if progress:
        progress("tokenizer", 1, 1)
    planned, warnings = plan_tensors(cfg, refs, outtype)
    warnings = vocab.warnings + warnings
    card = None
    if (hf_dir / CARD_FILE).is_file():  # written by the training: per task, trained or not, figures
        card = load_card_json(hf_dir / CARD_FILE)
    else:
        warnings.append(f"no {CARD_FILE} in the checkpoint folder: the GGUF carries no card "
                        "(every task reads 'unknown: no card')")

    out_path.parent.mkdir(parents=True, exist_ok=True)
    part = out_path.with_name(out_path.name + ".part")
    writer = gguf.GGUFWriter(part, cfg.gguf_arch)
    try:
        _write_metadata(writer, cfg, vocab, outtype)
        if card is not None:
            add_card_to_writer(writer, card)
        for t in planned:
            dtype = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}[t.ggml_type]
            raw = gguf.GGMLQuantizationType.BF16 if t.ggml_type == "BF16" else None
            writer.add_tensor_info(t.gguf_name, t.shape, np.dtype(dtype), t.nbytes, raw_dtype=raw)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        total = sum(t.ref.end - t.ref.begin for t in planned if t.ref is not None)
        done = 0
        if progress:
            progress("tensors", 0, total)
        for t in planned:  # planned follows shard order, so each shard is read once, front to back
            writer.write_tensor_data(_convert_tensor(t))
            if t.ref is not None:
                done += t.ref.end - t.ref.begin
                if progress:
                    progress("tensors", done, total)
        writer.close()
        os.replace(part, out_path)
    except BaseException:
        writer.close()
        part.unlink(missing_ok=True)
        raise
    n_params = sum(math.prod(t.shape) for t in planned)
    return ConvertResult(out_path, cfg.gguf_arch, outtype, len(planned), n_params, vocab.pre, len(vocab.tokens),
                         time.perf_counter() - t0, warnings)
