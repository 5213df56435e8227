"""Encode typed records as LOGOS text and decode LOGOS text back into checked records.

``decode(text)`` never raises on bad text: it returns a :class:`Decoded` with ``valid`` False and
``reasons`` saying why (RDKit's sanitisation message verbatim, unknown residue letters, unclosed or
nested pocket marks, a material with no metal, ...). Encoders raise :class:`GrammarError` on input
they cannot write. Every SMILES written is RDKit's canonical isomeric SMILES.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.grammar import records as R
from engine.grammar import tags as T
from engine.grammar import validate as V
from engine.grammar.chem import canonical_smiles, parse_smiles


class GrammarError(ValueError):
    """Input that cannot be written as a LOGOS record."""


# ------------------------------------------------------------------------------------------------
# encoding


def _canon(smiles_or_mol, what: str = "molecule") -> str:
    if smiles_or_mol is None:
        raise GrammarError(f"{what}: no molecule")
    if isinstance(smiles_or_mol, str):
        mol, reasons = parse_smiles(smiles_or_mol)
        if mol is None:
            raise GrammarError(f"{what}: {'; '.join(reasons)}")
        return canonical_smiles(mol)
    return canonical_smiles(smiles_or_mol)  # an RDKit Mol


def _check_seq(seq: str, what: str) -> str:
    seq = "".join(seq.split()).upper()
    reasons = V.check_sequence(seq, what)
    if reasons:
        raise GrammarError(reasons[0])
    return seq


def protein_body(sequence: str, pockets=(), style: str = "letter") -> str:
    if style not in R.POCKET_STYLES:
        raise GrammarError(f"pocket style must be one of {R.POCKET_STYLES}, not {style!r}")
    marks = set(pockets)
    bad = sorted(i for i in marks if not 0 <= i < len(sequence))
    if bad:
        raise GrammarError(f"pocket position(s) {bad} outside the sequence of length {len(sequence)}")
    out = []
    for i, c in enumerate(sequence):
        if i in marks:
            if style == "smiles":
                if c not in V.residue_smiles_table():
                    raise GrammarError(f"residue {c!r} at {i + 1} has no residue SMILES")
                c = V.residue_smiles(c)
            out.append(T.wrap("Pocket", c))
        else:
            out.append(c)
    return "".join(out)


def encode_protein(sequence: str, pockets=(), style: str = "letter") -> str:
    """``<ProteinS>…<ProteinE>``; ``pockets`` are 0-based positions, marked by letter or residue SMILES."""
    seq = _check_seq(sequence, "protein")
    return T.wrap("Protein", protein_body(seq, pockets, style))


def encode_molecule(smiles_or_mol) -> str:
    return T.wrap("Molecule", _canon(smiles_or_mol))


def encode_antibody(heavy: str, light: str | None = None) -> str:
    text = T.wrap("Antibody", _check_seq(heavy, "antibody heavy chain"))
    if light:
        text += T.wrap("Antibody", _check_seq(light, "antibody light chain"))
    return text


def _heavy_atoms(smiles: str) -> int:
    from rdkit import Chem

    m = Chem.MolFromSmiles(smiles)
    return m.GetNumHeavyAtoms() if m is not None else 0


def order_linkers(smiles: list[str]) -> list[str]:
    """Largest first (heavy atoms), ties by SMILES, so a record has one spelling."""
    return sorted(smiles, key=lambda s: (-_heavy_atoms(s), s))


def encode_material(metal: str, linkers) -> str:
    metal = metal.strip()
    reasons = V.check_metal_node(metal)
    if reasons:
        raise GrammarError(reasons[0])
    if not linkers:
        raise GrammarError("material has no linker")
    can = order_linkers([_canon(s, f"linker {i}") for i, s in enumerate(linkers, 1)])
    body = T.wrap("Metal", metal) + "".join(T.wrap("Molecule", s) for s in can)
    return T.wrap("Material", body)


def encode_reaction(reactants, products) -> str:
    """``R1 R2 <React> P``: forward reaction, each molecule its own block."""
    if not reactants or not products:
        raise GrammarError("a reaction needs at least one reactant and one product")
    left = "".join(encode_molecule(m) for m in reactants)
    right = "".join(encode_molecule(m) for m in products)
    return left + T.token("React") + right


def encode_retrosynthesis(product, reactants) -> str:
    """``P <ReverseReact> R1 R2``."""
    products = product if isinstance(product, (list, tuple)) else [product]
    if not reactants:
        raise GrammarError("a retrosynthesis record needs at least one reactant")
    return "".join(encode_molecule(m) for m in products) + T.token("ReverseReact") + "".join(
        encode_molecule(m) for m in reactants)


def encode_search(sequence: str, pockets=None, *, prompt: bool = False) -> str:
    """Plain protein ``<Search>`` marked protein; ``prompt=True`` ends after the second ``<ProteinS>``."""
    seq = _check_seq(sequence, "protein")
    head = T.wrap("Protein", seq) + T.token("Search")
    if prompt or pockets is None:
        return head + T.TAGS["Protein"].open
    return head + T.wrap("Protein", protein_body(seq, pockets, "letter"))


def encode_trans(sequence: str, pockets, *, prompt: bool = False) -> str:
    seq = _check_seq(sequence, "protein")
    head = T.wrap("Protein", protein_body(seq, pockets, "letter")) + T.token("Trans")
    if prompt:
        return head + T.TAGS["Protein"].open
    return head + T.wrap("Protein", protein_body(seq, pockets, "smiles"))


def encode_complex(proteins, ligand, granularity: str = "pocket") -> str:
    """Protein block(s) first, ligand last. ``proteins``: list of :class:`records.Protein` or
    ``(sequence, pockets)`` pairs. ``granularity``: ``plain``, ``pocket`` (letter marks) or
    ``smiles`` (residue-SMILES marks)."""
    if granularity not in R.GRANULARITIES:
        raise GrammarError(f"granularity must be one of {R.GRANULARITIES}, not {granularity!r}")
    if not proteins:
        raise GrammarError("a complex needs at least one protein block")
    parts = []
    for p in proteins:
        seq, pockets = (p.sequence, p.pockets) if isinstance(p, R.Protein) else (p[0], p[1])
        seq = _check_seq(seq, "protein")
        if granularity == "plain":
            parts.append(T.wrap("Protein", seq))
        else:
            parts.append(T.wrap("Protein", protein_body(seq, pockets, "letter" if granularity == "pocket" else "smiles")))
    lig = ligand.smiles if isinstance(ligand, R.Molecule) else ligand
    return "".join(parts) + encode_molecule(lig)


def encode(rec) -> str:
    """Any typed record as text."""
    if isinstance(rec, R.Protein):
        return encode_protein(rec.sequence, rec.pockets, rec.style)
    if isinstance(rec, R.Molecule):
        return encode_molecule(rec.smiles)
    if isinstance(rec, R.Antibody):
        return encode_antibody(rec.heavy, rec.light)
    if isinstance(rec, R.Material):
        return encode_material(rec.metal, rec.linkers)
    if isinstance(rec, R.Complex):
        return encode_complex(rec.proteins, rec.ligand, rec.granularity)
    if isinstance(rec, R.Reaction):
        if rec.retro:
            return encode_retrosynthesis([m.smiles for m in rec.products], [m.smiles for m in rec.reactants])
        return encode_reaction([m.smiles for m in rec.reactants], [m.smiles for m in rec.products])
    if isinstance(rec, R.Search):
        return encode_search(rec.query.sequence, rec.answer.pockets if rec.answer else None)
    if isinstance(rec, R.Trans):
        return encode_trans(rec.source.sequence, rec.source.pockets, prompt=rec.target is None)
    raise GrammarError(f"cannot encode {type(rec).__name__}")


# ------------------------------------------------------------------------------------------------
# decoding


@dataclass
class Decoded:
    kind: str  # protein | molecule | complex | reaction | retrosynthesis | material | antibody | search | trans | mixed | empty
    records: list = field(default_factory=list)  # typed records (engine.grammar.records)
    objects: list = field(default_factory=list)  # JSON-ready dicts, canonical SMILES
    valid: bool = True
    reasons: list = field(default_factory=list)
    text: str = ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, "valid": self.valid, "reasons": list(self.reasons),
                "objects": list(self.objects)}

    @property
    def record(self):
        return self.records[0] if self.records else None


_SNIP = 40


def _snip(s: str) -> str:
    s = s.strip()
    return s if len(s) <= _SNIP else s[:_SNIP] + "…"


class _Parser:
    def __init__(self, text: str):
        self.toks = T.tokenize(text)
        self.i = 0
        self.reasons: list[str] = []

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self):
        tok = self.peek()
        self.i += 1
        return tok

    def items(self) -> list[tuple[str, object]]:
        out = []
        while self.peek() is not None:
            tok = self.next()
            role = T.TOKEN_ROLE.get(tok)
            if role is None:
                if tok.strip():
                    stray = T.TAGLIKE_RE.search(tok)
                    if stray:
                        self.reasons.append(f"unknown tag {stray.group(0)}")
                    else:
                        self.reasons.append(f"text outside any block: {_snip(tok)!r}")
                continue
            name, kind = role
            if kind == "task":
                out.append((name, None))
            elif kind == "close":
                self.reasons.append(f"{tok} without a matching {T.TAGS[name].open}")
            elif name == "Protein":
                out.append(("Protein", self.protein()))
            elif name in ("Molecule", "Antibody"):
                out.append((name, self.flat(name)))
            elif name == "Material":
                out.append(("Material", self.material()))
            else:  # Pocket / Metal outside their block
                self.reasons.append(f"{tok} outside its enclosing block")
                self.flat(name)
        return out

    def flat(self, name: str) -> str:
        """Content of a block that holds no tags; stops at its close tag."""
        tag = T.TAGS[name]
        buf = []
        while True:
            tok = self.peek()
            if tok is None:
                self.reasons.append(f"unclosed {tag.open}")
                break
            if tok == tag.close:
                self.next()
                break
            if tok in T.TOKEN_ROLE:
                other, role = T.TOKEN_ROLE[tok]
                if role == "close" or other in T.BLOCKS or role == "task":
                    self.reasons.append(f"unclosed {tag.open} (found {tok} before {tag.close})")
                    break
                self.reasons.append(f"{tok} is not allowed inside {tag.open}")
                self.next()
                continue
            buf.append(self.next())
        return "".join(buf)

    def protein(self) -> R.Protein:
        seq: list[str] = []
        pockets: list[int] = []
        styles: set[str] = set()
        while True:
            tok = self.peek()
            if tok is None:
                self.reasons.append("unclosed <ProteinS>")
                break
            if tok == "<ProteinE>":
                self.next()
                break
            if tok == "<PocketS>":
                self.next()
                content, closed = [], False
                while self.peek() is not None:
                    t2 = self.peek()
                    if t2 == "<PocketE>":
                        self.next()
                        closed = True
                        break
                    if t2 == "<PocketS>":
                        self.reasons.append("nested <PocketS>: a pocket mark wraps one residue")
                        self.next()
                        continue
                    if t2 in T.TOKEN_ROLE:
                        break
                    content.append(self.next())
                if not closed:
                    self.reasons.append("unclosed <PocketS>")
                self._pocket("".join(content).strip(), seq, pockets, styles)
                continue
            if tok == "<PocketE>":
                self.next()
                self.reasons.append("<PocketE> without a matching <PocketS>")
                continue
            if tok in T.TOKEN_ROLE:
                self.reasons.append(f"unclosed <ProteinS> (found {tok} before <ProteinE>)")
                break
            seq.append("".join(self.next().split()))
        if len(styles) > 1:
            self.reasons.append("pocket marks mix residue letters and residue SMILES in one protein")
        sequence = "".join(seq)
        return R.Protein(sequence, tuple(pockets), None, "smiles" if styles == {"smiles"} else "letter")

    def _pocket(self, content: str, seq: list[str], pockets: list[int], styles: set[str]) -> None:
        pos = sum(len(s) for s in seq)
        if not content:
            self.reasons.append(f"empty pocket mark at residue {pos + 1}")
            return
        if len(content) == 1 and content.isalpha():
            styles.add("letter")
            seq.append(content)
            pockets.append(pos)
            return
        letter, reasons = V.letter_for_smiles(content)
        if letter is None and content.isalpha() and content.isupper():
            self.reasons.append(f"pocket mark at residue {pos + 1} wraps {len(content)} residues ({_snip(content)!r}); "
                                "each pocket residue is wrapped on its own")
            seq.append(content)
            pockets.extend(range(pos, pos + len(content)))
            styles.add("letter")
            return
        styles.add("smiles")
        self.reasons.extend(f"pocket residue {pos + 1}: {r}" for r in reasons)
        seq.append(letter or "X")
        pockets.append(pos)

    def material(self) -> R.Material:
        metal, linkers, seen_metal = "", [], False
        while True:
            tok = self.peek()
            if tok is None:
                self.reasons.append("unclosed <MaterialS>")
                break
            if tok == "<MaterialE>":
                self.next()
                break
            if tok == "<MetalS>":
                self.next()
                if seen_metal:
                    self.reasons.append("material has more than one <MetalS> segment")
                if linkers:
                    self.reasons.append("the metal node must be the first segment of a material")
                seen_metal = True
                metal = self.flat("Metal").strip()
                continue
            if tok == "<MoleculeS>":
                self.next()
                linkers.append(self.flat("Molecule").strip())
                continue
            if tok in T.TOKEN_ROLE:
                self.reasons.append(f"{tok} is not allowed inside <MaterialS>")
                if T.TOKEN_ROLE[tok][0] in ("Protein", "Antibody", "Material") or T.TOKEN_ROLE[tok][1] == "task":
                    self.reasons.append("unclosed <MaterialS>")
                    break
                self.next()
                continue
            stray = self.next()
            if stray.strip():
                self.reasons.append(f"text inside <MaterialS> outside any segment: {_snip(stray)!r}")
        if not seen_metal:
            self.reasons.append("material has no metal: no <MetalS> segment")
        return R.Material(metal, linkers)


def _protein_obj(p: R.Protein) -> dict:
    d = p.to_dict()
    d["pocket_letters"] = p.pocket_letters
    d["length"] = len(p.sequence)
    return d


def _mol_obj(smiles: str, role: str, reasons: list[str]) -> tuple[R.Molecule, dict]:
    can, rs = V.check_molecule(smiles, role)
    reasons.extend(rs)
    d = {"type": "molecule", "role": role, "smiles": can if can is not None else smiles, "valid": can is not None}
    if can is not None and can != smiles:
        d["input_smiles"] = smiles
    return R.Molecule(can if can is not None else smiles), d


def _layout(items) -> str:
    return " ".join(n for n, _ in items) or "nothing"


def decode(text: str) -> Decoded:
    """Parse LOGOS text into records and JSON-ready objects with a validity verdict and reasons."""
    if not isinstance(text, str):
        return Decoded("empty", valid=False, reasons=["not text"])
    parser = _Parser(text.strip())
    items = parser.items()
    reasons = parser.reasons
    out = Decoded("empty", text=text)
    names = [n for n, _ in items]
    if not items:
        out.valid = False
        out.reasons = reasons or ["no LOGOS record: the text holds no tag"]
        return out

    def proteins(sel):
        return [p for n, p in sel if n == "Protein"]

    tasks = [n for n in names if n in T.TASKS]
    if len(tasks) > 1:
        reasons.append(f"more than one task token ({', '.join('<' + t + '>' for t in tasks)})")
    task = tasks[0] if tasks else None
    if task:
        k = names.index(task)
        left, right = items[:k], items[k + 1:]
    else:
        left, right = items, []
    lnames = [n for n, _ in left]
    rnames = [n for n, _ in right if n not in T.TASKS]

    if task is None and set(lnames) == {"Protein"} and len(lnames) == 1:
        p = left[0][1]
        out.kind = "protein"
        reasons += V.check_protein(p)
        out.records, out.objects = [p], [_protein_obj(p)]
    elif task is None and set(lnames) == {"Molecule"} and len(lnames) == 1:
        out.kind = "molecule"
        rec, d = _mol_obj(left[0][1].strip(), "molecule", reasons)
        out.records, out.objects = [rec], [d]
    elif task is None and lnames and lnames[-1] == "Molecule" and set(lnames[:-1]) == {"Protein"}:
        out.kind = "complex"
        prots = proteins(left)
        lig, ld = _mol_obj(left[-1][1].strip(), "ligand", reasons)
        styles = {p.style for p in prots if p.pockets}
        gran = "plain" if not styles else ("smiles" if styles == {"smiles"} else "pocket")
        if len(styles) > 1:
            reasons.append("protein blocks of one complex mix letter and SMILES pocket marks")
        for p in prots:
            reasons += V.check_protein(p)
        rec = R.Complex(prots, lig, gran)
        out.records = [rec]
        out.objects = [_protein_obj(p) for p in prots] + [ld]
    elif task is None and set(lnames) == {"Material"}:
        out.kind = "material"
        if len(lnames) > 1:
            reasons.append(f"{len(lnames)} material blocks; a record holds one")
        for _, m in left:
            reasons += V.check_metal_node(m.metal) if m.metal or not any("no <MetalS>" in r for r in reasons) else []
            if not m.linkers:
                reasons.append("material has no linker")
            lds, can_linkers = [], []
            for i, s in enumerate(m.linkers, 1):
                rec, d = _mol_obj(s, f"linker {i}", reasons)
                lds.append(d)
                can_linkers.append(rec.smiles)
            mat = R.Material(m.metal, can_linkers)
            out.records.append(mat)
            out.objects.append({"type": "material", "metal": m.metal, "linkers": can_linkers,
                                "metals": V.metal_elements(m.metal)[0] if m.metal else []})
            out.objects += lds
    elif task is None and set(lnames) == {"Antibody"}:
        out.kind = "antibody"
        if len(lnames) > 2:
            reasons.append(f"{len(lnames)} antibody blocks; a record holds a heavy and at most a light chain")
        heavy = left[0][1].strip()
        light = left[1][1].strip() if len(left) > 1 else None
        rec = R.Antibody("".join(heavy.split()), "".join(light.split()) if light else None)
        reasons += V.check_record(rec)
        out.records, out.objects = [rec], [rec.to_dict()]
    elif task in ("React", "ReverseReact"):
        retro = task == "ReverseReact"
        out.kind = "retrosynthesis" if retro else "reaction"
        if set(lnames) - {"Molecule"} or set(rnames) - {"Molecule"}:
            reasons.append(f"a {'retrosynthesis' if retro else 'reaction'} holds only molecule blocks; got {_layout(items)}")
        lm = [s for n, s in left if n == "Molecule"]
        rm = [s for n, s in right if n == "Molecule"]
        if retro and len(lm) > 1:
            reasons.append("retrosynthesis: one product before <ReverseReact>")
        if not lm:
            reasons.append(f"nothing before <{task}>")
        if not rm:
            reasons.append(f"nothing after <{task}>")
        lrole, rrole = ("product", "reactant") if retro else ("reactant", "product")
        lrecs, rrecs = [], []
        for i, s in enumerate(lm, 1):
            rec, d = _mol_obj(s.strip(), f"{lrole} {i}", reasons)
            lrecs.append(rec)
            out.objects.append(d)
        for i, s in enumerate(rm, 1):
            rec, d = _mol_obj(s.strip(), f"{rrole} {i}", reasons)
            rrecs.append(rec)
            out.objects.append(d)
        reactants, products = (rrecs, lrecs) if retro else (lrecs, rrecs)
        rxn = R.Reaction(reactants, products, retro)
        if lm and rm:
            extra = [r for r in V.check_reaction(rxn) if "element" in r or "dot-joined" in r]
            reasons += extra
        out.records = [rxn]
    elif task in ("Search", "Trans"):
        out.kind = task.lower()
        if lnames != ["Protein"] or (rnames and rnames != ["Protein"]):
            reasons.append(f"<{task}> takes one protein block on each side; got {_layout(items)}")
        lp = proteins(left)
        rp = proteins(right)
        src = lp[0] if lp else R.Protein("")
        tgt = rp[0] if rp else None
        if tgt is None:
            reasons.append(f"nothing after <{task}>")
        rec = R.Search(src, tgt) if task == "Search" else R.Trans(src, tgt)
        reasons += V.check_record(rec)
        out.records = [rec]
        out.objects = [_protein_obj(src)] + ([_protein_obj(tgt)] if tgt is not None else [])
    else:
        out.kind = "mixed"
        reasons.append(f"unrecognised record layout: {_layout(items)}")
        for n, payload in items:
            if n == "Protein":
                reasons += V.check_protein(payload)
                out.records.append(payload)
                out.objects.append(_protein_obj(payload))
            elif n == "Molecule":
                rec, d = _mol_obj(payload.strip(), "molecule", reasons)
                out.records.append(rec)
                out.objects.append(d)
            elif n == "Antibody":
                out.records.append(R.Antibody(payload.strip()))
                out.objects.append(out.records[-1].to_dict())
            elif n == "Material":
                out.records.append(payload)
                out.objects.append(payload.to_dict())
    out.reasons = list(dict.fromkeys(reasons))
    out.valid = not out.reasons
    return out


def canonical(text: str) -> str:
    """The record re-written in canonical form (raises GrammarError when it is not valid)."""
    d = decode(text)
    if not d.valid:
        raise GrammarError("; ".join(d.reasons))
    return "".join(encode(r) for r in d.records)
