"""`logos encode` and `logos decode` as a user runs them (a subprocess each)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.grammar import codec

DATA = Path(__file__).resolve().parents[2] / "data" / "structures"


def logos(*args: str, stdin: str | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def test_encode_complex_json_has_the_contract_fields():
    out = logos("encode", str(DATA / "1hvr.pdb"), "--json")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["kind"] == "complex" and row["granularity"] == "pocket"
    assert row["ligand"] == {"resname": "XK2", "chain": "A", "resnum": 263, "smiles": row["ligand"]["smiles"]}
    assert "[C@H]" in row["ligand"]["smiles"]
    assert {"chain", "resnum", "resname"} <= set(row["pocket_residues"][0])
    d = codec.decode(row["record"])
    assert d.valid and d.kind == "complex"
    # encode -> decode returns the same pocket set (chain order, sequence positions)
    marked = sum(len(p.pockets) for p in d.records[0].proteins)
    assert marked == len(row["pocket_residues"])


@pytest.mark.slow
def test_encode_granularity_cutoff_and_named_ligand():
    plain = logos("encode", str(DATA / "1hvr.pdb"), "--granularity", "plain")
    assert plain.returncode == 0 and "<PocketS>" not in plain.stdout and plain.stdout.count("<ProteinS>") == 2
    smiles = logos("encode", str(DATA / "1hvr.pdb"), "--granularity", "smiles", "--ligand", "XK2",
                   "--chain", "A", "--resnum", "263", "--cutoff", "3.5", "--json")
    row = json.loads(smiles.stdout)
    assert row["cutoff"] == 3.5 and "<PocketS>N" in row["record"]
    assert codec.decode(row["record"]).records[0].granularity == "smiles"
    wide = json.loads(logos("encode", str(DATA / "1hvr.pdb"), "--cutoff", "6", "--json").stdout)
    assert len(wide["pocket_residues"]) > len(row["pocket_residues"])


def test_encode_molecules_material_sequence():
    mol = logos("encode", str(DATA / "1ia1_ligand.sdf"))
    assert mol.stdout.strip() == "<MoleculeS>Nc1nc(N)c2c(Sc3ccccc3)cccc2n1<MoleculeE>"
    mof = json.loads(logos("encode", str(DATA / "FUDQIF_clean.cif"), "--json").stdout)
    assert mof["kind"] == "material" and mof["record"].startswith("<MaterialS><MetalS>rod[")
    fasta = logos("encode", str(DATA / "test.fasta"))
    assert fasta.returncode == 0 and fasta.stdout.startswith("<ProteinS>MKRVVVDPVTRIEGHLRIEIMVDEETGQ")


@pytest.mark.slow
def test_encode_errors_are_one_line_exit_2():
    cases = [
        ("encode", "/definitely/not/here.pdb"),
        ("encode", str(DATA / "1hvr.pdb"), "--ligand", "ATP"),
        ("encode", str(DATA / "1ia1_ligand.sdf"), "--ligand", "TQ3"),
        ("encode", str(DATA / "CaCO3-Calcite.cif")),
        ("encode", str(DATA / "BrokenMolecule.mol2")),
    ]
    for args in cases:
        out = logos(*args)
        assert out.returncode == 2, (args, out.stderr)
        err = out.stderr.strip().split("\n")
        assert len(err) == 1 and err[0].startswith("logos encode: error: "), out.stderr
        assert "Traceback" not in out.stderr


def test_encode_warnings_go_to_stderr():
    out = logos("encode", str(DATA / "4E43.pdb"))
    assert out.returncode == 0
    assert "logos encode: warning: alternate locations" in out.stderr
    assert out.stdout.count("<ProteinS>") == len(out.stdout.strip().split("\n"))


def test_decode_text_and_json():
    out = logos("decode", stdin="<MoleculeS>c1cccc1<MoleculeE>\n")
    assert out.returncode == 0
    assert "valid: no" in out.stdout
    assert "reason: molecule: Can't kekulize mol.  Unkekulized atoms: 0 1 2 3 4" in out.stdout
    rec = codec.encode_reaction(["CCO", "CC(=O)O"], ["CCOC(C)=O"])
    out = logos("decode", "--json", stdin=rec.replace("CC(=O)O", "OC(C)=O") + "\n<ProteinS>MKT<ProteinE>\n")
    rows = [json.loads(ln) for ln in out.stdout.strip().split("\n")]
    assert [r["kind"] for r in rows] == ["reaction", "protein"]
    assert rows[0]["valid"] and rows[0]["record"] == rec  # canonical SMILES
    assert rows[1]["objects"][0]["sequence"] == "MKT"
    empty = logos("decode", stdin="")
    assert empty.returncode == 2 and empty.stderr.startswith("logos decode: error: empty input")
