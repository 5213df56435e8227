"""Forward reaction: reactant blocks, ``<React><MoleculeS>`` → the product SMILES → ``<MoleculeE>``.

Valid when the product is a valid molecule whose heavy atoms all come from the reactants.
"""

from __future__ import annotations

from engine.grammar import tags as T
from engine.tasks.base import Option, Prompt, Task
from engine.tasks.molecule import SMILES_GBNF, molecule_objects, until_close
from engine.tasks.reactions import input_molecules
from engine.tasks.scoring import balance, check_molecule, drug_scores


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
        prod, _, _ = check_molecule(objects["product"])
        reac = [check_molecule(s)[0] for s in objects["reactants"]]
        ok, info = balance([prod], reac)
        if not ok:
            missing = ", ".join(f"{n} {el}" for el, n in sorted(info["missing"].items()))
            return [f"heavy atoms of the product not in the reactants: {missing}"]
        return []

    def score(self, objects: dict, prompt: Prompt) -> dict:
        mol, _, _ = check_molecule(objects["product"])
        out = drug_scores(mol)
        out["balanced"] = True
        return out

    def key(self, objects: dict):
        return objects.get("product")

    def grammar(self, prompt: Prompt) -> str:
        return f"root ::= smiles {T.TAGS['Molecule'].close}\n{SMILES_GBNF}\n"


TASK = ForwardTask()
