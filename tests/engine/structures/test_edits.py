"""Headless structure edits: each applies and reverts itself exactly; sequences of edits, undos and
redos never corrupt a molecule (fuzzed, as Avogadro fuzzes RWMolecule)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.structures import edits, io
from engine.structures.measure import angle, dihedral, distance, measure


def _state(obj):
    """Everything an edit may touch, in a comparable form (atoms, bonds, charges, coordinates)."""
    from rdkit import Chem

    if obj.mol is not None:
        m = obj.mol
        xyz = m.GetConformer().GetPositions().round(4).tolist() if m.GetNumConformers() else []
        return (Chem.MolToMolBlock(m), Chem.MolToSmiles(m), xyz)
    if obj.structure is not None:
        return obj.structure.make_pdb_string()
    if obj.crystal is not None:
        return obj.crystal.as_dict()
    return None


@pytest.fixture
def ligand(test_data):
    return io.read_file(test_data / "structures" / "1ia1_ligand.sdf")[0]


@pytest.fixture
def protein(test_data):
    return io.read_file(test_data / "structures" / "1hvr.pdb")[0]


@pytest.fixture
def nacl(test_data):
    return io.read_file(test_data / "reliability" / "NaCl.cif")[0]


def _round_trip(obj, edit):
    before = _state(obj)
    edit.apply(obj)
    after = _state(obj)
    assert after != before, f"{edit.label} changed nothing"
    edit.revert(obj)
    assert _state(obj) == before
    edit.apply(obj)  # redo gives exactly the first result
    assert _state(obj) == after
    edit.revert(obj)
    assert _state(obj) == before


def test_molecule_edits_round_trip(ligand):
    from rdkit import Chem

    n = ligand.mol.GetNumAtoms()
    carbon = next(a.GetIdx() for a in ligand.mol.GetAtoms() if a.GetSymbol() == "C" and a.GetDegree() == 2)
    for edit in (edits.ReplaceAtom(carbon, "N"), edits.DeleteAtoms([carbon]), edits.AddHydrogens(),
                 edits.CleanUp3D(), edits.SetSmiles("c1ccccc1O")):
        _round_trip(ligand, edit)
        assert ligand.mol.GetNumAtoms() == n
    add = edits.AddHydrogens()
    add.apply(ligand)
    assert ligand.mol.GetNumAtoms() > n
    assert all(a.GetNumImplicitHs() == 0 for a in ligand.mol.GetAtoms())
    # the added hydrogens have real coordinates, bonded ~1.0-1.1 Å from their heavy atom
    pos = ligand.mol.GetConformer().GetPositions()
    for b in ligand.mol.GetBonds():
        if 1 in (b.GetBeginAtom().GetAtomicNum(), b.GetEndAtom().GetAtomicNum()):
            assert 0.9 < np.linalg.norm(pos[b.GetBeginAtomIdx()] - pos[b.GetEndAtomIdx()]) < 1.2
    rm = edits.RemoveHydrogens()
    rm.apply(ligand)
    assert ligand.mol.GetNumAtoms() == n
    Chem.SanitizeMol(ligand.mol)


def test_refused_edits_say_why_and_change_nothing(ligand):
    before = _state(ligand)
    sulfur = next(a.GetIdx() for a in ligand.mol.GetAtoms() if a.GetSymbol() == "S")
    aromatic_c = next(a.GetIdx() for a in ligand.mol.GetAtoms() if a.GetSymbol() == "C" and a.GetDegree() == 3)
    cases = [
        (edits.ReplaceAtom(aromatic_c, "F"), "does not sanitise"),
        (edits.ReplaceAtom(sulfur, "Xx"), "not an element"),
        (edits.ReplaceAtom(999, "N"), "out of range"),
        (edits.DeleteAtoms([]), "nothing selected"),
        (edits.SetSmiles("C1CC"), "does not parse"),
        (edits.SetSmiles("C(C)(C)(C)(C)C"), "does not sanitise"),
    ]
    for edit, reason in cases:
        with pytest.raises(edits.EditError, match=reason):
            edit.apply(ligand)
        assert _state(ligand) == before


def test_delete_atom_takes_its_hydrogens_and_reports_fragments(ligand):
    edits.AddHydrogens().apply(ligand)
    mol = ligand.mol
    sulfur = next(a.GetIdx() for a in mol.GetAtoms() if a.GetSymbol() == "S")
    edit = edits.DeleteAtoms([sulfur])
    edit.apply(ligand)
    assert any("fragments" in w for w in edit.warnings)
    methyl_like = next(a.GetIdx() for a in ligand.mol.GetAtoms() if a.GetSymbol() == "N" and a.GetTotalNumHs(includeNeighbors=True) == 2)
    n = ligand.mol.GetNumAtoms()
    edits.DeleteAtoms([methyl_like]).apply(ligand)
    assert ligand.mol.GetNumAtoms() == n - 3  # the NH2 nitrogen and its two hydrogens


def test_protein_mutation_and_pocket(protein):
    before = _state(protein)
    res = edits._find_residue(protein.structure, "A", "25")
    assert res.name == "ASP"
    mut = edits.MutateResidue("A", 25, "ALA")
    _round_trip(protein, mut)
    mut.apply(protein)
    res = edits._find_residue(protein.structure, "A", "25")
    assert res.name == "ALA" and sorted(a.name for a in res if a.element.name != "H") == ["C", "CA", "CB", "N", "O"]
    mut.revert(protein)
    assert _state(protein) == before
    with pytest.raises(edits.EditError, match="standard amino acids"):
        edits.MutateResidue("A", 25, "XYZ").apply(protein)
    with pytest.raises(edits.EditError, match="no residue"):
        edits.MutateResidue("A", 999, "ALA").apply(protein)
    pocket = set()
    mark = edits.SetPocket([("A", "25"), ("B", "25")], mark=True, pocket=pocket)
    mark.apply(protein)
    assert pocket == {("A", "25"), ("B", "25")}
    unmark = edits.SetPocket([("A", "25")], mark=False, pocket=pocket)
    unmark.apply(protein)
    assert pocket == {("B", "25")}
    unmark.revert(protein)
    mark.revert(protein)
    assert pocket == set()
    with pytest.raises(edits.EditError, match="no residue"):
        edits.SetPocket([("Z", "1")], pocket=pocket).apply(protein)


def test_crystal_supercell_and_substitution(nacl):
    n = len(nacl.crystal)
    sc = edits.Supercell(2, 2, 1)
    _round_trip(nacl, sc)
    sc.apply(nacl)
    assert len(nacl.crystal) == 4 * n
    sub = edits.SubstituteElement("Na", "K")
    sub.apply(nacl)
    assert nacl.crystal.composition.reduced_formula == "KCl"
    sub.revert(nacl)
    sc.revert(nacl)
    assert len(nacl.crystal) == n and nacl.crystal.composition.reduced_formula == "NaCl"
    with pytest.raises(edits.EditError, match="has no Li"):
        edits.SubstituteElement("Li", "K").apply(nacl)
    with pytest.raises(edits.EditError, match="1 to 10"):
        edits.Supercell(0, 1, 1).apply(nacl)


def test_measurements():
    a, b, c, d = (1.0, 0, 0), (0, 0, 0), (0, 1.0, 0), (0, 1.0, 1.0)
    assert distance(a, b) == pytest.approx(1.0)
    assert angle(a, b, c) == pytest.approx(90.0)
    assert abs(dihedral(a, b, c, d)) == pytest.approx(90.0)
    assert dihedral((1, 0, 0), (0, 0, 0), (0, 1, 0), (1, 1, 0)) == pytest.approx(0.0, abs=1e-9)
    assert abs(dihedral((1, 0, 0), (0, 0, 0), (0, 1, 0), (-1, 1, 0))) == pytest.approx(180.0)
    assert measure([a]) is None and measure([a, b])[0] == "distance"


_OPS = st.lists(st.tuples(st.sampled_from(["replace", "delete", "addh", "removeh", "clean", "undo", "redo"]),
                          st.integers(0, 60), st.sampled_from(["N", "O", "C", "S", "F", "Cl"])),
                min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_fuzz_edit_undo_redo_never_corrupts(ligand, ops):
    """Random edits with undo/redo: every state sanitises, and undoing everything restores the
    original exactly (atoms, bonds, coordinates)."""
    from rdkit import Chem

    original = _state(ligand)
    done: list = []
    undone: list = []
    for op, k, el in ops:
        if op == "undo" and done:
            e = done.pop()
            e.revert(ligand)
            undone.append(e)
        elif op == "redo" and undone:
            e = undone.pop()
            e.apply(ligand)
            done.append(e)
        elif op not in ("undo", "redo"):
            n = ligand.mol.GetNumAtoms()
            edit = {"replace": lambda: edits.ReplaceAtom(k % n, el), "delete": lambda: edits.DeleteAtoms([k % n]),
                    "addh": edits.AddHydrogens, "removeh": edits.RemoveHydrogens,
                    "clean": lambda: edits.CleanUp3D(reembed=False, max_iters=50)}[op]()
            before = _state(ligand)
            try:
                edit.apply(ligand)
            except edits.EditError:
                assert _state(ligand) == before
                continue
            done.append(edit)
            undone.clear()
        m = Chem.Mol(ligand.mol)
        Chem.SanitizeMol(m)  # never a molecule that fails sanitisation
        assert m.GetNumConformers() == 1
    for e in reversed(done):
        e.revert(ligand)
    assert _state(ligand) == original


def test_clean_up_and_new_smiles_stay_where_the_molecule_was(ligand):
    centre = ligand.mol.GetConformer().GetPositions().mean(0)
    assert np.linalg.norm(centre) > 5  # the ligand sits in its pocket, away from the origin
    clean = edits.CleanUp3D()
    clean.apply(ligand)
    assert np.linalg.norm(ligand.mol.GetConformer().GetPositions().mean(0) - centre) < 1.0
    clean.revert(ligand)
    edits.SetSmiles("c1ccccc1O").apply(ligand)
    assert np.linalg.norm(ligand.mol.GetConformer().GetPositions().mean(0) - centre) < 0.01


def test_edit_log_marks_the_object_modified_until_undone(protein, ligand):
    """``modified`` and ``edit_log`` follow the applied edits of the atoms: undo back to the file's
    state clears them, redo sets them again; a pocket marking is no edit of the atoms."""
    assert not getattr(protein, "modified", False) and edits.edit_summary(protein) == ""
    mutate = edits.MutateResidue("A", 25, "ALA")
    mutate.apply(protein)
    assert protein.modified and protein.edit_log == ["mutated A25 ASP→ALA"]
    pocket: set = set()
    mark = edits.SetPocket([("A", "27")], pocket=pocket)
    mark.apply(protein)
    assert protein.edit_log == ["mutated A25 ASP→ALA"]
    mutate2 = edits.MutateResidue("B", 25, "GLY")
    mutate2.apply(protein)
    assert edits.edit_summary(protein) == "mutated A25 ASP→ALA; mutated B25 ASP→GLY"
    assert edits.edit_summary(protein, most=1) == "mutated A25 ASP→ALA and 1 more edit"
    mutate2.revert(protein)
    mark.revert(protein)
    mutate.revert(protein)
    assert not protein.modified and protein.edit_log == []
    mutate.apply(protein)  # redo
    assert protein.modified and protein.edit_log == ["mutated A25 ASP→ALA"]
    with pytest.raises(edits.EditError):  # a refused edit logs nothing
        edits.MutateResidue("A", 25, "XYZ").apply(protein)
    assert protein.edit_log == ["mutated A25 ASP→ALA"]
    heavy = next(a.GetIdx() for a in ligand.mol.GetAtoms() if a.GetSymbol() == "S")
    delete = edits.DeleteAtoms([heavy])
    delete.apply(ligand)
    assert ligand.modified and ligand.edit_log == ["deleted 1 atom"]
    delete.revert(ligand)
    assert not ligand.modified
