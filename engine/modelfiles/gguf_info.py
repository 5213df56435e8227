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

from engine.modelfiles.errors import ModelFileError, PartialFileError

LOGOS_TAGS = (
    "<ProteinS>", "<ProteinE>", "<PocketS>", "<PocketE>", "<MoleculeS>", "<MoleculeE>",
    "<AntibodyS>", "<AntibodyE>", "<MaterialS>", "<MaterialE>", "<MetalS>", "<MetalE>",
    "<React>", "<ReverseReact>", "<Search>", "<Trans>",
)  # the tag table of docs LOGOS-GRAMMAR.md
TOKEN_TYPES = {1: "normal", 2: "unknown", 3: "control", 4: "user_defined", 5: "unused", 6: "byte"}
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_INTEGER = {0, 1, 2, 3, 4, 5, 10, 11}
_STRING, _ARRAY = 8, 9
DEFAULT_ALIGNMENT = 32
# Limits of the reader (a header beyond them is refused, never allocated). Every count and length
# is also bounded by the bytes left in the file.
MAX_NESTING = 4             # arrays of arrays: llama.cpp itself reads none; 4 levels is generous
MAX_ARRAY_ITEMS = 1 << 22   # items in one array (the largest vocabularies have ~260k tokens, ~500k merges)
MAX_STRING_BYTES = 1 << 30
MAX_KEYS = 1 << 20
MAX_TENSORS = 1 << 24
MAX_DIMS = 4                # GGML_MAX_DIMS
MAX_ALIGNMENT = 1 << 30
GGML_TENSOR_ALIGNMENT = 32  # ggml asserts (aborts the process) when a tensor's data is not aligned so
Progress = Callable[[str, int, int], None]


class _Stream:
    """Reads a GGUF header, knowing how many bytes are left: a count or a length that needs more
    bytes than the file has is refused before anything is allocated."""

    def __init__(self, fh: BinaryIO, path: Path, size: int):
        self.fh = fh
        self.path = path  # named in every error
        self.size = size
        self.pos = 0

    @property
    def left(self) -> int:
        return self.size - self.pos

    def fail(self, reason: str, field: str | None, offset: int | None = None) -> ModelFileError:
        return ModelFileError(self.path, reason, field=field, offset=self.pos if offset is None else offset)

    def need(self, n: int, field: str, what: str = "") -> None:
        """Refuse (PartialFileError) when ``n`` bytes are not left in the file."""
        if n > self.left:
            what = what or f"{n:,} bytes"
            raise PartialFileError(self.path, f"the file ends inside its header after {self.size:,} bytes: "
                                   f"{what} needed, {self.left:,} left (a partial copy or a damaged header; "
                                   "copy it again from the source)", field=field, offset=self.pos)

    def read(self, n: int, field: str) -> bytes:
        self.need(n, field)
        data = self.fh.read(n)
        if len(data) < n:  # the file shrank while we read it
            raise PartialFileError(self.path, f"the file ends inside its header after {self.pos + len(data):,} "
                                   "bytes (it changed while being read)", field=field, offset=self.pos)
        self.pos += n
        return data

    def unpack(self, fmt: str, field: str):
        return struct.unpack(fmt, self.read(struct.calcsize(fmt), field))[0]

    def string(self, field: str) -> str:
        at = self.pos
        n = self.unpack("<Q", field)
        if n > MAX_STRING_BYTES:
            raise self.fail(f"string length {n:,} is implausible: corrupt header", field, at)
        self.need(n, field, f"a string of {n:,} bytes")
        return self.read(n, field).decode("utf-8", errors="replace")

    def value(self, vtype: int, field: str, depth: int = 0, type_at: int | None = None):
        """One typed value (its type read at ``type_at``: just before it, or in its array's
        header). Arrays nest at most MAX_NESTING deep (bounded recursion)."""
        if vtype in _SCALAR:
            return self.unpack(_SCALAR[vtype], field)
        if vtype == _STRING:
            return self.string(field)
        if vtype != _ARRAY:
            raise self.fail(f"unknown value type {vtype}: corrupt header", field,
                            self.pos - 4 if type_at is None else type_at)
        if depth >= MAX_NESTING:
            raise self.fail(f"arrays nested more than {MAX_NESTING} deep: corrupt header", field, self.pos)
        at = self.pos
        itype = self.unpack("<I", field)
        n = self.unpack("<Q", field)
        if itype in _SCALAR:
            item = struct.calcsize(_SCALAR[itype])
        elif itype == _STRING:
            item = 8             # each string has at least its length
        elif itype == _ARRAY:
            item = 12            # each inner array has at least its type and count
        else:
            raise self.fail(f"array of unknown value type {itype}: corrupt header", field, at)
        if n > MAX_ARRAY_ITEMS:
            raise self.fail(f"array of {n:,} items is over the reader's limit of {MAX_ARRAY_ITEMS:,}: "
                            "corrupt header", field, at)
        self.need(n * item, field, f"an array of {n:,} items ({n * item:,} bytes at least)")
        if itype in _SCALAR:
            raw = self.read(item * n, field)
            return list(struct.unpack(f"<{n}{_SCALAR[itype][1]}", raw)) if n else []
        return [self.value(itype, f"{field}[{i}]", depth + 1, at) for i in range(n)]


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
    offsets: dict = field(default_factory=dict)  # key -> byte offset of its value type

    def get(self, key: str, kind: str, default=None):
        """``kv[key]`` checked against ``kind`` ("str", "int", "uint", "bool", "number", "list[str]",
        "list[int]", "int|list[int]"); a value of another type raises ModelFileError naming the key and
        its offset (a crafted file must not reach the code that uses it)."""
        if key not in self.kv:
            return default
        value = self.kv[key]
        if not _is_kind(value, kind):
            shown = repr(value)[:40] if not isinstance(value, list) else f"an array of {len(value)} items"
            raise ModelFileError(self.path, f"expected {kind}, found {type(value).__name__} {shown}",
                                 field=key, offset=self.offsets.get(key))
        return value


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_kind(v, kind: str) -> bool:
    if kind == "str":
        return isinstance(v, str)
    if kind == "int":
        return _is_int(v)
    if kind == "uint":
        return _is_int(v) and v >= 0
    if kind == "bool":
        return isinstance(v, bool) or (_is_int(v) and v in (0, 1))
    if kind == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == "list[str]":
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if kind == "list[int]":
        return isinstance(v, list) and all(_is_int(x) for x in v)
    if kind == "int|list[int]":
        return (_is_int(v) and v >= 0) or (isinstance(v, list) and all(_is_int(x) and x >= 0 for x in v))
    raise ValueError(kind)


def _alignment(kv: dict, path: Path, offsets: dict) -> int:
    """``general.alignment``: an unsigned integer, a positive power of two (ggml's docs/gguf.md)."""
    if "general.alignment" not in kv:
        return DEFAULT_ALIGNMENT
    align = kv["general.alignment"]
    at = offsets.get("general.alignment")
    if not isinstance(align, int) or isinstance(align, bool):
        raise ModelFileError(path, f"must be an unsigned integer, not {type(align).__name__} {str(align)[:40]!r}",
                             field="general.alignment", offset=at)
    if align <= 0 or align & (align - 1) or align > MAX_ALIGNMENT:
        raise ModelFileError(path, f"{align} is not a positive power of two up to {MAX_ALIGNMENT:,}",
                             field="general.alignment", offset=at)
    return align


def read_header(path: str | Path) -> GGUFHeader:
    """Parse and check a GGUF header. Every problem raises :class:`ModelFileError` (a file shorter
    than it says: its subclass :class:`PartialFileError`) naming the file, the byte offset and the
    field; nothing is allocated beyond what the file's own bytes can hold."""
    import gguf

    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise ModelFileError(path, "is a folder, not a GGUF file")
        fh = open(path, "rb")
    except FileNotFoundError:
        raise ModelFileError(path, "file not found") from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    with fh:
        s = _Stream(fh, path, size)
        if size < 4:
            raise PartialFileError(path, f"only {size} bytes: not a GGUF file, or a copy that stopped at once")
        magic = s.read(4, "magic")
        if magic != b"GGUF":
            raise ModelFileError(path, f"not a GGUF file (starts with {magic!r}, expected b'GGUF')")
        version = s.unpack("<I", "version")
        if version not in (2, 3):
            raise ModelFileError(path, f"GGUF version {version} is not supported (2 or 3)", field="version", offset=4)
        n_tensors = s.unpack("<Q", "tensor_count")
        n_kv = s.unpack("<Q", "metadata_kv_count")
        if n_tensors > MAX_TENSORS or n_kv > MAX_KEYS:
            raise ModelFileError(path, f"implausible counts ({n_tensors:,} tensors, {n_kv:,} keys): corrupt header",
                                 field="tensor_count" if n_tensors > MAX_TENSORS else "metadata_kv_count", offset=8)
        # each key/value needs at least 8 (key length) + 4 (type) + 1 bytes; each tensor info 8+4+4+8
        s.need(n_kv * 13 + n_tensors * 24, "metadata_kv_count",
               f"{n_kv:,} keys and {n_tensors:,} tensor infos ({n_kv * 13 + n_tensors * 24:,} bytes at least)")
        kv: dict = {}
        offsets: dict[str, int] = {}
        for i in range(n_kv):
            at = s.pos
            key = s.string(f"key #{i}")
            if key in kv:
                raise s.fail("the key appears twice: corrupt header", key, at)
            offsets[key] = s.pos
            kv[key] = s.value(s.unpack("<I", key), key)
        align = _alignment(kv, path, offsets)
        known_types = gguf.GGMLQuantizationType._value2member_map_
        tensors = []
        names: set[str] = set()
        for i in range(n_tensors):
            at = s.pos
            name = s.string(f"tensor #{i} name")
            field = f"tensor {name[:60]!r}"
            if name in names:
                raise s.fail("the tensor name appears twice: corrupt header", field, at)
            names.add(name)
            n_dims = s.unpack("<I", field)
            if not 1 <= n_dims <= MAX_DIMS:
                raise s.fail(f"{n_dims} dimensions (ggml has 1 to {MAX_DIMS})", field, s.pos - 4)
            dims = tuple(s.unpack("<Q", field) for _ in range(n_dims))
            type_at = s.pos
            type_id, offset = s.unpack("<I", field), s.unpack("<Q", field)
            if type_id not in known_types:
                raise s.fail(f"unknown tensor type {type_id}", field, type_at)
            block, type_size = gguf.GGML_QUANT_SIZES.get(gguf.GGMLQuantizationType(type_id), (1, 0))
            n_el = 1
            for d in dims:
                n_el *= d
            if dims and dims[0] % block:
                raise s.fail(f"first dimension {dims[0]} is not a multiple of the {block}-element block of its "
                             "type", field, at)
            if n_dims == 1 and type_id != 0:
                # norms, biases and rope factors: llama.cpp's converter writes every 1-D tensor as F32
                # (its kernels take F32 only there; another type aborts the process inside ggml)
                raise s.fail(f"a one-dimensional tensor stored as {gguf.GGMLQuantizationType(type_id).name} "
                             "(llama.cpp needs F32 here)", field, type_at)
            if offset % align:
                raise s.fail(f"data offset {offset:,} is not a multiple of the alignment {align}", field, type_at + 4)
            tensors.append(TensorInfo(name, dims, type_id, offset, n_el // block * type_size))
        header_end = s.pos
    data_start = (header_end + align - 1) // align * align
    for t in tensors:
        if (data_start + t.offset) % GGML_TENSOR_ALIGNMENT:
            raise ModelFileError(path, f"tensor data not aligned to {GGML_TENSOR_ALIGNMENT} bytes (data section at "
                                 f"byte {data_start:,}, general.alignment {align}); ggml needs every tensor aligned",
                                 field=f"tensor {t.name[:60]!r}", offset=data_start + t.offset)
    last = max(tensors, key=lambda t: t.offset + t.nbytes, default=None)
    end = last.offset + last.nbytes if last is not None else 0
    expected = data_start + end
    if size < expected:
        pct = 100.0 * size / expected if expected else 0.0
        raise PartialFileError(path, f"tensor data incomplete: {size:,} of {expected:,} bytes present ({pct:.1f}%): "
                               "a partial copy or interrupted download; copy the file again",
                               field=f"tensor {last.name[:60]!r}", offset=size)
    return GGUFHeader(path, version, kv, tensors, data_start, expected, size, offsets)


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
    arch = h.get("general.architecture", "str")
    if not arch:
        raise ModelFileError(h.path, "missing: not a model file", field="general.architecture")
    tokens = h.get("tokenizer.ggml.tokens", "list[str]") or []
    types = h.get("tokenizer.ggml.token_type", "list[int]") or []
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
    add_bos = h.get("tokenizer.ggml.add_bos_token", "bool")
    info = GGUFInfo(
        path=str(h.path), size=h.file_size, architecture=arch, name=str(h.get("general.name", "str", h.path.stem)),
        n_params=n_params, context_length=h.get(f"{arch}.context_length", "uint"),
        embedding_length=h.get(f"{arch}.embedding_length", "uint"), block_count=h.get(f"{arch}.block_count", "uint"),
        quant=quant_name(h.get("general.file_type", "uint"), h.tensors), tokenizer=h.get("tokenizer.ggml.model", "str"),
        pre_tokenizer=h.get("tokenizer.ggml.pre", "str"), n_vocab=len(tokens),
        bos_id=h.get("tokenizer.ggml.bos_token_id", "uint"), eos_id=h.get("tokenizer.ggml.eos_token_id", "uint"),
        add_bos=bool(add_bos) if add_bos is not None else None, tags=tag_info,
    )
    if with_hash:
        info.sha256 = sha256_file(h.path, progress)
    return info
