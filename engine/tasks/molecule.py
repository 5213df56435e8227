"""Molecule generation: ``<MoleculeS>`` (optionally a SMILES prefix) → one SMILES → ``<MoleculeE>``."""

from __future__ import annotations

from engine.grammar import tags as T
from engine.tasks.base import Option, Prompt, Task
from engine.tasks.scoring import check_molecule, drug_scores

SMILES_GBNF = r'smiles ::= [A-Za-z0-9@+\-\[\]()=#$%/\\.:*]{1,300}'


def until_close(generated: str, name: str) -> tuple[str | None, list[str]]:
    """The text before the first closing tag ``name``; a reason when there is none."""
    close = T.TAGS[name].close
    pos = generated.find(close)
    if pos < 0:
        return None, [f"no {close}: the record was not closed (length limit reached?)"]
    return generated[:pos], []


def molecule_objects(smiles_text: str) -> tuple[dict, list[str]]:
    stray = [m for m in T.TAGLIKE_RE.findall(smiles_text)]
    if stray:
        return {"type": "molecule", "smiles": smiles_text}, [f"tag {stray[0]} inside a SMILES"]
    mol, reasons, canon = check_molecule(smiles_text.strip())
    return {"type": "molecule", "smiles": canon or smiles_text.strip(), "raw": smiles_text}, reasons


class MoleculeOutput:
    """Validation, scores, uniqueness key and grammar of tasks whose output is one molecule."""

    def validate(self, objects: dict, prompt: Prompt) -> list[str]:
        return []  # check_molecule already ran in parse

    def score(self, objects: dict, prompt: Prompt) -> dict:
        mol, _, _ = check_molecule(objects["smiles"])
        return drug_scores(mol)

    def key(self, objects: dict):
        return objects.get("smiles")

    def grammar(self, prompt: Prompt) -> str:
        return f"root ::= smiles {T.TAGS['Molecule'].close}\n{SMILES_GBNF}\n"


class MoleculeTask(MoleculeOutput, Task):
    name = "molecule"
    title = "Molecule generation"
    description = "Sample new small molecules (SMILES), scored for validity and drug-likeness."
    needs_input = False
    novelty = True
    options = (
        Option("prefix", "str", "", "start every SMILES with this text (scaffold-constrained sampling)"),
        Option("reference", "file", None, "SMILES file for novelty (default: RDKit's NCI set)"),
    )
    sampling = {"max_new_tokens": 256}

    def build_prompt(self, inputs: dict, options: dict) -> Prompt:
        prefix = options.get("prefix") or ""
        return Prompt(text=T.token("Molecule") + prefix, stop_tags=[T.TAGS["Molecule"].close],
                      context={"prefix": prefix})

    def parse(self, generated: str, prompt: Prompt):
        body, reasons = until_close(generated, "Molecule")
        if body is None:
            return {"type": "molecule", "smiles": prompt.context.get("prefix", "") + generated}, reasons
        return molecule_objects(prompt.context.get("prefix", "") + body)


TASK = MoleculeTask()
