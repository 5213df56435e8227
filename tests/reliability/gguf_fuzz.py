"""A structure-aware GGUF fuzzer: the layout of a real GGUF (ggml docs/gguf.md: magic, version u32,
tensor count u64, key/value count u64, key/values, tensor infos, aligned data) is walked once,
every field's offset recorded, and cases are made by changing one field at a time to a boundary
value, by adding keys (alignments of every type and value, nested arrays, huge arrays), and by
cutting the file at every field of every section.

``cases(seed_bytes, n)`` returns at least ``n`` :class:`Case` objects, deterministic for a seed.
The tensor data of a case is the seed's (cases differ in their header only), so a case is written
as header bytes plus a sparse extension to the seed's size (:func:`write_case`): 1,000 cases of a
multi-megabyte model take kilobytes each on disk.
"""

from __future__ import annotations

import os
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9
U64_EDGES = [0, 1, 2, 7, 255, 2**16, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**33, 2**40, 2**61, 2**63 - 1, 2**63,
             2**64 - 1]
U32_EDGES = [0, 1, 5, 8, 9, 13, 255, 2**16, 2**31 - 1, 2**31, 2**32 - 1]


@dataclass
class Field:
    offset: int
    fmt: str         # struct format of the field ("<I", "<Q")
    kind: str        # "count", "length", "type", "itype", "ndims", "dim", "ttype", "toffset", "version"
    where: str       # section / key name


@dataclass
class Layout:
    fields: list[Field] = field(default_factory=list)
    kv_start: int = 24
    kv_chunks: list[bytes] = field(default_factory=list)      # raw bytes of each key/value
    kv_keys: list[str] = field(default_factory=list)
    tensor_start: int = 0
    tensor_chunks: list[bytes] = field(default_factory=list)
    header_end: int = 0
    data_start: int = 0
    alignment: int = 32
    n_tensors: int = 0


@dataclass(frozen=True)
class Case:
    name: str
    header: bytes       # the bytes of the case (its whole prefix when truncated)
    pad_to: int         # sparse size of the file (0: exactly ``header``)
    family: str


def _walk_value(data: bytes, pos: int, vtype: int, lay: Layout, where: str) -> int:
    if vtype in SCALAR:
        return pos + struct.calcsize(SCALAR[vtype])
    if vtype == STRING:
        lay.fields.append(Field(pos, "<Q", "length", where))
        n = struct.unpack_from("<Q", data, pos)[0]
        return pos + 8 + n
    assert vtype == ARRAY
    lay.fields.append(Field(pos, "<I", "itype", where))
    itype = struct.unpack_from("<I", data, pos)[0]
    lay.fields.append(Field(pos + 4, "<Q", "count", where))
    n = struct.unpack_from("<Q", data, pos + 4)[0]
    pos += 12
    if itype in SCALAR:
        return pos + n * struct.calcsize(SCALAR[itype])
    for i in range(n):
        # only the first items' fields are recorded: enough to mutate, few enough to stay fast
        sub = Layout() if i >= 3 else lay
        pos = _walk_value(data, pos, itype, sub, f"{where}[{i}]")
    return pos


def walk(data: bytes) -> Layout:
    """Offsets of every structural field of a well-formed GGUF."""
    lay = Layout()
    assert data[:4] == b"GGUF"
    lay.fields.append(Field(4, "<I", "version", "header"))
    lay.fields.append(Field(8, "<Q", "count", "tensor_count"))
    lay.fields.append(Field(16, "<Q", "count", "metadata_kv_count"))
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)
    lay.n_tensors = n_tensors
    pos = 24
    for _ in range(n_kv):
        start = pos
        lay.fields.append(Field(pos, "<Q", "length", "key"))
        klen = struct.unpack_from("<Q", data, pos)[0]
        key = data[pos + 8: pos + 8 + klen].decode()
        pos += 8 + klen
        lay.fields.append(Field(pos, "<I", "type", key))
        vtype = struct.unpack_from("<I", data, pos)[0]
        if key == "general.alignment":
            lay.alignment = struct.unpack_from("<I", data, pos + 4)[0]
        pos = _walk_value(data, pos + 4, vtype, lay, key)
        lay.kv_chunks.append(data[start:pos])
        lay.kv_keys.append(key)
    lay.tensor_start = pos
    for _ in range(n_tensors):
        start = pos
        lay.fields.append(Field(pos, "<Q", "length", "tensor name"))
        nlen = struct.unpack_from("<Q", data, pos)[0]
        name = data[pos + 8: pos + 8 + nlen].decode()
        pos += 8 + nlen
        lay.fields.append(Field(pos, "<I", "ndims", name))
        nd = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        for d in range(nd):
            lay.fields.append(Field(pos + 8 * d, "<Q", "dim", name))
        pos += 8 * nd
        lay.fields.append(Field(pos, "<I", "ttype", name))
        lay.fields.append(Field(pos + 4, "<Q", "toffset", name))
        pos += 12
        lay.tensor_chunks.append(data[start:pos])
    lay.header_end = pos
    lay.data_start = (pos + lay.alignment - 1) // lay.alignment * lay.alignment
    return lay


# ---------------------------------------------------------------------------- building blocks
def gstr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key: str, vtype: int, payload: bytes) -> bytes:
    return gstr(key) + struct.pack("<I", vtype) + payload


def nested_array(depth: int) -> bytes:
    """An array of arrays ``depth`` deep, the innermost holding one u32."""
    inner = struct.pack("<IQ", 4, 1) + struct.pack("<I", 7)
    for _ in range(depth - 1):
        inner = struct.pack("<IQ", ARRAY, 1) + inner
    return inner


def rebuild(data: bytes, lay: Layout, kv_chunks: list[bytes], tensor_chunks: list[bytes] | None = None,
            n_kv: int | None = None, n_tensors: int | None = None, alignment: int | None = None) -> bytes:
    """A header with these key/values and tensor infos, padded to the alignment, then the seed's data."""
    tensor_chunks = lay.tensor_chunks if tensor_chunks is None else tensor_chunks
    head = b"GGUF" + data[4:8] + struct.pack("<QQ", len(tensor_chunks) if n_tensors is None else n_tensors,
                                             len(kv_chunks) if n_kv is None else n_kv)
    head += b"".join(kv_chunks) + b"".join(tensor_chunks)
    align = alignment if alignment and alignment > 0 and not alignment & (alignment - 1) and alignment <= 4096 \
        else lay.alignment
    start = (len(head) + align - 1) // align * align
    return head + b"\0" * (start - len(head)) + data[lay.data_start:]


# ---------------------------------------------------------------------------- the cases
def cases(seed: bytes, n: int = 1000, rng_seed: int = 20261204) -> list[Case]:
    rng = random.Random(rng_seed)
    lay = walk(seed)
    size = len(seed)
    header = seed[:lay.data_start]
    out: list[Case] = []

    def add(name: str, blob: bytes, family: str, full: bool = False) -> None:
        # a case whose header is the seed's layout keeps the seed's data by a sparse extension
        if full:
            out.append(Case(name, blob, 0, family))
        else:
            out.append(Case(name, blob, size, family))

    def patched(f: Field, value: int) -> bytes:
        b = bytearray(header)
        try:
            struct.pack_into(f.fmt, b, f.offset, value)
        except struct.error:
            struct.pack_into(f.fmt, b, f.offset, value & (2 ** (8 * struct.calcsize(f.fmt)) - 1))
        return bytes(b)

    # 1. every recorded field set to boundary values (counts, lengths, types, dims, offsets)
    for i, f in enumerate(lay.fields):
        edges = U64_EDGES if f.fmt == "<Q" else U32_EDGES
        picks = edges if f.kind in ("count", "version", "ndims", "itype", "type", "ttype") else rng.sample(edges, 6)
        if i % 3 and f.kind in ("length", "dim", "toffset"):
            picks = picks[:3]
        old = struct.unpack_from(f.fmt, header, f.offset)[0]
        picks = list(picks) + [old + 1, max(0, old - 1)]
        for v in picks:
            if v == old:
                continue
            add(f"field-{f.kind}-{f.where[:40]}-@{f.offset}={v}", patched(f, v), f"field:{f.kind}")

    # 2. general.alignment of every value and type (replacing the seed's, or added)
    others = [c for c, k in zip(lay.kv_chunks, lay.kv_keys) if k != "general.alignment"]
    align_values = [
        ("u32=0", 4, struct.pack("<I", 0)), ("u32=1", 4, struct.pack("<I", 1)), ("u32=3", 4, struct.pack("<I", 3)),
        ("u32=24", 4, struct.pack("<I", 24)), ("u32=64", 4, struct.pack("<I", 64)),
        ("u32=2^31", 4, struct.pack("<I", 2**31)), ("u32=2^32-1", 4, struct.pack("<I", 2**32 - 1)),
        ("i32=-32", 5, struct.pack("<i", -32)), ("u64=2^40", 10, struct.pack("<Q", 2**40)),
        ("u64=2^63", 10, struct.pack("<Q", 2**63)), ("i64=-1", 11, struct.pack("<q", -1)),
        ("u8=0", 0, b"\0"), ("u8=16", 0, b"\x10"), ("bool=true", 7, b"\x01"), ("bool=false", 7, b"\0"),
        ("f32=32.0", 6, struct.pack("<f", 32.0)), ("f64=nan", 12, struct.pack("<d", float("nan"))),
        ("str=32", STRING, gstr("32")), ("str=abc", STRING, gstr("abc")), ("str=empty", STRING, gstr("")),
        ("array-u32", ARRAY, struct.pack("<IQ", 4, 1) + struct.pack("<I", 32)),
        ("array-empty", ARRAY, struct.pack("<IQ", 4, 0)), ("nested", ARRAY, nested_array(3)),
    ]
    for label, vtype, payload in align_values:
        blob = rebuild(seed, lay, others + [kv("general.alignment", vtype, payload)])
        add(f"alignment-{label}", blob, "alignment", full=True)
        # the same key twice
        blob = rebuild(seed, lay, lay.kv_chunks + [kv("general.alignment", vtype, payload)])
        add(f"alignment-twice-{label}", blob, "alignment", full=True)

    # 3. nested arrays, huge arrays, unknown types, as an extra key or replacing a known one
    for depth in (1, 2, 4, 5, 6, 50, 1000, 5000):
        for key in ("fuzz.nested", "tokenizer.ggml.tokens", "llama.block_count"):
            chunks = [c for c, k in zip(lay.kv_chunks, lay.kv_keys) if k != key] + [kv(key, ARRAY, nested_array(depth))]
            add(f"nested-{depth}-{key}", rebuild(seed, lay, chunks), "nested", full=True)
    for itype in list(SCALAR) + [STRING, ARRAY, 13, 99, 2**31]:
        for count in (2**33, 2**61, 2**64 - 1, 2**24 + 1, 1000):
            payload = struct.pack("<IQ", itype, count) + b"\0" * 16
            add(f"huge-array-t{itype}-n{count}", rebuild(seed, lay, lay.kv_chunks + [kv("fuzz.array", ARRAY, payload)]),
                "huge-array", full=True)
    for vtype in (13, 14, 99, 2**31, 2**32 - 1):
        add(f"unknown-type-{vtype}", rebuild(seed, lay, lay.kv_chunks + [kv("fuzz.value", vtype, b"\0" * 8)]),
            "type", full=True)
    # values of the wrong type for the keys the program reads
    wrong = [("str", STRING, gstr("not a number")), ("f32", 6, struct.pack("<f", float("inf"))),
             ("u64-huge", 10, struct.pack("<Q", 2**63)), ("i32-neg", 5, struct.pack("<i", -5)),
             ("bool", 7, b"\x01"), ("array-str", ARRAY, struct.pack("<IQ", STRING, 1) + gstr("x")),
             ("array-u32", ARRAY, struct.pack("<IQ", 4, 2) + struct.pack("<II", 1, 2)),
             ("array-nested", ARRAY, nested_array(2))]
    for key in ("general.architecture", "general.name", "general.file_type", "llama.block_count",
                "llama.context_length", "llama.embedding_length", "llama.attention.head_count",
                "llama.attention.head_count_kv", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                "tokenizer.ggml.bos_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.model"):
        for label, vtype, payload in wrong:
            chunks = [c for c, k in zip(lay.kv_chunks, lay.kv_keys) if k != key] + [kv(key, vtype, payload)]
            add(f"wrong-type-{key}-{label}", rebuild(seed, lay, chunks), "wrong-type", full=True)

    # 4. counts that disagree with the sections (more or fewer keys/tensors than written)
    for dk in (-2, -1, 1, 2, 1000):
        add(f"kv-count{dk:+d}", rebuild(seed, lay, lay.kv_chunks, n_kv=max(0, len(lay.kv_chunks) + dk)), "count",
            full=True)
        add(f"tensor-count{dk:+d}", rebuild(seed, lay, lay.kv_chunks, n_tensors=max(0, lay.n_tensors + dk)),
            "count", full=True)
    # a tensor listed twice; tensors dropped
    add("tensor-twice", rebuild(seed, lay, lay.kv_chunks, lay.tensor_chunks + lay.tensor_chunks[:1]), "tensor",
        full=True)
    add("no-tensors", rebuild(seed, lay, lay.kv_chunks, []), "tensor", full=True)
    add("key-twice", rebuild(seed, lay, lay.kv_chunks + lay.kv_chunks[:1]), "key", full=True)

    # 5. truncation at every field of every section (and one byte either side), and in the data
    cuts = {0, 1, 3, 4, 7, 8, 15, 16, 23, 24, lay.tensor_start, lay.header_end, lay.data_start}
    for f in lay.fields:
        cuts.update((f.offset, f.offset + 1, f.offset + struct.calcsize(f.fmt) - 1))
    for i in range(20):
        cuts.add(lay.data_start + (size - lay.data_start) * i // 20)
    cuts.update((size - 1, size - 2))
    for cut in sorted(c for c in cuts if 0 <= c < size):
        add(f"truncated-at-{cut}", seed[:cut], "truncation", full=True)

    # 6. random byte flips in the header (1 to 8 bytes)
    while len(out) < n:
        b = bytearray(header)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(4, len(b))] = rng.randrange(256)
        add(f"flip-{len(out)}", bytes(b), "flip")
    return out


def write_case(folder: Path, index: int, case: Case) -> Path:
    """The case as a file: its bytes, extended (sparse) to ``pad_to``."""
    path = Path(folder) / f"case-{index:04d}.gguf"
    with open(path, "wb") as fh:
        fh.write(case.header)
        if case.pad_to > len(case.header):
            fh.truncate(case.pad_to)
    return path


def write_full(folder: Path, index: int, case: Case, seed: bytes) -> Path:
    """The case with the seed's real tensor data (for llama.cpp, which reads the weights)."""
    path = Path(folder) / f"full-{index:04d}.gguf"
    data = case.header
    if case.pad_to > len(data):
        data = data + seed[len(data):case.pad_to]
    path.write_bytes(data)
    os.utime(path)
    return path
