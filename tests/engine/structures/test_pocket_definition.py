"""One definition of "ligand" and "pocket" (engine.structures.pocket): the residue classes, the
ligand list and its specs, and the pocket that the ligand task encodes, on real complexes."""

from __future__ import annotations

import re
from pathlib import Path

import gemmi
import numpy as np
import pytest

from engine.structures import io as sio
from engine.structures import pocket
from engine.structures.atoms import atom_table

DATA = Path(__file__).resolve().parents[2] / "data" / "structures"


def marked_in_prompt(prompt: str, structure, used: list[str] | None = None) -> set[tuple[str, str]]:
    """{(chain, number)} of the residues a ligand-task prompt marks with <PocketS>…<PocketE>, read
    from the text: the k-th letter of a chain's block is its k-th amino acid in file order. ``used``:
    the chains of the blocks (else the first chain, in file order, with the block's sequence)."""
    chains = pocket.chain_residues(structure)
    out = set()
    blocks = re.findall(r"<ProteinS>(.*?)(?:<ProteinE>|$)", prompt.split("<MoleculeS>")[0])
    used = list(used or chains)
    for block in blocks:
        letters = re.findall(r"<PocketS>(.)<PocketE>|(.)", block)
        seq = "".join(a or b for a, b in letters)
        chain = next(c for c in used if "".join(_one(r.name) for r in chains[c]) == seq)
        used.remove(chain)
        for k, (marked, _plain) in enumerate(letters):
            if marked:
                res = chains[chain][k]
                out.add((chain, f"{res.seqid.num}{res.seqid.icode.strip()}"))
    return out


def _one(name: str) -> str:
    from engine.structures import residues

    return residues.one_letter(name)


def test_residue_classes():
    cases = {"ALA": "polymer", "MSE": "polymer", "CSO": "polymer", "DA": "polymer", "HOH": "water",
             "WAT": "water", "ZN": "other", "SO4": "other", "GOL": "other", "ACE": "other",
             "XK2": "ligand", "NDP": "ligand", "TQ3": "ligand", " xk2 ": "ligand"}
    assert {n: pocket.residue_class(n) for n in cases} == cases
    assert pocket.is_ligand("XK2") and not pocket.is_ligand("HOH")


@pytest.mark.parametrize("name, lig", [("1hvr.pdb", "XK2"), ("1ia1_protein_one_lig_removed.pdb", "TQ3")])
def test_atom_classes_partition_the_atoms(name, lig):
    obj = sio.read_file(DATA / name)[0]
    table = atom_table(obj)
    m = pocket.atom_classes(table.res_names)
    stacked = np.vstack([m[c] for c in pocket.CLASSES])
    assert (stacked.sum(axis=0) == 1).all()  # every atom in exactly one class
    st = obj.structure
    ligand = sum(len(r) for ch in st[0] for r in ch if r.name in (lig, "NDP"))
    water = sum(len(r) for ch in st[0] for r in ch if r.is_water())
    aa = sum(len(r) for ch in st[0] for r in ch if gemmi.find_tabulated_residue(r.name) is not None
             and gemmi.find_tabulated_residue(r.name).is_amino_acid())
    assert int(m["ligand"].sum()) == ligand > 19
    assert int(m["water"].sum()) == water
    assert int(m["polymer"].sum()) == aa
    assert pocket.atom_classes([])["ligand"].shape == (0,)


def test_ligands_largest_first_and_specs_select_them_back():
    prot = sio.read_file(DATA / "1ia1_protein_one_lig_removed.pdb")[0]
    refs = pocket.ligands(prot)
    assert [r.resname for r in refs][:2] == ["NDP", "NDP"] and "TQ3" in {r.resname for r in refs}
    assert refs[0].heavy_atoms >= refs[-1].heavy_atoms
    for ref in refs:
        ch, res, _w = pocket.select_ligand(prot.structure, ref.spec)
        assert (ch.name, res.seqid.num, res.name) == (ref.chain, ref.resnum, ref.resname)
    # the default ligand is the first of the list
    site = pocket.ligand_site(prot)
    assert site.ligand == refs[0]
    assert pocket.ligands(sio.read_file(DATA / "4E43.pdb")[0]) == []  # additives only


def test_spec_parsing_and_errors():
    assert pocket.parse_ligand_spec("XK2") == ("XK2", None, None, None)
    assert pocket.parse_ligand_spec("XK2 A:263") == ("XK2", "A", 263, "")
    assert pocket.parse_ligand_spec(" NDP B:-5A ") == ("NDP", "B", -5, "A")
    st = sio.read_file(DATA / "1hvr.pdb")[0].structure
    with pytest.raises(pocket.PocketError, match="disagrees"):
        pocket.select_ligand(st, "XK2 A:263", chain="B")
    with pytest.raises(pocket.PocketError, match="no residue XK2 chain B number 263"):
        pocket.select_ligand(st, "XK2 B:263")
    with pytest.raises(pocket.PocketError, match="cutoff"):
        pocket.ligand_site(st, cutoff=0)


def test_site_and_find_pocket_are_the_same_pocket():
    prot = sio.read_file(DATA / "1ia1_protein_one_lig_removed.pdb")[0]
    refs = pocket.ligands(prot)
    second = refs[1]  # the other NDP copy: only its spec reaches it, its name picks the first
    by_spec = pocket.ligand_site(prot, second.spec)
    by_name = pocket.ligand_site(prot, "NDP")
    assert by_spec.ligand == second and by_name.ligand == refs[0]
    assert by_spec.keys != by_name.keys
    full = pocket.find_pocket(prot, ligand=second.spec)
    assert {(r.chain, f"{r.resnum}{r.icode}") for r in full.residues} == by_spec.keys
    assert (full.ligand.chain, full.ligand.resnum) == (second.chain, second.resnum)
    for cutoff in (3.5, 6.0):
        assert pocket.ligand_site(prot, second.spec, cutoff=cutoff).keys == {
            (r.chain, f"{r.resnum}{r.icode}") for r in pocket.find_pocket(prot, second.spec, cutoff=cutoff).residues}


@pytest.mark.parametrize("name, which", [("1hvr.pdb", 0), ("1ia1_protein_one_lig_removed.pdb", 1),
                                         ("1ia1_protein_one_lig_removed.pdb", 2)])
def test_the_ligand_task_encodes_exactly_the_site(name, which):
    """What the prompt marks is ligand_site's pocket of the ligand the spec names, at the task's
    default cutoff (the same number as pocket.DEFAULT_CUTOFF) and at another one."""
    from engine.tasks.registry import get_task

    task = get_task("ligand")
    defaults = {o.name: o.default for o in task.options}
    assert defaults["cutoff"] == pocket.DEFAULT_CUTOFF
    path = DATA / name
    obj = sio.read_file(path)[0]
    ref = pocket.ligands(obj)[which]
    for cutoff in (None, 6.0):
        opts = {"ligand": ref.spec} | ({"cutoff": cutoff} if cutoff else {})
        prompt = task.build_prompt({"file": str(path)}, task.check_options(opts))
        site = pocket.ligand_site(obj, ref.spec, cutoff=cutoff or pocket.DEFAULT_CUTOFF)
        assert marked_in_prompt(prompt.text, obj.structure, prompt.context["chains"]) == site.keys
        assert prompt.context["ligand"] == {"chain": ref.chain, "name": ref.resname, "number": ref.resnum}
    # no ligand named: the task takes the first of pocket.ligands
    prompt = task.build_prompt({"file": str(path)}, task.check_options({}))
    assert marked_in_prompt(prompt.text, obj.structure, prompt.context["chains"]) == pocket.ligand_site(obj).keys
