"""The LOGOS codec: every tag and record, round trips, and the reasons given for bad records."""

from __future__ import annotations

import pytest
from rdkit import Chem

from engine.grammar import codec as C
from engine.grammar import records as R
from engine.grammar import tags as T
from engine.grammar import validate as V


def canon(smi: str) -> str:
    return Chem.MolToSmiles(Chem.MolFromSmiles(smi))


def test_tag_table_covers_the_grammar():
    assert set(T.TAGS) == {"Protein", "Pocket", "Molecule", "Antibody", "Material", "Metal", "React",
                           "ReverseReact", "Search", "Trans"}
    assert T.TAGS["Protein"].open == "<ProteinS>" and T.TAGS["Protein"].close == "<ProteinE>"
    assert T.TAGS["Search"].close is None and T.TAGS["Search"].open == "<Search>"
    assert len(T.ALL_TOKENS) == 6 * 2 + 4
    assert T.tokenize("<ProteinS>MK<PocketS>T<PocketE><ProteinE>") == [
        "<ProteinS>", "MK", "<PocketS>", "T", "<PocketE>", "<ProteinE>"]


def test_figure_example_decodes_with_pockets_in_sequence_order():
    # the verbatim example of the authors' figure; its letters J are not residues
    d = C.decode("<ProteinS>JFDS<PocketS>S<PocketE>KJEF<PocketS>K<PocketE>KSD<ProteinE>")
    assert d.kind == "protein"
    p = d.records[0]
    assert p.sequence == "JFDSSKJEFKKSD" and p.pockets == (4, 9)
    assert not d.valid and any("unknown residue letter" in r and "'J'" in r for r in d.reasons)


def test_protein_round_trip_letter_and_smiles_pockets():
    seq, pockets = "MKTAYIAKQRQISFVKSHFSRQ", (2, 5, 13)
    for style in ("letter", "smiles"):
        text = C.encode_protein(seq, pockets, style)
        d = C.decode(text)
        assert d.valid, d.reasons
        assert d.records[0].sequence == seq and d.records[0].pockets == pockets
        assert d.records[0].style == style
        assert C.encode(d.records[0]) == text


def test_residue_smiles_are_the_l_amino_acids():
    from rdkit.Chem import rdCIPLabeler

    table = V.residue_smiles_table()
    assert len(table) == 21
    for letter, smi in table.items():
        m = Chem.MolFromSmiles(smi)
        assert Chem.MolToSmiles(m) == smi  # canonical as stored
        rdCIPLabeler.AssignCIPLabels(m)
        labels = [a.GetProp("_CIPCode") for a in m.GetAtoms() if a.HasProp("_CIPCode")]
        if letter == "G":
            assert labels == []
        else:  # L: S at the alpha carbon, R for Cys and Sec (sulfur/selenium priority)
            assert labels.count("R" if letter in "CU" else "S") >= 1, (letter, labels)
    assert C.decode("<ProteinS>G<PocketS>C[C@@H](N)C(=O)O<PocketE>G<ProteinE>").reasons == [
        "pocket residue 2: pocket residue SMILES 'C[C@@H](N)C(=O)O' is A with non-L or missing stereochemistry"]


def test_molecule_is_canonicalised_and_rdkit_message_is_verbatim():
    assert C.encode_molecule("OCC") == "<MoleculeS>CCO<MoleculeE>"
    d = C.decode("<MoleculeS>C(C)O<MoleculeE>")
    assert d.valid and d.objects[0]["smiles"] == "CCO" and d.objects[0]["input_smiles"] == "C(C)O"
    d = C.decode("<MoleculeS>c1cccc1<MoleculeE>")
    assert not d.valid
    assert d.reasons == ["molecule: Can't kekulize mol.  Unkekulized atoms: 0 1 2 3 4"]
    d = C.decode("<MoleculeS>N(C)(C)(C)(C)C<MoleculeE>")
    assert d.reasons == ["molecule: Explicit valence for atom # 0 N, 5, is greater than permitted"]
    d = C.decode("<MoleculeS>C1CC<MoleculeE>")
    assert not d.valid and "unclosed ring" in d.reasons[0]
    with pytest.raises(C.GrammarError, match="kekulize"):
        C.encode_molecule("c1cccc1")


def test_isomeric_smiles_kept():
    d = C.decode("<MoleculeS>C[C@H](N)C(=O)O<MoleculeE>")
    assert "@" in d.objects[0]["smiles"]
    assert C.encode_molecule("F/C=C/F") == "<MoleculeS>F/C=C/F<MoleculeE>"


def test_complex_three_granularities():
    prots = [R.Protein("MKTAYIAK", (1, 4)), R.Protein("GGSAW", (3,))]
    lig = "c1ccccc1O"
    seen = {}
    for gran in ("plain", "pocket", "smiles"):
        text = C.encode_complex(prots, lig, gran)
        assert text.endswith("<MoleculeS>Oc1ccccc1<MoleculeE>") and text.startswith("<ProteinS>")
        d = C.decode(text)
        assert d.kind == "complex" and d.valid, d.reasons
        rec = d.records[0]
        assert rec.granularity == gran and rec.ligand.smiles == "Oc1ccccc1"
        assert [p.sequence for p in rec.proteins] == ["MKTAYIAK", "GGSAW"]
        seen[gran] = [p.pockets for p in rec.proteins]
    assert seen["plain"] == [(), ()]
    assert seen["pocket"] == seen["smiles"] == [(1, 4), (3,)]


def test_reactions_forward_and_retro():
    fwd = C.encode_reaction(["OCC", "CC(O)=O"], ["CCOC(C)=O"])
    assert fwd == "<MoleculeS>CCO<MoleculeE><MoleculeS>CC(=O)O<MoleculeE><React><MoleculeS>CCOC(C)=O<MoleculeE>"
    d = C.decode(fwd)
    assert d.kind == "reaction" and d.valid
    assert [m.smiles for m in d.records[0].reactants] == ["CCO", "CC(=O)O"]
    retro = C.encode_retrosynthesis("CCOC(C)=O", ["CCO", "CC(=O)Cl"])
    d = C.decode(retro)
    assert d.kind == "retrosynthesis" and d.valid and d.records[0].retro
    assert [m.smiles for m in d.records[0].products] == ["CCOC(C)=O"]
    assert C.encode(d.records[0]) == retro
    d = C.decode("<MoleculeS>CCO<MoleculeE><React><MoleculeS>CCBr<MoleculeE>")
    assert d.reasons == ["product contains element(s) Br found in no reactant"]
    d = C.decode("<MoleculeS>CCO.CC(=O)O<MoleculeE><React><MoleculeS>CCOC(C)=O<MoleculeE>")
    assert any("dot-joined" in r for r in d.reasons)
    d = C.decode("<MoleculeS>CCOC(C)=O<MoleculeE><ReverseReact>")
    assert d.reasons == ["nothing after <ReverseReact>"]


def test_material_record_and_reasons():
    text = C.encode_material("Cu2(CO2)4", ["OC(=O)c1cc(C(O)=O)cc(C(O)=O)c1", "OC(=O)CC(O)=O"])
    assert text == ("<MaterialS><MetalS>Cu2(CO2)4<MetalE><MoleculeS>O=C(O)c1cc(C(=O)O)cc(C(=O)O)c1<MoleculeE>"
                    "<MoleculeS>O=C(O)CC(=O)O<MoleculeE><MaterialE>")  # largest linker first
    d = C.decode(text)
    assert d.kind == "material" and d.valid and d.objects[0]["metals"] == ["Cu"]
    d = C.decode("<MaterialS><MetalS>C2O4<MetalE><MoleculeS>CC(=O)O<MoleculeE><MaterialE>")
    assert d.reasons == ["material has no metal: node 'C2O4' contains no metal element"]
    d = C.decode("<MaterialS><MoleculeS>CC(=O)O<MoleculeE><MaterialE>")
    assert "material has no metal: no <MetalS> segment" in d.reasons
    d = C.decode("<MaterialS><MetalS>rod[Zn2O2(CO2)4]<MetalE><MaterialE>")
    assert d.reasons == ["material has no linker"]
    d = C.decode("<MaterialS><MetalS>Zn4O(CO2)6<MetalE><MoleculeS>C1=CC<MoleculeE><MaterialE>")
    assert not d.valid and d.reasons[0].startswith("linker 1: ")


def test_antibody_search_trans():
    d = C.decode(C.encode_antibody("EVQLVESGGG", "DIQMTQSPSS"))
    assert d.kind == "antibody" and d.valid
    assert d.records[0].heavy == "EVQLVESGGG" and d.records[0].light == "DIQMTQSPSS"
    s = C.encode_search("MKTAYIAK", [2, 3])
    assert s == "<ProteinS>MKTAYIAK<ProteinE><Search><ProteinS>MK<PocketS>T<PocketE><PocketS>A<PocketE>YIAK<ProteinE>"
    d = C.decode(s)
    assert d.kind == "search" and d.valid and d.records[0].answer.pockets == (2, 3)
    assert C.encode_search("MKTAYIAK", prompt=True).endswith("<Search><ProteinS>")
    d = C.decode("<ProteinS>MKTAYIAK<ProteinE><Search><ProteinS>MKTAYIAR<ProteinE>")
    assert "the protein after <Search> is not the same sequence as the one before it" in d.reasons
    t = C.encode_trans("MKTAYIAK", [0])
    d = C.decode(t)
    assert d.kind == "trans" and d.valid
    assert d.records[0].target.style == "smiles"


def test_structural_errors_have_reasons():
    cases = {
        "<ProteinS>MKT": "unclosed <ProteinS>",
        "<ProteinS>MK<PocketS>T<ProteinE>": "unclosed <PocketS>",
        "<ProteinS>MK<PocketS>T<PocketS>A<PocketE>Y<ProteinE>": "nested <PocketS>: a pocket mark wraps one residue",
        "<ProteinS>MKPocketE>T<PocketE>A<ProteinE>": "<PocketE> without a matching <PocketS>",
        "<ProteinS>MK<PocketS><PocketE>A<ProteinE>": "empty pocket mark at residue 3",
        "<ProteinS>M<ProteinS>K<ProteinE>": "unclosed <ProteinS> (found <ProteinS> before <ProteinE>)",
        "<MoleculeS>CCO": "unclosed <MoleculeS>",
        "<Ligand>CCO": "unknown tag <Ligand>",
        "CCO": "text outside any block: 'CCO'",
        "": "no LOGOS record: the text holds no tag",
        "<ProteinE>": "<ProteinE> without a matching <ProteinS>",
        "<MoleculeS>CCO<MoleculeE><MoleculeS>CCO<MoleculeE>": "unrecognised record layout: Molecule Molecule",
    }
    for text, reason in cases.items():
        d = C.decode(text)
        assert not d.valid, text
        assert reason in d.reasons, (text, d.reasons)


def test_pocket_wrapping_several_residues_is_flagged():
    d = C.decode("<ProteinS>MK<PocketS>TAY<PocketE>IAK<ProteinE>")
    assert not d.valid and "wraps 3 residues" in d.reasons[0]


def test_canonical_rewrites_a_valid_record():
    assert C.canonical("<MoleculeS>OCC<MoleculeE>") == "<MoleculeS>CCO<MoleculeE>"
    with pytest.raises(C.GrammarError):
        C.canonical("<MoleculeS>C1CC<MoleculeE>")


def test_encoders_refuse_bad_input():
    with pytest.raises(C.GrammarError, match="unknown residue"):
        C.encode_protein("MK1T")
    with pytest.raises(C.GrammarError, match="outside the sequence"):
        C.encode_protein("MKT", [5])
    with pytest.raises(C.GrammarError, match="no metal"):
        C.encode_material("CO2", ["CC(=O)O"])
    with pytest.raises(C.GrammarError, match="granularity"):
        C.encode_complex([("MKT", [0])], "CCO", "atoms")
