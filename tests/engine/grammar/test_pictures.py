"""engine.grammar.pictures: what a stored result is made of, from the task's objects or, when
they were not stored, from the record decoded by the codec."""

from __future__ import annotations

from engine.grammar.pictures import result_picture
from engine.tasks.registry import get_task

BTC = "O=C(O)c1cc(C(=O)O)cc(C(=O)O)c1"


def evaluate(name, text, inputs=None, **options):
    task = get_task(name)
    cand = task.evaluate(text, task.build_prompt(inputs or {}, task.check_options(options)))
    assert cand.valid, cand.reasons
    return cand


def test_material_from_objects_and_from_the_record_alone():
    cand = evaluate("material", f"<MetalS>Cu2(CO2)4<MetalE><MoleculeS>{BTC}<MoleculeE><MaterialE>")
    pic = result_picture(cand.objects, cand.record)
    assert pic == {"kind": "material", "metal": "Cu2(CO2)4", "metals": ["Cu"], "linkers": cand.objects["linkers"]}
    # an imported row without the task's objects: the codec reads the same building blocks
    assert result_picture(None, cand.record) == pic
    two = evaluate("material", "<MetalS>Zn4O(CO2)6<MetalE><MoleculeS>O=C(O)c1ccc(C(=O)O)cc1<MoleculeE>"
                               f"<MoleculeS>{BTC}<MoleculeE><MaterialE>")
    assert len(result_picture(two.objects, two.record)["linkers"]) == 2


def test_sequences_with_pocket_marks(test_data):
    vh = "EVQLVESGGGLVQPGGSLRLSCAASGFTFSSYAMSWVRQAPGKGLEWVSAISGSGGSTYYADSVKGRFTISRDNSKNTLYLQMNSLRAEDTAVYYCAK"
    vl = "DIQMTQSPSSLSASVGDRVTITCRASQSISSYLNWYQQKPGKAPKLLIYAASSLQSGVPSRFSGSGSGTDFTLTISSLQPEDFATYYCQQ"
    ab = evaluate("antibody", f"{vh}<AntibodyE><AntibodyS>{vl}<AntibodyE>")
    pic = result_picture(ab.objects, ab.record, sequence=ab.sequence)
    assert [c["name"] for c in pic["chains"]] == ["Heavy chain", "Light chain"]
    assert [c["sequence"] for c in pic["chains"]] == [vh, vl] and not pic["chains"][0]["marked"]
    assert result_picture(None, ab.record) == pic

    pdb = str(test_data / "structures" / "1hvr.pdb")
    task = get_task("binding-site")
    seq = task.build_prompt({"file": pdb}, task.check_options({"chain": "A"})).context["sequence"]
    marked = seq[:24] + f"<PocketS>{seq[24]}<PocketE>" + seq[25:49] + f"<PocketS>{seq[49]}<PocketE>" + seq[50:]
    site = evaluate("binding-site", marked + "<ProteinE>", {"file": pdb}, chain="A")
    pic = result_picture(site.objects, site.record, sequence=site.sequence)
    assert pic["chains"] == [{"name": "Chain A", "sequence": seq, "marked": [24, 49],
                              "labels": ["A:ASP25", "A:ILE50"]}]
    # from the record alone: the annotated protein after <Search>, positions without residue numbers
    again = result_picture(None, site.record)
    assert again["chains"][0]["sequence"] == seq and again["chains"][0]["marked"] == [24, 49]


def test_molecules_and_reactions():
    mol = evaluate("molecule", "CC(=O)Oc1ccccc1C(=O)O<MoleculeE>")
    assert result_picture(mol.objects, mol.record, smiles=mol.smiles) == {"kind": "molecule", "smiles": mol.smiles}
    retro = evaluate("retro", "<MoleculeS>CC(=O)OC(C)=O<MoleculeE><MoleculeS>O=C(O)c1ccccc1O<MoleculeE>",
                     smiles="CC(=O)Oc1ccccc1C(=O)O")
    pic = result_picture(retro.objects, retro.record)
    assert pic["kind"] == "reaction" and pic["products"] == [retro.objects["product"]]
    assert sorted(pic["reactants"]) == sorted(retro.objects["reactants"])
    assert result_picture(None, retro.record)["kind"] == "reaction"
    assert result_picture(None, "no record at all") is None
