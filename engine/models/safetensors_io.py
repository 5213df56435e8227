"""Streaming access to the tensors of a Hugging Face checkpoint folder.

The safetensors layout (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
length N, N bytes of JSON (``{name: {dtype, shape, data_offsets: [begin, end]}}``, plus an optional
``__metadata__``), then the raw little-endian tensor bytes. We read the header ourselves and memory
-map the data so that a tensor is only paged in while it is being converted, and so that BF16
(which numpy has no type for, so ``safe_open(framework="numpy")`` refuses it) is handled without
torch. One checkpoint may be split in shards listed by ``model.safetensors.index.json``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.modelfiles.errors import ModelFileError

_NUMPY = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"


@dataclass(frozen=True)
class TensorRef:
    name: str
    shard: Path
    dtype: str            # safetensors dtype string ("BF16", "F16", "F32", ...)
    shape: tuple[int, ...]
    begin: int            # absolute byte offset in the shard file
    end: int

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def load_f32(self) -> np.ndarray:
        """The tensor as float32 (a fresh array; the memory map is released afterwards)."""
        raw = np.memmap(self.shard, dtype=np.uint8, mode="r", offset=self.begin, shape=(self.end - self.begin,))
        try:
            if self.dtype == "BF16":
                out = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
            elif self.dtype in ("F32", "F16", "F64"):
                out = raw.view(_NUMPY[self.dtype]).astype(np.float32)
            else:
                raise ModelFileError(self.shard, f"dtype {self.dtype} is not a floating-point weight", field=self.name)
            return out.reshape(self.shape)
        finally:
            del raw


def read_header(path: Path) -> dict:
    """The JSON header of one safetensors file, checked against the file's size."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ModelFileError(path, "file too short to be safetensors")
            (n,) = struct.unpack("<Q", head)
            if n > size - 8 or n > 100 * 1024 * 1024:
                raise ModelFileError(path, f"header length {n} does not fit the file ({size} bytes): not safetensors, or truncated")
            header = json.loads(fh.read(n))
    except FileNotFoundError:
        raise ModelFileError(path, "file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(path, f"header is not valid JSON ({exc})") from None
    header["__data_start__"] = 8 + n
    header["__file_size__"] = size
    return header


def _refs_in_shard(path: Path) -> list[TensorRef]:
    header = read_header(path)
    start, size = header["__data_start__"], header["__file_size__"]
    refs = []
    for name, info in header.items():
        if name.startswith("__"):
            continue
        try:
            dtype = info["dtype"]
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(path, "malformed tensor entry in the header", field=name) from None
        if dtype not in _ITEMSIZE:
            raise ModelFileError(path, f"unknown dtype {dtype!r}", field=name)
        n = 1
        for d in shape:
            n *= d
        if end - begin != n * _ITEMSIZE[dtype]:
            raise ModelFileError(path, f"byte range {begin}..{end} does not match shape {list(shape)} of {dtype}", field=name)
        if start + end > size:
            raise ModelFileError(path, f"tensor data ends at byte {start + end} but the file has {size} bytes: "
                                 "the file is truncated (an interrupted copy?)", field=name)
        refs.append(TensorRef(name, path, dtype, shape, start + begin, start + end))
    refs.sort(key=lambda r: r.begin)
    return refs


def list_tensors(folder: Path) -> list[TensorRef]:
    """Every tensor of the checkpoint in ``folder``, shard by shard, in file order.

    Raises ModelFileError naming the index file and the shard when a shard listed in
    ``model.safetensors.index.json`` is missing, and naming the tensor when a shard lacks one
    that the index promises.
    """
    folder = Path(folder)
    index = folder / INDEX_NAME
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ModelFileError(index, f"not a valid shard index ({exc})", field="weight_map") from None
        shards: list[str] = []
        for shard in weight_map.values():
            if shard not in shards:
                shards.append(shard)
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise ModelFileError(index, f"shard {missing[0]} is listed but missing from {folder}"
                                 + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                                 field="weight_map")
        refs: list[TensorRef] = []
        for shard in sorted(shards):
            refs.extend(_refs_in_shard(folder / shard))
        have = {r.name for r in refs}
        for name, shard in weight_map.items():
            if name not in have:
                raise ModelFileError(folder / shard, "tensor listed in the index is not in this shard", field=name)
        return refs
    single = folder / SINGLE_NAME
    if single.is_file():
        return _refs_in_shard(single)
    files = sorted(folder.glob("*.safetensors"))
    if len(files) == 1:
        return _refs_in_shard(files[0])
    if not files:
        raise ModelFileError(folder, "no model.safetensors or model.safetensors.index.json "
                             "(only safetensors checkpoints are supported, not .bin/.pt)")
    raise ModelFileError(folder, f"{len(files)} safetensors files but no {INDEX_NAME}")
