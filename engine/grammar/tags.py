"""The LOGOS tags as data (shared/LOGOS-GRAMMAR.md).

Block tags come in pairs (``<ProteinS>`` … ``<ProteinE>``); task tokens stand alone between blocks.
Everything that parses or writes grammar text reads this table; nothing else spells a tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Tag:
    name: str  # "Protein", "React", ...
    kind: str  # "block" (a pair), "inline" (a pair inside a protein block) or "task" (one token)
    wraps: str  # what the content is
    open: str  # "<ProteinS>" or, for a task token, the token itself
    close: str | None  # "<ProteinE>"; None for task tokens
    inside: tuple[str, ...] = ()  # block names allowed inside this one
    source: str = "scripts"

    @property
    def tokens(self) -> tuple[str, ...]:
        return (self.open,) if self.close is None else (self.open, self.close)


def _pair(name, wraps, kind="block", inside=(), source="scripts"):
    return Tag(name, kind, wraps, f"<{name}S>", f"<{name}E>", tuple(inside), source)


def _task(name, wraps, source):
    return Tag(name, "task", wraps, f"<{name}>", None, (), source)


TAGS: dict[str, Tag] = {
    t.name: t
    for t in (
        _pair("Protein", "amino-acid sequence, one-letter codes", inside=("Pocket",), source="scripts, figure"),
        _pair("Pocket", "one binding-site residue: its letter or its residue SMILES", kind="inline", source="figure"),
        _pair("Molecule", "one small molecule as canonical isomeric SMILES", source="scripts, figure"),
        _pair("Antibody", "antibody chain sequence (heavy first, light second)", source="figure"),
        _pair("Material", "one material record: metal node then linkers", inside=("Metal", "Molecule")),
        _pair("Metal", "the metal node of a material (first segment)", kind="inline", source="figure"),
        _task("React", "reactants -> product", "figure"),
        _task("ReverseReact", "product -> reactants (retrosynthesis)", "scripts"),
        _task("Search", "plain protein -> the same protein with pocket residues marked", "scripts"),
        _task("Trans", "letter pocket marks -> residue-SMILES pocket marks", "figure"),
    )
}

BLOCKS = tuple(n for n, t in TAGS.items() if t.kind == "block")
TASKS = tuple(n for n, t in TAGS.items() if t.kind == "task")
ALL_TOKENS: tuple[str, ...] = tuple(tok for t in TAGS.values() for tok in t.tokens)

# token string -> (tag name, role) with role "open", "close" or "task"
TOKEN_ROLE: dict[str, tuple[str, str]] = {}
for _t in TAGS.values():
    if _t.close is None:
        TOKEN_ROLE[_t.open] = (_t.name, "task")
    else:
        TOKEN_ROLE[_t.open] = (_t.name, "open")
        TOKEN_ROLE[_t.close] = (_t.name, "close")

TOKEN_RE = re.compile("(" + "|".join(re.escape(t) for t in sorted(ALL_TOKENS, key=len, reverse=True)) + ")")
# something that looks like a tag but is none of ours, e.g. "<ProteinX>" or "<Ligand>"
TAGLIKE_RE = re.compile(r"<[A-Z][A-Za-z]{2,20}>")


def tokenize(text: str) -> list[str]:
    """Split grammar text into tag tokens and the text between them (empty pieces dropped)."""
    return [p for p in TOKEN_RE.split(text) if p]


def wrap(name: str, content: str) -> str:
    t = TAGS[name]
    if t.close is None:
        raise ValueError(f"{name} is a task token, not a pair")
    return f"{t.open}{content}{t.close}"


def token(name: str) -> str:
    return TAGS[name].open
