"""Read and write structure files: SMILES, SDF, MOL, MOL2, XYZ, PDB, mmCIF, CIF, POSCAR, FASTA.

Readers are built on RDKit (molecules), gemmi (proteins and complexes), pymatgen (crystals) and
Biopython (sequences). The format is chosen by content as well as by extension; a file whose
extension disagrees with its content is read by its content, with a warning. Gzip and bzip2 are
decompressed transparently. Every failure is a :class:`StructureReadError` (``FILE:LINE: reason``);
whatever was dropped or repaired is listed in ``LoadedObject.warnings``.

Bounds: files over ``max_bytes`` (default 512 MiB, ``LOGOS_MAX_STRUCTURE_BYTES``) are refused
before parsing, and multi-record files stop at ``timeout`` seconds (default 120) with a warning
saying how many records were read.
"""

from __future__ import annotations

import bz2
import gzip
import io as _io
import lzma
import re
import time
import warnings as _warnings
import zlib
from contextlib import contextmanager
from pathlib import Path

from engine.env import env_int
from engine.structures import residues as _res
from engine.structures.model import FORMATS, LoadedObject, StructureReadError

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_TIMEOUT_S = 120.0
MAX_COORDINATE = 1e6  # Å: a larger (or NaN) coordinate is refused with the atom named
XYZ_BOND_ORDER_MAX_ATOMS = 60  # RDKit's bond-order search is exponential in the worst case

_EXTENSIONS = {
    ".sdf": "sdf", ".sd": "sdf", ".mol": "mol", ".mdl": "mol", ".mol2": "mol2", ".ml2": "mol2",
    ".xyz": "xyz", ".smi": "smi", ".smiles": "smi", ".ism": "smi", ".can": "smi", ".pdb": "pdb",
    ".ent": "pdb", ".pdb1": "pdb", ".cif": "cif", ".mmcif": "mmcif", ".mcif": "mmcif",
    ".poscar": "poscar", ".vasp": "poscar", ".contcar": "poscar", ".fasta": "fasta", ".fa": "fasta",
    ".faa": "fasta", ".fas": "fasta", ".fna": "fasta",
}
_ALIASES = {"sd": "sdf", "mdl": "mol", "smiles": "smi", "ent": "pdb", "vasp": "poscar",
            "contcar": "poscar", "fa": "fasta", "cif_crystal": "cif", "mcif": "mmcif"}


def max_bytes() -> int:
    return env_int("LOGOS_MAX_STRUCTURE_BYTES", DEFAULT_MAX_BYTES)


# ---------------------------------------------------------------------------------------------
# public API


def read_file(path, fmt: str | None = None, *, timeout: float | None = None) -> list[LoadedObject]:
    """Every object in the file at ``path``; raises :class:`StructureReadError`."""
    path = Path(path)
    if not path.exists():
        raise StructureReadError("no such file", path)
    if path.is_dir():
        raise StructureReadError("is a folder, not a file", path)
    limit = max_bytes()
    size = path.stat().st_size
    if size > limit:
        raise StructureReadError(
            f"file is {size / 2**20:.0f} MiB, over the {limit / 2**20:.0f} MiB limit "
            "(set LOGOS_MAX_STRUCTURE_BYTES to raise it)", path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StructureReadError(f"cannot read: {exc.strerror or exc}", path) from None
    return read_bytes(data, fmt=fmt, name=path.name, path=path, timeout=timeout)


def read_text(text: str, fmt: str | None = None, *, name: str = "pasted",
              timeout: float | None = None) -> list[LoadedObject]:
    """Every object in pasted text (source ``None``)."""
    if not isinstance(text, str):
        raise StructureReadError("expected text")
    return read_bytes(text.encode("utf-8"), fmt=fmt, name=name, path=None, timeout=timeout)


def read_bytes(data: bytes, fmt: str | None = None, *, name: str = "data", path: Path | None = None,
               timeout: float | None = None) -> list[LoadedObject]:
    warns: list[str] = []
    data, name = _decompress(data, name, path)
    if not data.strip():
        raise StructureReadError("empty file", path or name)
    if _looks_binary(data):
        raise StructureReadError("binary data, not a structure file of any supported format", path or name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
        warns.append("file is not UTF-8; read as Latin-1")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    chosen = _choose_format(text, name, fmt, warns)
    if chosen is None:
        raise StructureReadError("unrecognised format: not SMILES, SDF, MOL, MOL2, XYZ, PDB, mmCIF, CIF, "
                                 "POSCAR or FASTA", path or name)
    deadline = time.monotonic() + (DEFAULT_TIMEOUT_S if timeout is None else timeout)
    ctx = _Ctx(path=path, name=name, deadline=deadline)
    reader = _READERS[chosen]
    try:
        objs = reader(text, ctx)
    except StructureReadError as exc:
        if _GUESSED_SMILES in warns:
            raise StructureReadError("unrecognised format: not SMILES, SDF, MOL, MOL2, XYZ, PDB, mmCIF, CIF, "
                                     f"POSCAR or FASTA (read as SMILES: {exc.reason})", path or name, exc.line) from None
        raise
    except MemoryError:
        raise StructureReadError("out of memory while parsing", path or name) from None
    except Exception as exc:  # a library's own parse error: keep its words
        raise StructureReadError(f"not a valid {chosen.upper()} file: {_one_line(exc)}", path or name) from None
    if not objs:
        if time.monotonic() > deadline:
            raise StructureReadError("stopped at the read time limit before the first record", path or name)
        raise StructureReadError(f"no {chosen.upper()} record could be read", path or name)
    for o in objs:
        _check_coordinates(o, path or name)
    for o in objs:
        o.warnings[:0] = [w for w in warns if w != _GUESSED_SMILES]
    return objs


def _check_coordinates(obj: LoadedObject, where) -> None:
    """Refuse NaN or infinite coordinates (and residues without a number): nothing could draw them."""
    import math

    def bad(values) -> bool:  # the 3D view draws float32: 1e308 would become infinite there
        return not all(math.isfinite(v) and abs(v) < MAX_COORDINATE for v in values)

    import numpy as np

    what = None

    def all_fine(arr) -> bool:  # vectorised first pass; the per-atom scan below only names the culprit
        arr = np.asarray(arr, float)
        return bool(np.isfinite(arr).all() and (np.abs(arr) < MAX_COORDINATE).all())

    if obj.mol is not None and all(all_fine(c.GetPositions()) for c in obj.mol.GetConformers()):
        pass
    elif obj.mol is not None:
        for conf in obj.mol.GetConformers():
            for i, p in enumerate(conf.GetPositions()):
                if bad(p):
                    what = f"atom {i + 1} ({obj.mol.GetAtomWithIdx(i).GetSymbol()})"
                    break
            if what:
                break
    structure_fine = False
    if obj.structure is not None and len(obj.structure):
        box = obj.structure.calculate_box()
        com = obj.structure[0].calculate_center_of_mass()
        corners = [box.minimum.x, box.minimum.y, box.minimum.z, box.maximum.x, box.maximum.y, box.maximum.z]
        structure_fine = all_fine(corners + [com.x, com.y, com.z]) and all(
            res.seqid.num is not None for model in obj.structure for ch in model for res in ch)
    if what is None and obj.structure is not None and not structure_fine:
        for model in obj.structure:
            for ch in model:
                for res in ch:
                    if res.seqid.num is None:
                        raise StructureReadError(f"{obj.name}: residue {res.name} in chain {ch.name} has no "
                                                 "residue number (columns shifted?)", where)
                    for a in res:
                        if bad((a.pos.x, a.pos.y, a.pos.z)):
                            what = f"atom {a.name} of {ch.name}:{res.name}{res.seqid.num}"
                            break
                    if what:
                        break
                if what:
                    break
            if what:
                break
    if what is None and obj.crystal is not None:
        if bad(v for row in obj.crystal.lattice.matrix for v in row):
            what = "the unit cell"
        else:
            for i, site in enumerate(obj.crystal):
                if bad(site.coords):
                    what = f"site {i + 1} ({site.species_string})"
                    break
    if what:
        raise StructureReadError(f"{obj.name}: {what} has a coordinate that is NaN, infinite or over "
                                 f"{MAX_COORDINATE:.0e} Å", where)


def detect_format(text: str, name: str = "") -> str | None:
    """Best guess of the format from content, then extension; None if neither says."""
    return _sniff(text) or _ext_format(name, text)


def write_text(obj: LoadedObject, fmt: str) -> str:
    fmt = _norm_fmt(fmt)
    if fmt in ("sdf", "mol", "smi", "xyz") or (fmt == "pdb" and obj.mol is not None and obj.structure is None):
        mol = _need(obj.mol, obj, fmt)
        from rdkit import Chem

        if fmt == "sdf":
            sio = _io.StringIO()
            w = Chem.SDWriter(sio)
            w.write(mol)
            w.close()
            return sio.getvalue()
        if fmt == "mol":
            return Chem.MolToMolBlock(mol)
        if fmt == "smi":
            from engine.grammar.chem import canonical_smiles

            return f"{canonical_smiles(mol)} {obj.name}\n"
        if fmt == "xyz":
            if mol.GetNumConformers() == 0:
                raise StructureReadError(f"{obj.name} has no coordinates; XYZ needs them")
            return Chem.MolToXYZBlock(mol)
        return Chem.MolToPDBBlock(mol)
    if fmt in ("pdb", "mmcif"):
        st = _need(obj.structure, obj, fmt)
        if fmt == "pdb":
            return st.make_pdb_string()
        doc = st.make_mmcif_document()
        return doc.as_string()
    if fmt in ("cif", "poscar"):
        s = _need(obj.crystal, obj, fmt)
        if fmt == "cif":
            from pymatgen.io.cif import CifWriter

            return str(CifWriter(s))
        from pymatgen.io.vasp import Poscar

        return Poscar(s).get_str()
    if fmt == "fasta":
        seq = obj.sequence
        if seq is None and obj.structure is not None:
            from engine.structures.atoms import chain_sequences

            return "".join(f">{obj.name}_{c}\n{_wrap(s)}\n" for c, s in chain_sequences(obj.structure).items())
        if seq is None:
            raise StructureReadError(f"{obj.name} has no sequence; FASTA needs one")
        return f">{obj.name}\n{_wrap(seq)}\n"
    if fmt == "mol2":
        raise StructureReadError("writing MOL2 is not supported (RDKit reads MOL2 but cannot write it); use SDF")
    raise StructureReadError(f"unknown format {fmt!r}")


def write_file(obj: LoadedObject, path, fmt: str | None = None) -> Path:
    """Write ``obj`` to ``path`` (format from ``fmt`` or the extension; ``.gz`` compresses)."""
    path = Path(path)
    base = path.name[:-3] if path.name.endswith(".gz") else path.name
    if fmt is None:
        fmt = _ext_format(base, "")
        if base.lower().endswith(".cif") and obj.structure is not None and obj.crystal is None:
            fmt = "mmcif"
        if fmt is None:
            raise StructureReadError(f"cannot tell the format from the name {path.name!r}; pass fmt", path)
    text = write_text(obj, fmt)
    data = text.encode("utf-8")
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------
# helpers


class _Ctx:
    def __init__(self, path, name, deadline):
        self.path = path
        self.name = name
        self.deadline = deadline

    @property
    def where(self):
        return self.path or self.name

    @property
    def stem(self):
        n = Path(self.name).name
        for suf in (".gz", ".bz2", ".xz"):
            if n.endswith(suf):
                n = n[: -len(suf)]
        return Path(n).stem or "structure"

    def source(self):
        return self.path

    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def error(self, reason, line=None):
        return StructureReadError(reason, self.where, line)


def _one_line(exc) -> str:
    msg = " ".join(str(exc).split())
    return msg or type(exc).__name__


def _need(value, obj, fmt):
    if value is None:
        raise StructureReadError(f"{obj.name} is a {obj.kind}; it cannot be written as {fmt.upper()}")
    return value


def _wrap(seq: str, width: int = 80) -> str:
    return "\n".join(seq[i: i + width] for i in range(0, len(seq), width)) or ""


def _norm_fmt(fmt: str) -> str:
    f = fmt.lower().lstrip(".")
    f = _ALIASES.get(f, f)
    if f not in FORMATS:
        raise StructureReadError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    return f


def _decompress(data: bytes, name: str, path) -> tuple[bytes, str]:
    limit = max_bytes()
    opener = None
    if data[:2] == b"\x1f\x8b":
        opener, suffix = (lambda fh: gzip.GzipFile(fileobj=fh)), ".gz"
    elif data[:3] == b"BZh":
        opener, suffix = bz2.BZ2File, ".bz2"
    elif data[:6] == b"\xfd7zXZ\x00":
        opener, suffix = lzma.LZMAFile, ".xz"
    if opener is None:
        return data, name
    try:
        with opener(_io.BytesIO(data)) as fh:
            out = fh.read(limit + 1)
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise StructureReadError(f"damaged or truncated {suffix[1:]} archive: {_one_line(exc)}", path or name) from None
    if len(out) > limit:
        raise StructureReadError(f"decompressed data is over the {limit / 2**20:.0f} MiB limit", path or name)
    if name.endswith(suffix):
        name = name[: -len(suffix)]
    return out, name


def _looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if b"\x00" in head:
        return True
    ctrl = sum(1 for b in head if b < 9 or 13 < b < 32)
    return ctrl > max(4, len(head) // 50)


def _ext_format(name: str, text: str) -> str | None:
    n = name.lower()
    for suf in (".gz", ".bz2", ".xz"):
        if n.endswith(suf):
            n = n[: -len(suf)]
    base = Path(n).name
    if base.startswith(("poscar", "contcar")):
        return "poscar"
    ext = Path(n).suffix
    fmt = _EXTENSIONS.get(ext)
    if fmt == "cif" and text and _is_mmcif(text):
        return "mmcif"
    return fmt


def _is_mmcif(text: str) -> bool:
    return "_atom_site.cartn_x" in text.lower() or "_atom_site.group_pdb" in text.lower()


_PDB_RECORDS = ("ATOM  ", "HETATM", "HEADER", "CRYST1", "REMARK", "MODEL ", "COMPND", "TITLE ",
                "SEQRES", "EXPDTA", "AUTHOR", "ATOM", "HETATM")
_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?"


def _sniff(text: str) -> str | None:
    head = text[:200_000]
    lines = [ln for ln in head.split("\n")[:400]]
    nonempty = [ln for ln in lines if ln.strip()]
    if not nonempty:
        return None
    first = nonempty[0]
    if first.startswith(">"):
        return "fasta"
    if "@<TRIPOS>MOLECULE" in head:
        return "mol2"
    if re.search(r"^\s*data_", head, re.M) and "_atom_site" in head.lower():
        return "mmcif" if _is_mmcif(head) else "cif"
    if re.search(r"^\s*data_", head, re.M) and ("_cell_length_a" in head or "_symmetry" in head):
        return "cif"
    if len(lines) >= 4 and re.search(r"V[23]000", lines[3] if len(lines) > 3 else "") or re.search(r"^M  END\s*$", head, re.M):
        return "sdf" if "$$$$" in head else "mol"
    pdb_hits = sum(1 for ln in nonempty[:200] if ln.startswith(_PDB_RECORDS))
    if pdb_hits >= 1 and any(ln.startswith(("ATOM", "HETATM")) for ln in nonempty) or pdb_hits >= 3:
        return "pdb"
    if re.fullmatch(r"\s*\d+\s*", first) and len(nonempty) >= 2:
        body = nonempty[2:3] or nonempty[1:2]
        if body and re.match(rf"\s*[A-Za-z]{{1,3}}\s+{_FLOAT}\s+{_FLOAT}\s+{_FLOAT}", body[0]):
            return "xyz"
    if len(nonempty) >= 5 and re.fullmatch(rf"\s*{_FLOAT}(\s+{_FLOAT}){{0,2}}\s*", nonempty[1]):
        if all(re.fullmatch(rf"\s*{_FLOAT}\s+{_FLOAT}\s+{_FLOAT}\s*", ln) for ln in nonempty[2:5]):
            return "poscar"
    return None


def _smiles_like(text: str) -> bool:
    for ln in text.split("\n")[:20]:
        tok = ln.strip().split()
        if not tok:
            continue
        if tok[0].lower() in ("smiles", "smi", "canonical_smiles"):
            continue
        return bool(re.fullmatch(r"[A-Za-z0-9@+\-\[\]()=#$:./\\%*]+", tok[0]))
    return False


def _choose_format(text: str, name: str, fmt: str | None, warns: list[str]) -> str | None:
    if fmt:
        return _norm_fmt(fmt)
    by_content = _sniff(text)
    by_ext = _ext_format(name, text)
    if by_content and by_ext and by_content != by_ext and {by_content, by_ext} != {"sdf", "mol"}:
        warns.append(f"the name says {by_ext.upper()} but the content is {by_content.upper()}; "
                     f"read as {by_content.upper()}")
        return by_content
    if by_content:
        return by_ext if by_ext in ("sdf", "mol") and by_content in ("sdf", "mol") else by_content
    if by_ext:
        return by_ext
    if _smiles_like(text):
        warns.append(_GUESSED_SMILES)
        return "smi"
    return None


_GUESSED_SMILES = "format guessed as SMILES (no extension or content marker says otherwise)"


# RDKit messages -------------------------------------------------------------------------------

from engine.grammar.chem import rdkit_messages  # noqa: E402  (re-exported for callers)


def _quiet():
    from rdkit import rdBase

    return rdBase.BlockLogs()


def _rd_reason(msgs: list[str], default: str) -> str:
    msgs = [m for m in msgs if not m.startswith("ERROR: moving to the beginning")]
    return "; ".join(msgs[:3]) if msgs else default


# molecule readers -------------------------------------------------------------------------------


def _mol_name(mol, fallback: str) -> str:
    if mol is not None and mol.HasProp("_Name") and mol.GetProp("_Name").strip():
        return mol.GetProp("_Name").strip()
    return fallback


def _read_smi(text: str, ctx: _Ctx) -> list[LoadedObject]:
    from rdkit import Chem

    objs, bad = [], []
    lines = text.split("\n")
    for i, raw in enumerate(lines, start=1):
        ln = raw.strip()
        if not ln or ln.startswith("#"):
            continue
        parts = ln.replace("\t", " ").replace(",", " ").split(None, 1) if "\t" in ln or " " in ln else [ln]
        smi = parts[0]
        if i == 1 and smi.lower() in ("smiles", "smi", "canonical_smiles"):
            continue
        if ctx.expired():
            if objs:
                objs[0].warnings.append(f"stopped at line {i}: the read time limit; later lines not read")
            break
        with _quiet():
            mol = Chem.MolFromSmiles(smi)
        if mol is None:  # parse again to capture RDKit's own words for this line
            with rdkit_messages() as msgs:
                Chem.MolFromSmiles(smi)
            bad.append((i, _rd_reason(msgs, "SMILES could not be parsed")))
            continue
        name = parts[1].strip() if len(parts) > 1 and parts[1].strip() else f"{ctx.stem}_{len(objs) + 1}"
        objs.append(LoadedObject("molecule", name, ctx.source(), "smi", mol=mol))
    _attach_bad(objs, bad, ctx, "SMILES")
    return objs


def _attach_bad(objs, bad, ctx, what):
    if not bad:
        return
    if not objs:
        line, reason = bad[0]
        more = f" (and {len(bad) - 1} more bad records)" if len(bad) > 1 else ""
        raise ctx.error(reason + more, line)
    listing = "; ".join(f"line {ln}: {r}" for ln, r in bad[:10])
    more = f"; and {len(bad) - 10} more" if len(bad) > 10 else ""
    objs[0].warnings.append(f"dropped {len(bad)} unreadable {what} record(s): {listing}{more}")


def _read_sdf(text: str, ctx: _Ctx, fmt: str = "sdf") -> list[LoadedObject]:
    from rdkit import Chem

    lines = text.split("\n")
    starts = [1]
    for i, ln in enumerate(lines, start=1):
        if ln.strip() == "$$$$" and i < len(lines) and any(x.strip() for x in lines[i:i + 4]):
            starts.append(i + 1)
    supplier = Chem.SDMolSupplier()
    supplier.SetData(text, sanitize=True, removeHs=False)
    objs, bad = [], []
    n = len(supplier)
    for k in range(n):
        line = starts[k] if k < len(starts) else None
        if ctx.expired():
            if objs:
                objs[0].warnings.append(f"stopped after {k} of {n} records: the read time limit")
            break
        with rdkit_messages() as msgs:
            try:
                mol = supplier[k]
            except Exception as exc:  # noqa: BLE001 - RDKit raises on badly broken records
                mol = None
                msgs.append(_one_line(exc))
        if mol is None or mol.GetNumAtoms() == 0:
            bad.append((line, _rd_reason(msgs, "record could not be parsed")))
            continue
        objs.append(LoadedObject("molecule", _mol_name(mol, f"{ctx.stem}_{k + 1}"), ctx.source(), fmt, mol=mol))
    if len(starts) > n and "".join(lines[starts[n] - 1:]).strip():
        bad.append((starts[n], "incomplete last record (no 'M  END')"))
    if fmt == "sdf" or bad:
        _attach_bad(objs, bad, ctx, fmt.upper())
    if not text.rstrip().endswith(("$$$$", "M  END")) and objs:
        objs[-1].warnings.append("file ends without '$$$$' or 'M  END': it may be truncated")
    return objs


def _read_mol(text: str, ctx: _Ctx) -> list[LoadedObject]:
    objs = _read_sdf(text, ctx, fmt="mol")
    if len(objs) > 1:
        objs[0].warnings.append(f"a MOL file holds one molecule; it has {len(objs)} records, all were read")
    return objs


def _read_mol2(text: str, ctx: _Ctx) -> list[LoadedObject]:
    from rdkit import Chem

    lines = text.split("\n")
    starts = [i for i, ln in enumerate(lines) if ln.strip().upper() == "@<TRIPOS>MOLECULE"]
    objs, bad = [], []
    for k, s in enumerate(starts):
        e = starts[k + 1] if k + 1 < len(starts) else len(lines)
        block = "\n".join(lines[s:e]) + "\n"
        if ctx.expired():
            break
        with rdkit_messages() as msgs:
            mol = Chem.MolFromMol2Block(block, sanitize=True, removeHs=False)
        if mol is None:
            bad.append((s + 1, _rd_reason(msgs, "MOL2 record could not be parsed")))
            continue
        objs.append(LoadedObject("molecule", _mol_name(mol, f"{ctx.stem}_{k + 1}"), ctx.source(), "mol2", mol=mol))
    _attach_bad(objs, bad, ctx, "MOL2")
    return objs


def _read_xyz(text: str, ctx: _Ctx) -> list[LoadedObject]:
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    lines = text.split("\n")
    objs, i, frame = [], 0, 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n = int(lines[i].split()[0])
        except ValueError:
            raise ctx.error(f"expected an atom count, found {lines[i].strip()[:40]!r}", i + 1) from None
        if n <= 0:
            raise ctx.error("atom count must be positive", i + 1)
        block = lines[i: i + n + 2]
        if len(block) < n + 2 or sum(1 for b in block[2:] if b.strip()) < n:
            raise ctx.error(f"truncated: the header says {n} atoms, the file has fewer", i + 1)
        frame += 1
        with rdkit_messages() as msgs:
            mol = Chem.MolFromXYZBlock("\n".join(block) + "\n")
        if mol is None:
            raise ctx.error(_rd_reason(msgs, "XYZ frame could not be parsed"), i + 1)
        warns = []
        if not any(a.GetAtomicNum() == 1 for a in mol.GetAtoms()) and any(a.GetAtomicNum() == 6 for a in mol.GetAtoms()):
            warns.append("no hydrogen atoms: bond orders guessed from geometry are unreliable")
        try:
            rdDetermineBonds.DetermineConnectivity(mol)
            if mol.GetNumAtoms() <= XYZ_BOND_ORDER_MAX_ATOMS:
                try:
                    rdDetermineBonds.DetermineBondOrders(mol, charge=0)
                except Exception as exc:  # noqa: BLE001
                    warns.append(f"bond orders could not be assigned ({_one_line(exc)}); connectivity only")
            else:
                warns.append(f"{mol.GetNumAtoms()} atoms: bond orders not assigned (over "
                             f"{XYZ_BOND_ORDER_MAX_ATOMS}); connectivity only")
        except Exception as exc:  # noqa: BLE001
            warns.append(f"bonds could not be perceived: {_one_line(exc)}")
        title = block[1].strip()
        name = title if title and len(title) < 80 else f"{ctx.stem}_{frame}"
        objs.append(LoadedObject("molecule", name, ctx.source(), "xyz", mol=mol, warnings=warns))
        i += n + 2
        if ctx.expired():
            break
    return objs


# macromolecule readers -------------------------------------------------------------------------------


def _read_pdb(text: str, ctx: _Ctx) -> list[LoadedObject]:
    import gemmi

    if not any(ln.startswith(("ATOM", "HETATM")) for ln in text.split("\n")):
        raise ctx.error("no ATOM or HETATM records")
    st = gemmi.read_pdb_string(text)
    return [_from_gemmi(st, ctx, "pdb", text)]


def _read_mmcif(text: str, ctx: _Ctx) -> list[LoadedObject]:
    import gemmi

    try:
        doc = gemmi.cif.read_string(text)
    except (RuntimeError, ValueError) as exc:
        msg = _one_line(exc)
        m = re.search(r":(\d+)", msg)
        raise ctx.error(msg, int(m.group(1)) if m else None) from None
    if len(doc) == 0:
        raise ctx.error("no data block")
    st = gemmi.make_structure_from_block(doc[0])
    return [_from_gemmi(st, ctx, "mmcif", None)]


def _from_gemmi(st, ctx: _Ctx, fmt: str, text: str | None) -> LoadedObject:
    import gemmi

    warns: list[str] = []
    if len(st) == 0 or st[0].count_atom_sites() == 0:
        raise ctx.error("no atoms")
    if len(st) > 1:
        warns.append(f"kept model 1 of {len(st)}; dropped {len(st) - 1} other model(s)")
        while len(st) > 1:
            del st[1]
    model = st[0]
    # alternate locations: keep the first conformer, say what was dropped
    alt_res = []
    # only scan atoms when the file has alternate locations at all (column 17 of ATOM/HETATM)
    maybe_alt = text is None or re.search(r"^(?:ATOM  |HETATM).{10}[^ ]", text, re.M) is not None
    for ch in (model if maybe_alt else ()):
        for res in ch:
            if any(a.has_altloc() for a in res):
                alt_res.append(f"{ch.name}:{res.name}{res.seqid.num}{res.seqid.icode.strip()}")
    if alt_res:
        before = model.count_atom_sites()
        st.remove_alternative_conformations()
        dropped = before - st[0].count_atom_sites()
        listing = ", ".join(alt_res[:12]) + (f" and {len(alt_res) - 12} more" if len(alt_res) > 12 else "")
        warns.append(f"alternate locations: kept the first conformer, dropped {dropped} atom(s) in {listing}")
    model = st[0]
    # chains without a name
    blank = [ch for ch in model if not ch.name.strip()]
    if blank:
        used = {ch.name for ch in model}
        for ch in blank:
            new = next(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + "abcdefghijklmnopqrstuvwxyz" if c not in used)
            used.add(new)
            ch.name = new
        warns.append(f"{len(blank)} chain(s) had no chain id; named {', '.join(ch.name for ch in blank)}")
    st.setup_entities()
    # missing residues: gaps in numbering or broken peptide bonds inside a polymer chain
    gaps = []
    for ch in model:
        prev = None
        for res in ch:
            if not _res.is_amino_acid(res.name):
                prev = None
                continue
            if prev is not None and res.seqid.num - prev.seqid.num > 1:
                c, n = prev.find_atom("C", "*"), res.find_atom("N", "*")
                if c is None or n is None or c.pos.dist(n.pos) > 2.0:
                    gaps.append(f"{ch.name}:{prev.seqid.num + 1}-{res.seqid.num - 1}")
            prev = res
    if gaps:
        listing = ", ".join(gaps[:12]) + (f" and {len(gaps) - 12} more" if len(gaps) > 12 else "")
        warns.append(f"missing residues (gaps in the chain): {listing}")
    if text is not None and re.search(r"^(ATOM  |HETATM)[A-Za-z]", text, re.M):
        warns.append("hybrid-36 atom serial numbers (over 99,999 atoms) were read")
    polymer = sum(1 for ch in model for r in ch if _res.is_polymer_residue(r.name))
    ligands = [r.name for ch in model for r in ch
               if r.het_flag == "H" and not _res.is_polymer_residue(r.name) and not _res.never_ligand(r.name)]
    name = ctx.stem if ctx.path is not None or st.name in ("", "string") else st.name
    if polymer == 0:
        kind = "molecule" if ligands else "protein"
    else:
        kind = "complex" if ligands else "protein"
    obj = LoadedObject(kind, name, ctx.source(), fmt, structure=st, warnings=warns)
    if kind == "molecule":
        from rdkit import Chem

        with rdkit_messages():
            # a ligand-only PDB: RDKit keeps the bond orders written as repeated CONECT records
            obj.mol = Chem.MolFromPDBBlock(text if text is not None else st.make_pdb_string(), removeHs=False)
    from engine.structures.atoms import chain_sequences

    seqs = chain_sequences(st)
    if len(seqs) == 1:
        obj.sequence = next(iter(seqs.values()))
    _ = gemmi
    return obj


# crystals -------------------------------------------------------------------------------


@contextmanager
def _py_warnings():
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        out: list[str] = []
        yield out
    for w in caught:
        msg = _one_line(w.message)
        if msg and msg not in out:
            out.append(msg)


def read_p1_cif(text: str):
    """gemmi's small-molecule CIF reader into a pymatgen Structure for P1 cells (every CoRE MOF CIF):
    50-100x faster than pymatgen's CifParser on large cells. None when the CIF has symmetry to
    expand, partial occupancy, or gemmi cannot read it (the caller then uses pymatgen's CifParser)."""
    import gemmi
    from pymatgen.core import Lattice, Structure

    try:
        doc = gemmi.cif.read_string(text)
        ss = gemmi.make_small_structure_from_block(doc.sole_block())
        if not len(ss.sites) or any(site.occ < 0.999 for site in ss.sites):
            return None
        ops = [op.replace(" ", "").lower() for op in ss.symops]
        if ops not in (["x,y,z"], []) or (not ops and ss.spacegroup_hm.replace(" ", "") not in ("P1", "")):
            return None  # symmetry expansion: pymatgen's reader (gemmi's is only trusted for P1 cells here)
        sites = ss.get_all_unit_cell_sites()
        c = ss.cell
        if c.volume <= 1.0:
            return None
        species = [site.element.name for site in sites]
        if any(e in ("X", "") for e in species):
            return None
        lattice = Lattice.from_parameters(c.a, c.b, c.c, c.alpha, c.beta, c.gamma)
        return Structure(lattice, species, [site.fract.tolist() for site in sites])
    except Exception:  # noqa: BLE001 - let the full reader give the error
        return None


def _read_cif(text: str, ctx: _Ctx) -> list[LoadedObject]:
    if text.count("data_") == 1 or len(re.findall(r"^\s*data_", text, re.M)) == 1:
        fast = read_p1_cif(text)  # an ordered P1 cell (every CoRE MOF CIF): gemmi, 50-100x faster
        if fast is not None:
            m = re.search(r"^\s*data_(\S*)", text, re.M)
            name = (m.group(1) if m else "") or ctx.stem
            if name in ("image0", "global"):
                name = ctx.stem
            return [LoadedObject("crystal", name, ctx.source(), "cif", crystal=fast)]
    from pymatgen.io.cif import CifParser

    scaled = False
    with _py_warnings() as pyw:
        err = None
        structures = []
        for tol in (1.05, 2.0):  # second pass: site occupancies summing over 1 (e.g. 1.11) get scaled
            try:
                parser = CifParser(_io.StringIO(text), occupancy_tolerance=tol, site_tolerance=1e-3)
                structures = parser.parse_structures(primitive=False, on_error="warn")
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                structures, err = [], _one_line(exc)
            if structures:
                scaled = tol > 1.05
                break
    if not structures:
        reason = err or next((w for w in pyw if "structure" in w.lower() or "cif" in w.lower()), None)
        raise ctx.error(f"no crystal structure could be built{': ' + reason if reason else ''}")
    objs = []
    blocks = list(parser._cif.data.keys()) if hasattr(parser, "_cif") else []
    for k, s in enumerate(structures):
        warns = [f"pymatgen: {w}" for w in pyw if "deprecat" not in w.lower() and "no structures" not in w.lower()][:10]
        if scaled:
            warns.append("site occupancies summing to more than 1.05 were scaled down to 1")
        if not s.is_ordered:
            partial = [i for i, site in enumerate(s) if not site.is_ordered]
            species = sorted({str(site.species) for site in (s[i] for i in partial)})
            warns.append(f"partial occupancy on {len(partial)} of {len(s)} sites ({', '.join(species[:6])}"
                         f"{' …' if len(species) > 6 else ''}): kept as a disordered structure")
        name = blocks[k] if k < len(blocks) else f"{ctx.stem}_{k + 1}"
        objs.append(LoadedObject("crystal", name or ctx.stem, ctx.source(), "cif", crystal=s, warnings=warns))
    return objs


def _read_poscar(text: str, ctx: _Ctx) -> list[LoadedObject]:
    from pymatgen.io.vasp import Poscar

    with _py_warnings() as pyw:
        p = Poscar.from_str(text, read_velocities=False)
    s = p.structure
    warns = [f"pymatgen: {w}" for w in pyw][:5]
    name = (p.comment or "").strip() or ctx.stem
    return [LoadedObject("crystal", name, ctx.source(), "poscar", crystal=s, warnings=warns)]


# sequences -------------------------------------------------------------------------------


def _read_fasta(text: str, ctx: _Ctx) -> list[LoadedObject]:
    from Bio import SeqIO

    objs = []
    header_lines = [i for i, ln in enumerate(text.split("\n"), start=1) if ln.startswith(">")]
    for k, rec in enumerate(SeqIO.parse(_io.StringIO(text), "fasta")):
        raw = str(rec.seq)
        seq = raw.replace("*", "").replace("-", "").replace(".", "").upper()
        line = header_lines[k] if k < len(header_lines) else None
        warns = []
        gaps = sum(raw.count(c) for c in "-.")
        if gaps:
            warns.append(f"record {rec.id!r}: removed {gaps} alignment gap character(s) ('-', '.')")
        if not seq:
            warns.append(f"line {line}: record {rec.id!r} has an empty sequence")
        bad = sorted(set(seq) - set("ACDEFGHIKLMNPQRSTVWYUOXBZJ"))
        if bad:
            raise ctx.error(f"record {rec.id!r}: characters that are not residue letters: {''.join(bad[:10])}", line)
        objs.append(LoadedObject("sequence", rec.id or f"{ctx.stem}_{k + 1}", ctx.source(), "fasta",
                                 sequence=seq, warnings=warns))
        if ctx.expired():
            break
    return objs


_READERS = {
    "smi": _read_smi, "sdf": _read_sdf, "mol": _read_mol, "mol2": _read_mol2, "xyz": _read_xyz,
    "pdb": _read_pdb, "mmcif": _read_mmcif, "cif": _read_cif, "poscar": _read_poscar, "fasta": _read_fasta,
}
