"""Benchmark: parse + encode throughput of the structure readers and the LOGOS codec.

Run by its own command, never in CI:  .venv/bin/python -m pytest tests/benchmarks/test_bench_codec.py -s

Each figure is printed next to its baseline measured in the same run (the bare library call our
code wraps), so the ratio shows what our checks and canonicalisation cost:
* 10,000 MOSES test-set SMILES (molsets 0.3.1): read as a SMILES file, encode each molecule,
  decode every record back; baseline RDKit MolFromSmiles + MolToSmiles.
* a ~100,000-atom structure (PDB 1HVR tiled 70 times, hybrid-36 serials): read, AtomTable (what the
  3D view draws), one protein record per chain, a pocket; baseline gemmi's own read.
"""

from __future__ import annotations

import string
import time
from pathlib import Path

import gemmi
import pytest

from engine import datasets
from engine.grammar import codec
from engine.structures import io as sio
from engine.structures import pocket
from engine.structures.atoms import atom_table, chain_sequences

DATA = Path(__file__).resolve().parents[1] / "data" / "structures"


def _moses(n: int) -> list[str]:
    try:
        text = datasets.read_text("molsets", "moses/dataset/data/test.csv.gz")
    except datasets.DatasetMissing as exc:
        pytest.skip(str(exc))
    lines = [ln.split(",")[0] for ln in text.splitlines()[1:] if ln.strip()]
    return lines[:n]


def _rate(n, seconds):
    return f"{n / seconds:,.0f}/s ({seconds:.2f} s)"


def test_bench_moses_smiles_parse_encode_decode():
    from rdkit import Chem

    smiles = _moses(10_000)
    assert len(smiles) == 10_000

    t = time.perf_counter()
    base = [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in smiles]
    t_base = time.perf_counter() - t

    t = time.perf_counter()
    objs = sio.read_text("\n".join(smiles), fmt="smi")
    t_read = time.perf_counter() - t
    t = time.perf_counter()
    records = [codec.encode_molecule(o.mol) for o in objs]
    t_enc = time.perf_counter() - t
    t = time.perf_counter()
    decoded = [codec.decode(r) for r in records]
    t_dec = time.perf_counter() - t

    assert len(objs) == 10_000 and all(d.valid for d in decoded)
    assert [d.objects[0]["smiles"] for d in decoded] == base  # the same canonical SMILES as RDKit's
    ours = t_read + t_enc
    print(f"\n[codec] MOSES 10k SMILES  RDKit parse+canonical (baseline): {_rate(10_000, t_base)}")
    print(f"[codec] MOSES 10k SMILES  read_text {_rate(10_000, t_read)}, encode {_rate(10_000, t_enc)}, "
          f"parse+encode {_rate(10_000, ours)}  ratio to baseline {ours / t_base:.2f}x")
    print(f"[codec] MOSES 10k records decode+validate {_rate(10_000, t_dec)}  ratio to baseline {t_dec / t_base:.2f}x")


def _tiled_structure(copies: int = 70) -> gemmi.Structure:
    st = gemmi.read_structure(str(DATA / "1hvr.pdb"))
    model = st[0]
    base = [model[i].clone() for i in range(len(model))]
    while len(model):
        del model[0]
    names = iter(a + b for a in string.ascii_uppercase for b in string.digits)
    for copy in range(copies):
        for ch in base:
            c = ch.clone()
            c.name = next(names)
            for r in c:
                for a in r:
                    a.pos = gemmi.Position(a.pos.x + 60.0 * copy, a.pos.y, a.pos.z)
            model.add_chain(c)
    st.setup_entities()
    return st


def test_bench_100k_atom_structure(tmp_path):
    path = tmp_path / "tiled_1hvr.pdb"
    path.write_text(_tiled_structure().make_pdb_string())

    t = time.perf_counter()
    raw = gemmi.read_structure(str(path))
    t_base = time.perf_counter() - t
    n_atoms = raw[0].count_atom_sites()
    assert n_atoms > 100_000

    t = time.perf_counter()
    obj = sio.read_file(path)[0]
    t_read = time.perf_counter() - t
    atom_table(obj)  # the dictionary entries load once per process (and per cache): time the warm call too
    t = time.perf_counter()
    table = atom_table(obj)
    t_table = time.perf_counter() - t
    t = time.perf_counter()
    records = [codec.encode_protein(seq) for seq in chain_sequences(obj.structure).values()]
    t_enc = time.perf_counter() - t
    t = time.perf_counter()
    pk = pocket.find_pocket(obj, ligand="XK2")
    rec = pk.record()
    t_pocket = time.perf_counter() - t

    assert len(table) == n_atoms and len(records) == 140 and codec.decode(rec).valid
    print(f"\n[codec] {n_atoms:,}-atom PDB  gemmi read (baseline) {t_base:.2f} s")
    print(f"[codec] {n_atoms:,}-atom PDB  read_file {t_read:.2f} s (ratio {t_read / t_base:.1f}x), "
          f"AtomTable {t_table:.2f} s ({len(table.bonds):,} bonds), {len(records)} protein records "
          f"{t_enc * 1000:.0f} ms, pocket + complex record {t_pocket:.2f} s; "
          f"parse+encode {(t_read + t_enc) / t_base:.1f}x baseline, {n_atoms / (t_read + t_enc):,.0f} atoms/s")
