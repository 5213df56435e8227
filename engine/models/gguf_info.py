"""Check a GGUF file and read what the user needs to know about it.

We parse the header ourselves (the layout is documented in ggml's docs/gguf.md: magic ``GGUF``,
version, tensor and key counts, typed key/value pairs, tensor infos, aligned data) so that a
truncated file is reported with the bytes expected and present instead of an opaque error, and
so that checking a multi-gigabyte file reads only its header (plus the whole file once when the
SHA-256 is asked for).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

from engine.models.errors import ModelFileError, PartialFileError

LOGOS_TAGS = (
    "<ProteinS>", "<ProteinE>", "<PocketS>", "<PocketE>", "<MoleculeS>", "<MoleculeE>",
    "<AntibodyS>", "<AntibodyE>", "<MaterialS>", "<MaterialE>", "<MetalS>", "<MetalE>",
    "<React>", "<ReverseReact>", "<Search>", "<Trans>",
)  # the tag table of docs LOGOS-GRAMMAR.md
TOKEN_TYPES = {1: "normal", 2: "unknown", 3: "control", 4: "user_defined", 5: "unused", 6: "byte"}
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
DEFAULT_ALIGNMENT = 32
Progress = Callable[[str, int, int], None]


class _Truncated(Exception):
    pass


class _Stream:
    def __init__(self, fh: BinaryIO, path: Path | None = None):
        self.fh = fh
        self.path = path  # named in every error

    def read(self, n: int) -> bytes:
        data = self.fh.read(n)
        if len(data) < n:
            raise _Truncated()
        return data

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.unpack("<Q")
        if n > 1 << 30:
            raise ModelFileError(self.path, f"string length {n} is implausible: corrupt header")
        return self.read(n).decode("utf-8", errors="replace")

    def value(self, vtype: int):
        if vtype in _SCALAR:
            return self.unpack(_SCALAR[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            itype, n = self.unpack("<I"), self.unpack("<Q")
            if itype in _SCALAR:
                fmt = _SCALAR[itype]
                size = struct.calcsize(fmt)
                raw = self.read(size * n)
                return list(struct.unpack(f"<{n}{fmt[1]}", raw)) if n else []
            return [self.value(itype) for _ in range(n)]
        raise ModelFileError(self.path, f"unknown value type {vtype}: corrupt header")


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]   # ggml order (fastest dimension first)
    type_id: int
    offset: int              # relative to the data section
    nbytes: int

    @property
    def type_name(self) -> str:
        import gguf

        try:
            return gguf.GGMLQuantizationType(self.type_id).name
        except ValueError:
            return f"type{self.type_id}"


@dataclass
class GGUFHeader:
    path: Path
    version: int
    kv: dict
    tensors: list[TensorInfo]
    data_start: int
    expected_size: int
    file_size: int


def read_header(path: str | Path) -> GGUFHeader:
    """Parse and check a GGUF header; PartialFileError when the file is shorter than it says."""
    import gguf

    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelFileError(path, "file not found") from None
    if path.is_dir():
        raise ModelFileError(path, "is a folder, not a GGUF file")
    with open(path, "rb") as fh:
        s = _Stream(fh, path)
        try:
            magic = s.read(4)
        except _Truncated:
            raise PartialFileError(path, f"only {size} bytes: not a GGUF file, or a copy that stopped at once") from None
        if magic != b"GGUF":
            raise ModelFileError(path, f"not a GGUF file (starts with {magic!r}, expected b'GGUF')")
        try:
            version = s.unpack("<I")
            if version not in (2, 3):
                raise ModelFileError(path, f"GGUF version {version} is not supported (2 or 3)", field="version")
            n_tensors, n_kv = s.unpack("<Q"), s.unpack("<Q")
            if n_tensors > 1 << 24 or n_kv > 1 << 24:
                raise ModelFileError(path, f"implausible counts ({n_tensors} tensors, {n_kv} keys): corrupt header")
            kv = {}
            for _ in range(n_kv):
                key = s.string()
                kv[key] = s.value(s.unpack("<I"))
            tensors = []
            for _ in range(n_tensors):
                name = s.string()
                n_dims = s.unpack("<I")
                dims = tuple(s.unpack("<Q") for _ in range(n_dims))
                type_id, offset = s.unpack("<I"), s.unpack("<Q")
                block, type_size = gguf.GGML_QUANT_SIZES.get(gguf.GGMLQuantizationType(type_id), (1, 0)) \
                    if type_id in gguf.GGMLQuantizationType._value2member_map_ else (1, 0)
                n_el = 1
                for d in dims:
                    n_el *= d
                tensors.append(TensorInfo(name, dims, type_id, offset, n_el // block * type_size))
            header_end = fh.tell()
        except _Truncated:
            raise PartialFileError(path, f"the file ends inside its header after {size} bytes: a partial copy "
                                   "(copy it again from the source)") from None
    align = int(kv.get("general.alignment", DEFAULT_ALIGNMENT))
    data_start = (header_end + align - 1) // align * align
    end = max((t.offset + t.nbytes for t in tensors), default=0)
    expected = data_start + end
    if size < expected:
        pct = 100.0 * size / expected if expected else 0.0
        raise PartialFileError(path, f"tensor data incomplete: {size:,} of {expected:,} bytes present ({pct:.1f}%): "
                               "a partial copy or interrupted download; copy the file again")
    return GGUFHeader(path, version, kv, tensors, data_start, expected, size)


def quant_name(file_type: int | None, tensors: list[TensorInfo] | None = None) -> str:
    """'F16', 'Q8_0', 'Q4_K_M', ... from general.file_type (or the commonest 2-D tensor type)."""
    import gguf

    if file_type is not None:
        try:
            name = gguf.LlamaFileType(int(file_type)).name
            return name.replace("MOSTLY_", "").replace("ALL_", "")
        except ValueError:
            pass
    counts: dict[str, int] = {}
    for t in tensors or []:
        if len(t.shape) > 1:
            counts[t.type_name] = counts.get(t.type_name, 0) + t.nbytes
    return max(counts, key=counts.get) if counts else "unknown"


def sha256_file(path: str | Path, progress: Progress | None = None, chunk: int = 16 << 20) -> str:
    path = Path(path)
    total = path.stat().st_size
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
            done += len(block)
            if progress:
                progress("hash", done, total)
    return h.hexdigest()


@dataclass
class GGUFInfo:
    path: str
    size: int
    architecture: str
    name: str
    n_params: int
    context_length: int | None
    embedding_length: int | None
    block_count: int | None
    quant: str
    tokenizer: str | None
    pre_tokenizer: str | None
    n_vocab: int
    bos_id: int | None
    eos_id: int | None
    add_bos: bool | None
    tags: dict[str, dict] = field(default_factory=dict)   # tag -> {"single": bool, "id", "type"}
    sha256: str | None = None

    @property
    def all_tags_single(self) -> bool:
        return bool(self.tags) and all(t["single"] for t in self.tags.values())

    def as_dict(self) -> dict:
        d = asdict(self)
        d["all_tags_single"] = self.all_tags_single
        return d


def inspect_gguf(path: str | Path, with_hash: bool = True, progress: Progress | None = None,
                 tags: tuple[str, ...] = LOGOS_TAGS) -> GGUFInfo:
    """Check the file (PartialFileError / ModelFileError) and read its metadata."""
    h = read_header(path)
    kv = h.kv
    arch = kv.get("general.architecture")
    if not arch:
        raise ModelFileError(h.path, "missing: not a model file", field="general.architecture")
    tokens = kv.get("tokenizer.ggml.tokens") or []
    types = kv.get("tokenizer.ggml.token_type") or []
    index = {}
    for i, t in enumerate(tokens):
        index.setdefault(t, i)
    tag_info = {}
    for tag in tags:
        idx = index.get(tag)
        ttype = TOKEN_TYPES.get(types[idx], "?") if idx is not None and idx < len(types) else None
        # Control and user-defined tokens are matched whole by llama.cpp's tokenizer (control ones
        # when special-token parsing is on, as the runtime does); a "normal" BPE token of the same
        # text is only produced if the merges happen to build it.
        tag_info[tag] = {"single": ttype in ("control", "user_defined"), "id": idx, "type": ttype}
    n_params = 0
    for t in h.tensors:
        n = 1
        for d in t.shape:
            n *= d
        n_params += n
    info = GGUFInfo(
        path=str(h.path), size=h.file_size, architecture=arch, name=str(kv.get("general.name", h.path.stem)),
        n_params=n_params, context_length=kv.get(f"{arch}.context_length"),
        embedding_length=kv.get(f"{arch}.embedding_length"), block_count=kv.get(f"{arch}.block_count"),
        quant=quant_name(kv.get("general.file_type"), h.tensors), tokenizer=kv.get("tokenizer.ggml.model"),
        pre_tokenizer=kv.get("tokenizer.ggml.pre"), n_vocab=len(tokens), bos_id=kv.get("tokenizer.ggml.bos_token_id"),
        eos_id=kv.get("tokenizer.ggml.eos_token_id"), add_bos=kv.get("tokenizer.ggml.add_bos_token"), tags=tag_info,
    )
    if with_hash:
        info.sha256 = sha256_file(h.path, progress)
    return info
