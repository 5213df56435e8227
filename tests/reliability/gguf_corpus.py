"""Corrupt, truncated and wrong-architecture GGUF files made from a real GGUF (the tiny fixture
model converted by our converter). Offsets come from the file's own header (layout: ggml
docs/gguf.md): magic, version u32, tensor count u64, key/value count u64, key/values, tensor
infos (name, n_dims u32, dims u64[n], type u32, offset u64), aligned data.

``expect``: ``"error"`` the file must be refused with a message naming it; ``"either"`` a clear
refusal or a working load (damage inside tensor data is not detectable without a hash).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BadGGUF:
    name: str
    data: bytes
    expect: str  # "error" | "either"
    why: str


def _find_string_value(data: bytes, key: bytes) -> int:
    """Offset of the value bytes of a string key (after its u32 type and u64 length)."""
    i = data.index(struct.pack("<Q", len(key)) + key) + 8 + len(key)
    vtype = struct.unpack_from("<I", data, i)[0]
    assert vtype == 8, f"{key!r} is not a string"
    return i + 4  # the u64 length; the value follows it


def _first_tensor_info(data: bytes, name: bytes) -> int:
    """Offset of the n_dims field of tensor ``name``'s info."""
    return data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)


def corpus(good: Path, other_file: Path | None = None) -> list[BadGGUF]:
    data = Path(good).read_bytes()
    size = len(data)
    out: list[BadGGUF] = []

    def add(name, blob, expect, why):
        out.append(BadGGUF(name, bytes(blob), expect, why))

    add("empty.gguf", b"", "error", "empty file")
    add("zeros.gguf", b"\0" * 4096, "error", "all zero bytes")
    add("text.gguf", b"this is a README, not a model\n" * 20, "error", "text file with a .gguf name")
    if other_file is not None:
        add("safetensors-renamed.gguf", Path(other_file).read_bytes(), "error", "a safetensors file renamed")
    for frac in (0.0005, 0.01, 0.1, 0.5, 0.9, 0.999):
        cut = max(8, int(size * frac))
        add(f"truncated-{frac:g}.gguf", data[:cut], "error", f"cut at {cut} of {size} bytes")
    add("truncated-last-byte.gguf", data[:-1], "error", "one byte short (a half-copied file)")

    b = bytearray(data)
    b[0:4] = b"GGUX"
    add("bad-magic.gguf", b, "error", "magic bytes wrong")
    b = bytearray(data)
    struct.pack_into("<I", b, 4, 99)
    add("bad-version.gguf", b, "error", "GGUF version 99")
    b = bytearray(data)
    struct.pack_into("<Q", b, 8, 2**62)
    add("huge-tensor-count.gguf", b, "error", "tensor count 2^62")
    b = bytearray(data)
    struct.pack_into("<Q", b, 16, 2**62)
    add("huge-kv-count.gguf", b, "error", "key/value count 2^62")

    arch_len = _find_string_value(data, b"general.architecture")
    arch = data[arch_len + 8: arch_len + 8 + struct.unpack_from("<Q", data, arch_len)[0]]
    b = bytearray(data)
    struct.pack_into("<Q", b, arch_len, 2**40)
    add("huge-string-length.gguf", b, "error", "architecture string length 2^40")
    for other in (b"bogus", b"gemma", b"mamba", b"qwen3", b"bert5"):
        if len(other) == len(arch) and other != arch:
            b = bytearray(data)
            b[arch_len + 8: arch_len + 8 + len(arch)] = other
            expect = "error"
            add(f"wrong-arch-{other.decode()}.gguf", b, expect,
                f"general.architecture {arch.decode()} -> {other.decode()} (keys and tensors of {arch.decode()})")

    t = _first_tensor_info(data, b"token_embd.weight")
    n_dims = struct.unpack_from("<I", data, t)[0]
    b = bytearray(data)
    struct.pack_into("<Q", b, t + 4, 2**40)
    add("huge-tensor-dim.gguf", b, "error", "token_embd dimension 2^40")
    b = bytearray(data)
    struct.pack_into("<I", b, t + 4 + 8 * n_dims, 999)
    add("bad-tensor-type.gguf", b, "error", "tensor type 999")
    b = bytearray(data)
    struct.pack_into("<Q", b, t + 4 + 8 * n_dims + 4, 2**50)
    add("tensor-offset-out-of-range.gguf", b, "error", "token_embd offset past the end")
    b = bytearray(data)
    struct.pack_into("<I", b, t, 9)
    add("bad-n-dims.gguf", b, "error", "token_embd n_dims 9")

    b = bytearray(data)
    for k in range(64):  # damage inside the tensor data (last quarter of the file)
        b[size - 1 - k * 997 % (size // 4)] ^= 0xA5
    add("flipped-tensor-data.gguf", b, "either", "64 bytes flipped inside tensor data")
    return out


def write(folder: Path, cases: list[BadGGUF]) -> list[tuple[BadGGUF, Path]]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for c in cases:
        p = folder / c.name
        p.write_bytes(c.data)
        out.append((c, p))
    return out
