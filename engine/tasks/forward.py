"""Forward reaction: reactant blocks, ``<React><MoleculeS>`` → the product SMILES → ``<MoleculeE>``.

Valid when the product is a valid molecule that the reactants can make
(``engine.tasks.reaction_check``: its heavy atoms come from the reactants up to what reagents
bring, with few bonds made or broken; reactants that supply nothing are allowed, a prompt may list
reagents).
"""

from __future__ import annotations

from engine.grammar import tags as T
from engine.tasks.base import Option, Prompt, Task
from engine.tasks.molecule import SMILES_GBNF, molecule_objects, until_close
from engine.tasks.reaction_check import reactants_supply_product
from engine.tasks.reactions import input_molecules
from engine.tasks.scoring import check_molecule, drug_scores


class ForwardTask(Task):
    name = "forward"
    title = "Forward reaction"
    description = "Predict the product of reactants; checked for validity and atom balance."
    needs_input = True
    options = (Option("smiles", "str", None, "reactants as dot-separated SMILES (instead of --input FILE)"),)
    sampling = {"max_new_tokens": 256}

    def build_prompt(self, inputs: dict, options: dict) -> Prompt:
        mols, records = input_molecules(inputs, options, self.name)
        text = "".join(T.wrap("Molecule", m) for m in mols) + T.token("React") + T.TAGS["Molecule"].open
        return Prompt(text=text, stop_tags=[T.TAGS["Molecule"].close], context={"reactants": mols},
                      inputs=records)

    def parse(self, generated: str, prompt: Prompt):
        body, reasons = until_close(generated, "Molecule")
        if body is None:
            return {"type": "reaction", "smiles": generated}, reasons
        objs, reasons = molecule_objects(body)
        objs.update(type="reaction", reactants=prompt.context["reactants"], product=objs["smiles"])
        return objs, reasons

    def validate(self, objects: dict, prompt: Prompt) -> list[str]:
        return reactants_supply_product(objects["product"], objects["reactants"], every_reactant=False).reasons

    def score(self, objects: dict, prompt: Prompt) -> dict:
        mol, _, _ = check_molecule(objects["product"])
        out = drug_scores(mol)
        check = reactants_supply_product(objects["product"], objects["reactants"], every_reactant=False)
        out.update(balanced=True, supplied=check.supplied, bond_edits=check.bond_edits)
        return out

    def key(self, objects: dict):
        return objects.get("product")

    def grammar(self, prompt: Prompt) -> str:
        return f"root ::= smiles {T.TAGS['Molecule'].close}\n{SMILES_GBNF}\n"


TASK = ForwardTask()
