"""Binding-site identification: ``<ProteinS>{seq}<ProteinE><Search><ProteinS>`` → the same
sequence with pocket residues marked → ``<ProteinE>``. The marks are mapped back to residue
numbers of the input structure (or 1-based positions for a plain sequence).
"""

from __future__ import annotations

from engine.grammar import tags as T
from engine.tasks import protein_input as P
from engine.tasks.base import Option, Prompt, Task, TaskInputError, blocks, read_input_objects

AA = frozenset("ACDEFGHIKLMNPQRSTVWYUOX")


def read_marked(text: str) -> tuple[str, list[int], list[str]]:
    """(plain sequence, 0-based marked positions, reasons) of a pocket-marked protein body."""
    seq: list[str] = []
    marks: list[int] = []
    reasons: list[str] = []
    inside = False
    for kind, value in blocks(text):
        if kind == "open" and value == "Pocket":
            if inside:
                reasons.append("nested <PocketS>")
            inside = True
        elif kind == "close" and value == "Pocket":
            if not inside:
                reasons.append("<PocketE> without <PocketS>")
            inside = False
        elif kind == "text":
            if inside:
                if len(value) != 1:
                    reasons.append(f"pocket mark around {len(value)} letters ({value[:10]!r}); one residue per mark")
                marks.extend(range(len(seq), len(seq) + len(value)))
            seq.extend(value)
        else:
            reasons.append(f"unexpected tag {T.TAGS[value].open} inside a protein")
    if inside:
        reasons.append("<PocketS> not closed")
    plain = "".join(seq)
    bad = sorted({c for c in plain if c not in AA})
    if bad:
        reasons.append(f"not amino-acid letters: {''.join(bad)[:20]!r}")
    return plain, marks, reasons


class BindingSiteTask(Task):
    name = "binding-site"
    title = "Binding-site identification"
    description = "Mark the residues of a protein that bind a ligand; mapped back to residue numbers."
    needs_input = True
    options = (
        Option("chain", "str", None, "chain to scan (default: the first protein chain)"),
        Option("sequence", "str", None, "a plain amino-acid sequence instead of a file"),
    )
    sampling = {"max_new_tokens": 1000}

    def build_prompt(self, inputs: dict, options: dict) -> Prompt:
        residues = None
        records = []
        src = inputs.get("file") or "input"
        if options.get("sequence"):
            seq = "".join(str(options["sequence"]).split()).upper()
            chain = options.get("chain") or "A"
        else:
            objs, records = read_input_objects(inputs, self.name)
            st_obj = next((o for o in objs if o.structure is not None), None)
            if st_obj is not None:
                table = P.chains(st_obj.structure)
                if not table:
                    raise TaskInputError(f"{src}: no amino-acid chain in the file")
                chain = options.get("chain") or next(iter(table))
                if chain not in table:
                    raise TaskInputError(f"{src}: no protein chain {chain!r} (chains: {', '.join(table)})")
                residues = [r.as_dict() for r in table[chain]]
                seq = "".join(r["letter"] for r in residues)
            else:
                seqs = [o for o in objs if o.sequence]
                if not seqs:
                    raise TaskInputError(f"{src}: no protein sequence in the file")
                seq = seqs[0].sequence.upper()
                chain = options.get("chain") or seqs[0].name
        bad = sorted({c for c in seq if c not in AA})
        if not seq or bad:
            raise TaskInputError(f"{src}: not a protein sequence (letters {''.join(bad)[:20]!r})")
        text = T.wrap("Protein", seq) + T.token("Search") + T.TAGS["Protein"].open
        return Prompt(text=text, stop_tags=[T.TAGS["Protein"].close],
                      context={"sequence": seq, "chain": chain, "residues": residues}, inputs=records)

    def parse(self, generated: str, prompt: Prompt):
        close = T.TAGS["Protein"].close
        pos = generated.find(close)
        if pos < 0:
            return {"type": "binding_site", "raw": generated}, [f"no {close}: the record was not closed"]
        plain, marks, reasons = read_marked(generated[:pos])
        ctx = prompt.context
        objs = {"type": "binding_site", "sequence": plain, "positions": marks, "chain": ctx.get("chain")}
        residues = ctx.get("residues")
        if residues and plain == ctx["sequence"]:
            objs["residues"] = [residues[i]["label"] for i in marks]
        else:
            objs["residues"] = [f"{ctx.get('chain')}:{plain[i] if i < len(plain) else '?'}{i + 1}" for i in marks]
        return objs, reasons

    def validate(self, objects: dict, prompt: Prompt) -> list[str]:
        want = prompt.context["sequence"]
        got = objects["sequence"]
        reasons = []
        if got != want:
            if len(got) != len(want):
                reasons.append(f"sequence length {len(got)} differs from the input's {len(want)}")
            diff = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
            if diff is not None:
                reasons.append(f"sequence differs from the input at position {diff + 1} ({got[diff]} vs {want[diff]})")
        if not objects["positions"]:
            reasons.append("no binding-site residue marked")
        return reasons

    def score(self, objects: dict, prompt: Prompt) -> dict:
        return {"n_residues": len(objects["positions"]), "residues": objects["residues"]}

    def key(self, objects: dict):
        return ",".join(map(str, objects.get("positions", [])))

    def grammar(self, prompt: Prompt) -> str:
        P_, E_ = T.TAGS["Pocket"].open, T.TAGS["Pocket"].close
        return (f"root ::= item+ {T.TAGS['Protein'].close}\n"
                f"item ::= [ACDEFGHIKLMNPQRSTVWY] | {P_} [ACDEFGHIKLMNPQRSTVWY] {E_}\n")


TASK = BindingSiteTask()
