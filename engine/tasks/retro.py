"""Retrosynthesis: ``<MoleculeS>{product}<MoleculeE><ReverseReact>`` → reactant blocks → end of text.

Valid when every reactant is a valid molecule, none is the product itself, and the reactants can
make the product (``engine.tasks.reaction_check``: every reactant supplies part of the product, the
product's heavy atoms all come from the reactants up to what reagents bring, few bonds made or
broken).
"""

from __future__ import annotations

from engine.grammar import tags as T
from engine.tasks.base import Option, Prompt, Task, block_contents
from engine.tasks.molecule import SMILES_GBNF
from engine.tasks.reaction_check import reactants_supply_product
from engine.tasks.reactions import input_molecules
from engine.tasks.scoring import balance, check_molecule


class RetroTask(Task):
    name = "retro"
    title = "Retrosynthesis"
    description = "Propose reactants for a product molecule; checked for validity and atom balance."
    needs_input = True
    options = (Option("smiles", "str", None, "the product as SMILES (instead of --input FILE)"),)
    sampling = {"max_new_tokens": 512}

    def build_prompt(self, inputs: dict, options: dict) -> Prompt:
        mols, records = input_molecules(inputs, options, self.name, max_n=1)
        text = T.wrap("Molecule", mols[0]) + T.token("ReverseReact")
        # the reference stops at end-of-text; the runtime also stops on any end-of-generation token
        return Prompt(text=text, stop_tags=[], context={"product": mols[0]}, inputs=records)

    def parse(self, generated: str, prompt: Prompt):
        contents, reasons = block_contents(generated, "Molecule")
        reactants = []
        for i, smi in enumerate(contents, 1):
            mol, why, canon = check_molecule(smi)
            reactants.append(canon or smi)
            reasons += [f"reactant {i}: {w}" for w in why]
        if not contents:
            reasons.append("no reactant block")
        return {"type": "retrosynthesis", "product": prompt.context["product"], "reactants": reactants}, reasons

    def validate(self, objects: dict, prompt: Prompt) -> list[str]:
        if objects["product"] in objects["reactants"]:
            return ["the product itself is among the reactants"]
        return reactants_supply_product(objects["product"], objects["reactants"]).reasons

    def score(self, objects: dict, prompt: Prompt) -> dict:
        prod, _, _ = check_molecule(objects["product"])
        reac = [check_molecule(s)[0] for s in objects["reactants"]]
        ok, info = balance([prod], reac)
        check = reactants_supply_product(objects["product"], objects["reactants"])
        return {"n_reactants": len(reac), "balanced": ok, "product_heavy": info["product_heavy"],
                "reactant_heavy": info["reactant_heavy"],
                "leaving_heavy": info["reactant_heavy"] - info["product_heavy"],
                "supplied": check.supplied, "bond_edits": check.bond_edits}

    def key(self, objects: dict):
        return ".".join(sorted(objects.get("reactants", [])))

    def grammar(self, prompt: Prompt) -> str:
        M = T.TAGS["Molecule"]
        return f"root ::= ({M.open} smiles {M.close}){{1,4}}\n{SMILES_GBNF}\n"


TASK = RetroTask()
