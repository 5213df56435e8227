"""Bad input: every case is a clear StructureReadError (FILE:LINE: reason) or a warning listing
what was dropped; never a traceback from a library, never a hang."""

from __future__ import annotations

import gzip
import os
import random
import string
import time
from pathlib import Path

import gemmi
import pytest

from engine.structures import io as sio
from engine.structures.model import StructureReadError

DATA = Path(__file__).resolve().parents[2] / "data" / "structures"


def err(tmp_path, name: str, data: bytes, **kw) -> StructureReadError:
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(StructureReadError) as exc:
        sio.read_file(p, **kw)
    assert str(exc.value).startswith(str(p)), str(exc.value)
    return exc.value


def test_empty_whitespace_binary_and_missing(tmp_path):
    assert err(tmp_path, "empty.pdb", b"").reason == "empty file"
    assert err(tmp_path, "blank.sdf", b" \n\n\t\n").reason == "empty file"
    e = err(tmp_path, "image.pdb", bytes(range(256)) * 40)
    assert e.reason == "binary data, not a structure file of any supported format"
    with pytest.raises(StructureReadError, match="no such file"):
        sio.read_file(tmp_path / "nope.sdf")
    with pytest.raises(StructureReadError, match="is a folder"):
        sio.read_file(tmp_path)


def test_unrecognised_text(tmp_path):
    e = err(tmp_path, "notes.txt", b"Dear colleague,\nplease find attached the structure.\n")
    assert "unrecognised format" in e.reason


def test_truncated_gzip_and_truncated_sdf(tmp_path):
    blob = gzip.compress((DATA / "1YJP.cif").read_bytes())
    e = err(tmp_path, "cut.cif.gz", blob[: len(blob) // 2])
    assert "damaged or truncated gz archive" in e.reason
    sdf = (DATA / "1ia1_ligand.sdf").read_text() + "$$$$\n"
    two = sdf + sdf
    cut = two[: len(sdf) + 400]  # second record cut inside its atom block
    p = tmp_path / "cut.sdf"
    p.write_text(cut)
    objs = sio.read_file(p)
    assert len(objs) == 1
    assert any(w.startswith("dropped 1 unreadable SDF record(s): line ") for w in objs[0].warnings), objs[0].warnings
    assert any("may be truncated" in w for w in objs[0].warnings)


def test_sdf_bad_record_gives_line_and_rdkit_reason(tmp_path):
    sdf = (DATA / "1ia1_ligand.sdf").read_text()
    lines = sdf.split("\n")
    lines[3] = "  2  1  0  0  0  0  0  0  0  0999 V2000"
    bad = "\n".join(lines[:4] + ["    0.0000    0.0000    0.0000 N   0  0", "    1.0000    0.0000    0.0000 Qq  0  0",
                                 "  1  2  1  0", "M  END", "$$$$", ""])
    e = err(tmp_path, "bad.sdf", bad.encode())
    assert e.line == 1


def test_truncated_xyz_says_where(tmp_path):
    e = err(tmp_path, "cut.xyz", b"5\nwater box\nO 0 0 0\nH 0 0 1\n")
    assert e.line == 1 and "header says 5 atoms" in e.reason


def test_truncated_mmcif_is_an_error_with_a_line(tmp_path):
    text = (DATA / "1YJP.cif").read_text()
    cut = text[: text.index("_atom_site.group_PDB") + 2000]
    p = tmp_path / "cut.cif"
    p.write_text(cut)
    try:
        objs = sio.read_file(p)
    except StructureReadError as exc:
        assert str(exc).startswith(str(p))
    else:  # gemmi reads the atoms before the cut: fewer atoms than the whole file, said plainly
        assert objs[0].summary()["atoms"] < sio.read_file(DATA / "1YJP.cif")[0].summary()["atoms"]


def test_pdb_alternate_locations_listed():
    obj = sio.read_file(DATA / "4E43.pdb")[0]
    w = [w for w in obj.warnings if w.startswith("alternate locations")]
    assert w == ["alternate locations: kept the first conformer, dropped 34 atom(s) in A:GLU34, A:MET46, "
                 "A:ILE50, A:ILE64, A:ILE84, B:CYS67, B:ILE84"]
    assert not any(a.has_altloc() for ch in obj.structure[0] for r in ch for a in r)


def test_pdb_without_chain_ids_gets_named():
    obj = sio.read_file(DATA / "adk_open_10res.pdb")[0]
    assert obj.warnings == ["1 chain(s) had no chain id; named A"]
    assert [ch.name for ch in obj.structure[0]] == ["A"]


def test_pdb_missing_residues_listed(tmp_path):
    lines = (DATA / "1hvr.pdb").read_text().split("\n")
    kept = [ln for ln in lines if not (ln.startswith("ATOM") and ln[21] == "A" and 40 <= int(ln[22:26]) <= 44)]
    p = tmp_path / "gap.pdb"
    p.write_text("\n".join(kept))
    obj = sio.read_file(p)[0]
    assert "missing residues (gaps in the chain): A:40-44" in obj.warnings


def test_pdb_star_serials_and_hybrid36(tmp_path):
    obj = sio.read_file(DATA / "xl_serial.pdb")[0]
    assert obj.summary()["atoms"] == 4
    # a real protein tiled past 99,999 atoms: gemmi writes hybrid-36 serials, we read them back
    st = gemmi.read_structure(str(DATA / "1hvr.pdb"))
    st.remove_ligands_and_waters()
    model = st[0]
    base = [model[i].clone() for i in range(len(model))]
    while len(model):
        del model[0]
    names = iter(a + b for a in string.ascii_uppercase for b in string.digits)
    for copy in range(62):
        for ch in base:
            c = ch.clone()
            c.name = next(names)
            for r in c:
                for a in r:
                    a.pos = gemmi.Position(a.pos.x + 60.0 * copy, a.pos.y, a.pos.z)
            model.add_chain(c)
    p = tmp_path / "big.pdb"
    p.write_text(st.make_pdb_string())
    t = time.monotonic()
    big = sio.read_file(p)[0]
    assert time.monotonic() - t < 60
    assert big.summary()["atoms"] == model.count_atom_sites() > 100_000
    assert "hybrid-36 atom serial numbers (over 99,999 atoms) were read" in big.warnings


def test_very_large_file_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setenv("LOGOS_MAX_STRUCTURE_BYTES", "100000")
    e = err(tmp_path, "big.pdb", (DATA / "1hvr.pdb").read_bytes())
    assert "over the 0 MiB limit" in e.reason or "limit" in e.reason
    blob = gzip.compress(b"C" * 300_000)  # a small archive that inflates past the limit
    e = err(tmp_path, "bomb.smi.gz", blob)
    assert "decompressed data is over" in e.reason


def test_time_limit_stops_a_long_multi_record_read(tmp_path):
    from rdkit import RDConfig

    # 20 copies of RDKit's 5K NCI set (99,820 records): more than any machine reads in 0.3 s (one
    # copy was read whole in under 0.3 s on a quiet machine, and the limit never struck)
    lines = (Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi").read_text().splitlines()
    p = tmp_path / "nci_x20.smi"
    p.write_text("\n".join(lines * 20) + "\n")
    t = time.monotonic()
    objs = sio.read_file(p, timeout=0.3)
    assert time.monotonic() - t < 10
    assert 0 < len(objs) < 20 * 4991
    assert any("read time limit" in w for w in objs[0].warnings)
    with pytest.raises(StructureReadError, match="time limit"):
        sio.read_file(p, timeout=0)


def test_partial_occupancy_cif_warns_and_keeps_the_sites():
    obj = sio.read_file(DATA / "CoFeNiAs3-Skutterudite.cif")[0]
    assert any("partial occupancy" in w for w in obj.warnings), obj.warnings


def test_fuzzed_real_files_never_escape(tmp_path):
    """Random byte damage to real files of every format: a result or a StructureReadError, nothing else."""
    rng = random.Random(7)
    sources = ["1ia1_ligand.sdf", "zinc_856218.mol2", "1YJP.cif", "CaCO3-Calcite.cif", "test.fasta",
               "adk_open_10res.pdb", "FUDQIF_clean.cif"]
    outcomes = {"read": 0, "error": 0}
    for k in range(70):
        name = sources[k % len(sources)]
        data = bytearray((DATA / name).read_bytes())
        for _ in range(rng.randint(1, 6)):
            if len(data) < 2:
                break
            op = rng.random()
            pos = rng.randrange(len(data))
            if op < 0.3:
                del data[pos: pos + rng.randint(1, 200)]
            elif op < 0.6:
                data[pos: pos] = bytes(rng.choice(b"0123456789.-ACNOH \n$@<>") for _ in range(rng.randint(1, 30)))
            elif op < 0.8:
                data = data[: pos]  # truncate
            else:
                data[pos] = rng.randrange(256)
        p = tmp_path / f"fuzz{k}_{name}"
        p.write_bytes(bytes(data))
        t = time.monotonic()
        try:
            objs = sio.read_file(p, timeout=20)
            assert objs
            outcomes["read"] += 1
        except StructureReadError as exc:
            assert str(exc).startswith(str(p))
            outcomes["error"] += 1
        assert time.monotonic() - t < 30
    assert outcomes["read"] and outcomes["error"]


def test_mislabelled_cif_that_is_an_mmcif(tmp_path):
    p = tmp_path / "crystal.cif"
    p.write_bytes((DATA / "1YJP.cif").read_bytes())
    obj = sio.read_file(p)[0]
    assert obj.fmt == "mmcif" and obj.kind == "protein"
