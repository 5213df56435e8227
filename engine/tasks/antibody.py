"""Antibody generation: ``<AntibodyS>{heavy}<AntibodyE><AntibodyS>{light}<AntibodyE>`` (DEFAULT:
heavy chain block first, light chain second, no CDR marks).

Valid when each chain is made of the 20 standard amino acids, has a plausible length for a
variable domain or a full chain (70–700 residues) and at least two cysteines (the domain's
disulfide).
"""

from __future__ import annotations

from engine.grammar import tags as T
from engine.tasks.base import Option, Prompt, Task, block_contents

STANDARD = frozenset("ACDEFGHIKLMNPQRSTVWY")
MIN_LEN, MAX_LEN = 70, 700


class AntibodyTask(Task):
    name = "antibody"
    title = "Antibody generation"
    description = "Sample antibody sequences: heavy chain, then light chain."
    options = (
        Option("chains", "choice", "paired", "paired (heavy + light) or heavy only", ("paired", "heavy")),
        Option("heavy", "str", None, "fix the heavy chain and sample a light chain for it"),
    )
    sampling = {"max_new_tokens": 1000}

    def build_prompt(self, inputs: dict, options: dict) -> Prompt:
        heavy = "".join((options.get("heavy") or "").split()).upper()
        if heavy:
            text = T.wrap("Antibody", heavy) + T.TAGS["Antibody"].open
            count = 1
        else:
            text = T.TAGS["Antibody"].open
            count = 1 if options.get("chains") == "heavy" else 2
        return Prompt(text=text, stop_tags=[T.TAGS["Antibody"].close], stop_count=count,
                      context={"heavy": heavy or None, "chains": options.get("chains") or "paired"})

    def parse(self, generated: str, prompt: Prompt):
        text = (prompt.context["heavy"] and T.wrap("Antibody", prompt.context["heavy"]) or "")
        text += T.TAGS["Antibody"].open + generated
        chains, reasons = block_contents(text, "Antibody")
        want = 1 if prompt.context["chains"] == "heavy" and not prompt.context["heavy"] else 2
        if len(chains) < want:
            reasons.append(f"{len(chains)} antibody chain(s), expected {want}")
        objs = {"type": "antibody", "heavy": chains[0] if chains else None,
                "light": chains[1] if len(chains) > 1 else None}
        objs["sequence"] = objs["heavy"]
        return objs, reasons

    def validate(self, objects: dict, prompt: Prompt) -> list[str]:
        reasons = []
        for label in ("heavy", "light"):
            seq = objects.get(label)
            if seq is None:
                continue
            bad = sorted({c for c in seq if c not in STANDARD})
            if bad:
                reasons.append(f"{label} chain: non-standard letters {''.join(bad)[:20]!r}")
            if not MIN_LEN <= len(seq) <= MAX_LEN:
                reasons.append(f"{label} chain: length {len(seq)} outside {MIN_LEN}-{MAX_LEN}")
            if seq.count("C") < 2:
                reasons.append(f"{label} chain: fewer than two cysteines (no domain disulfide)")
        return reasons

    def score(self, objects: dict, prompt: Prompt) -> dict:
        return {"heavy_length": len(objects["heavy"] or ""), "light_length": len(objects["light"] or "")}

    def key(self, objects: dict):
        return f"{objects.get('heavy')}|{objects.get('light')}"

    def grammar(self, prompt: Prompt) -> str:
        A = T.TAGS["Antibody"]
        if prompt.stop_count == 2:
            return f"root ::= chain {A.close} {A.open} chain {A.close}\nchain ::= [ACDEFGHIKLMNPQRSTVWY]{{70,700}}\n"
        return f"root ::= chain {A.close}\nchain ::= [ACDEFGHIKLMNPQRSTVWY]{{70,700}}\n"


TASK = AntibodyTask()
