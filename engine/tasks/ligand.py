"""Ligand design for a pocket: a pocket-annotated protein record (every chain with a contact
residue, in file order), then ``<MoleculeS>`` → a ligand SMILES → ``<MoleculeE>``.

Input: a complex file (the pocket is engine.structures.pocket's: residues within 4.5 Å of the
ligand, ``ligand`` names it) or a protein file with the pocket residues chosen by hand
(``residues``: "A:45,A:47,...").
"""

from __future__ import annotations

from engine.grammar import tags as T
from engine.tasks import protein_input as P
from engine.tasks.base import Option, Prompt, Task, TaskInputError, read_input_objects
from engine.tasks.molecule import MoleculeOutput, molecule_objects, until_close


def marked_sequence(residues: list[P.Residue], pocket: set[tuple[str, int, str]]) -> str:
    out = []
    for r in residues:
        if (r.chain, r.number, r.icode) in pocket:
            out.append(T.wrap("Pocket", r.letter))
        else:
            out.append(r.letter)
    return "".join(out)


class LigandTask(MoleculeOutput, Task):
    name = "ligand"
    title = "Ligand design for a pocket"
    description = "Sample ligands for the binding pocket of a protein (from a complex or chosen residues)."
    needs_input = True
    novelty = True
    options = (
        Option("ligand", "str", None, "residue name of the bound ligand that defines the pocket (e.g. MK1)"),
        Option("residues", "list", None, "pocket residues chosen by hand, e.g. A:25,A:27,B:50"),
        Option("chain", "str", None, "use only this chain"),
        Option("cutoff", "float", P.CUTOFF, "contact distance in Å (heavy atoms)"),
        Option("reference", "file", None, "SMILES file for novelty (default: RDKit's NCI set)"),
    )
    sampling = {"max_new_tokens": 256}

    def build_prompt(self, inputs: dict, options: dict) -> Prompt:
        objs, records = read_input_objects(inputs, self.name)
        src = inputs.get("file") or "input"
        st_obj = next((o for o in objs if o.structure is not None), None)
        if st_obj is None:
            raise TaskInputError(f"{src}: the ligand task needs a protein structure (PDB or mmCIF), "
                                 f"got {objs[0].kind if objs else 'nothing'}")
        st = st_obj.structure
        table = P.chains(st)
        if options.get("chain"):
            if options["chain"] not in table:
                raise TaskInputError(f"{src}: no protein chain {options['chain']!r} "
                                     f"(chains: {', '.join(table) or 'none'})")
            table = {options["chain"]: table[options["chain"]]}
        if not table:
            raise TaskInputError(f"{src}: no amino-acid chain in the file")
        ligand = None
        if options.get("residues"):
            pocket_res = P.select_residues(st, options["residues"], str(src))
        else:  # the same pocket the structure view marks (engine.structures.pocket)
            from engine.structures.pocket import PocketError, find_pocket

            try:
                pocket = find_pocket(st_obj, ligand=options.get("ligand"),
                                     cutoff=float(options.get("cutoff") or P.CUTOFF))
            except PocketError as exc:
                raise TaskInputError(f"{src}: {exc}") from None
            lig = pocket.ligand
            ligand = (lig.chain, lig.resname, lig.resnum)
            found = {(r.chain, int(r.resnum), (r.icode or "").strip()) for r in pocket.residues}
            pocket_res = [r for rs in P.chains(st).values() for r in rs
                          if (r.chain, r.number, r.icode.strip()) in found]
            if not pocket_res:
                raise TaskInputError(f"{src}: ligand {lig.resname} {lig.chain}:{lig.resnum} has no protein "
                                     f"residue within {pocket.cutoff} Å")
        keys = {(r.chain, r.number, r.icode) for r in pocket_res}
        text = []
        used = []
        for chain, residues in table.items():
            if any((r.chain, r.number, r.icode) in keys for r in residues):
                text.append(T.wrap("Protein", marked_sequence(residues, keys)))
                used.append(chain)
        if not text:
            raise TaskInputError(f"{src}: none of the pocket residues is in the chosen chain(s)")
        prompt = "".join(text) + T.token("Molecule")
        ctx = {"chains": used, "pocket": [r.as_dict() for r in pocket_res if r.chain in used],
               "ligand": {"chain": ligand[0], "name": ligand[1], "number": ligand[2]} if ligand else None}
        return Prompt(text=prompt, stop_tags=[T.TAGS["Molecule"].close], context=ctx, inputs=records)

    def parse(self, generated: str, prompt: Prompt):
        body, reasons = until_close(generated, "Molecule")
        if body is None:
            return {"type": "molecule", "smiles": generated}, reasons
        objs, reasons = molecule_objects(body)
        objs["pocket"] = [r["label"] for r in prompt.context.get("pocket", [])]
        return objs, reasons


TASK = LigandTask()
