"""Material generation (metal–organic framework building blocks):
``<MaterialS>`` → ``<MetalS>{node}<MetalE>`` + linker blocks → ``<MaterialE>``.

Valid when the metal node names at least one metal element (pymatgen's periodic table) and every
linker is a valid, neutral molecule.
"""

from __future__ import annotations

import re

from engine.grammar import tags as T
from engine.tasks.base import Option, Prompt, Task, blocks
from engine.tasks.molecule import SMILES_GBNF
from engine.tasks.scoring import check_molecule

ELEMENT_RE = re.compile(r"[A-Z][a-z]?")


def metals_in(node: str) -> list[str]:
    from pymatgen.core.periodic_table import Element

    found = []
    for sym in ELEMENT_RE.findall(node):
        try:
            el = Element(sym)
        except ValueError:
            continue
        if el.is_metal and sym not in found:
            found.append(sym)
    return found


class MaterialTask(Task):
    name = "material"
    title = "Material generation"
    description = "Sample metal–organic framework building blocks: a metal node and its linkers."
    options = (Option("metal", "str", None, "fix the metal node (e.g. Zn4O(CO2)6) and sample linkers"),)
    sampling = {"max_new_tokens": 512}

    def build_prompt(self, inputs: dict, options: dict) -> Prompt:
        text = T.TAGS["Material"].open
        if options.get("metal"):
            text += T.wrap("Metal", options["metal"])
        return Prompt(text=text, stop_tags=[T.TAGS["Material"].close], context={"metal": options.get("metal")})

    def parse(self, generated: str, prompt: Prompt):
        close = T.TAGS["Material"].close
        pos = generated.find(close)
        if pos < 0:
            return {"type": "material", "raw": generated}, [f"no {close}: the record was not closed"]
        body = generated[:pos]
        if prompt.context.get("metal"):
            body = T.wrap("Metal", prompt.context["metal"]) + body
        metal = None
        linkers: list[str] = []
        reasons: list[str] = []
        state = None
        buf = []
        for kind, value in blocks(body):
            if kind == "open" and state is None and value in ("Metal", "Molecule"):
                state, buf = value, []
            elif kind == "close" and value == state:
                text = "".join(buf)
                if state == "Metal":
                    if metal is not None:
                        reasons.append("more than one metal node")
                    metal = text
                else:
                    if metal is None:
                        reasons.append("a linker before the metal node (the metal node comes first)")
                    linkers.append(text)
                state = None
            elif kind == "text" and state is not None:
                buf.append(value)
            elif kind == "text" and value.strip():
                reasons.append(f"text outside any block: {value[:30]!r}")
            else:
                reasons.append(f"unexpected {value} tag ({kind})")
        if state is not None:
            reasons.append(f"<{state}S> not closed")
        objs = {"type": "material", "metal": metal, "linkers": []}
        for i, smi in enumerate(linkers, 1):
            mol, why, canon = check_molecule(smi)
            objs["linkers"].append(canon or smi)
            reasons += [f"linker {i}: {w}" for w in why]
        return objs, reasons

    def validate(self, objects: dict, prompt: Prompt) -> list[str]:
        reasons = []
        if not objects.get("metal"):
            reasons.append("no metal node")
        elif not metals_in(objects["metal"]):
            reasons.append(f"metal node {objects['metal']!r} names no metal element")
        if not objects["linkers"]:
            reasons.append("no linker")
        for i, smi in enumerate(objects["linkers"], 1):
            mol, _, _ = check_molecule(smi)
            charge = sum(a.GetFormalCharge() for a in mol.GetAtoms())
            if charge:
                reasons.append(f"linker {i} has net charge {charge:+d} (linkers are neutral parent molecules)")
        return reasons

    def score(self, objects: dict, prompt: Prompt) -> dict:
        return {"metals": metals_in(objects["metal"]), "n_linkers": len(objects["linkers"])}

    def key(self, objects: dict):
        return objects.get("metal", "") + "|" + ".".join(sorted(objects.get("linkers", [])))

    def grammar(self, prompt: Prompt) -> str:
        M, Me = T.TAGS["Molecule"], T.TAGS["Metal"]
        head = "" if prompt.context.get("metal") else f"{Me.open} node {Me.close} "
        return (f"root ::= {head}({M.open} smiles {M.close}){{1,4}} {T.TAGS['Material'].close}\n"
                f"node ::= [A-Za-z0-9()\\[\\]]{{1,60}}\n{SMILES_GBNF}\n")


TASK = MaterialTask()
