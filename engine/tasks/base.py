"""What every task module provides, and the shared machinery around it.

A task module defines one :class:`Task` subclass with, side by side: the prompt builder
(``build_prompt``), the closing tag the runtime stops on, the parser of generated text
(``parse``), the validator (``validate``: reasons, never silent drops), the scorer (``score``),
default sampling, an options schema (the GUI builds its panel from it) and, optionally, a GBNF
grammar for constrained decoding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.grammar import tags as T


class TaskInputError(ValueError):
    """Bad input for a task: the message names the file (and chain/residue) and says why."""


@dataclass
class Option:
    name: str
    type: str  # "str" | "int" | "float" | "bool" | "file" | "choice" | "list"
    default: object = None
    help: str = ""
    choices: tuple = ()
    required: bool = False

    def as_dict(self) -> dict:
        d = asdict(self)
        d["choices"] = list(self.choices)
        return d


@dataclass
class InputRecord:
    """An input to keep with the run (stored in the project with its hash)."""

    data: bytes
    fmt: str
    name: str


@dataclass
class Prompt:
    text: str  # the exact prompt text the model sees (shown to the user, editable)
    stop_tags: list[str] = field(default_factory=list)  # closing tags; empty: end-of-text only
    stop_count: int = 1  # stop after this many closing tags
    context: dict = field(default_factory=dict)  # what parse/validate/score need (JSON-able)
    inputs: list[InputRecord] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"text": self.text, "stop_tags": list(self.stop_tags), "stop_count": self.stop_count,
                "context": self.context}


@dataclass
class Candidate:
    """One evaluated sample: what the engine sends as a ``result`` event and the store keeps."""

    record: str  # full record text: prompt + generated
    generated: str
    objects: dict
    valid: bool
    reasons: list[str]
    scores: dict
    key: str | None = None  # identity for uniqueness/novelty (canonical SMILES, sequence ...)
    smiles: str | None = None
    sequence: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class Task:
    name: str = ""
    title: str = ""
    description: str = ""
    needs_input: bool = False
    options: tuple[Option, ...] = ()
    sampling: dict = {}
    # an empty novelty reference means novelty is not scored for this task
    novelty: bool = False

    # ---- to implement
    def build_prompt(self, inputs: dict, options: dict) -> Prompt:  # pragma: no cover - abstract
        raise NotImplementedError

    def parse(self, generated: str, prompt: Prompt) -> tuple[dict, list[str]]:  # pragma: no cover
        raise NotImplementedError

    def validate(self, objects: dict, prompt: Prompt) -> list[str]:  # pragma: no cover
        raise NotImplementedError

    def score(self, objects: dict, prompt: Prompt) -> dict:
        return {}

    def key(self, objects: dict) -> str | None:
        return None

    def grammar(self, prompt: Prompt) -> str | None:
        """A GBNF grammar for the generated part (tags written as ``<[id]>`` by the runtime)."""
        return None

    # ---- shared
    def schema(self) -> dict:
        return {"name": self.name, "title": self.title, "description": self.description,
                "needs_input": self.needs_input, "options": [o.as_dict() for o in self.options],
                "sampling": dict(self.sampling)}

    def check_options(self, options: dict | None) -> dict:
        """Defaults filled in; unknown options are an error that names them."""
        options = dict(options or {})
        known = {o.name: o for o in self.options}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TaskInputError(f"task {self.name}: unknown option(s) {', '.join(unknown)} "
                                 f"(known: {', '.join(sorted(known)) or 'none'})")
        out = {}
        for name, opt in known.items():
            value = options.get(name, opt.default)
            if value is None and opt.required:
                raise TaskInputError(f"task {self.name}: option {name!r} is required ({opt.help})")
            if value is not None and opt.type == "int":
                value = int(value)
            elif value is not None and opt.type == "float":
                value = float(value)
            elif value is not None and opt.type == "bool":
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            elif value is not None and opt.type == "choice" and value not in opt.choices:
                raise TaskInputError(f"task {self.name}: option {name!r} must be one of "
                                     f"{', '.join(map(str, opt.choices))}, got {value!r}")
            out[name] = value
        return out

    def evaluate(self, generated: str, prompt: Prompt) -> Candidate:
        """Parse, validate and score one sample. Never raises for bad model output."""
        try:
            objects, reasons = self.parse(generated, prompt)
        except Exception as exc:  # noqa: BLE001 - a parser bug must not lose the sample
            objects, reasons = {}, [f"could not parse: {type(exc).__name__}: {exc}"]
        if not reasons:
            try:
                reasons = list(self.validate(objects, prompt))
            except Exception as exc:  # noqa: BLE001
                reasons = [f"validator failed: {type(exc).__name__}: {exc}"]
        scores: dict = {}
        if not reasons:
            try:
                scores = self.score(objects, prompt)
            except Exception as exc:  # noqa: BLE001
                scores = {"error": f"{type(exc).__name__}: {exc}"}
        key = self.key(objects) if not reasons else None
        return Candidate(record=prompt.text + generated, generated=generated, objects=objects,
                         valid=not reasons, reasons=reasons, scores=scores, key=key,
                         smiles=objects.get("smiles") if isinstance(objects.get("smiles"), str) else None,
                         sequence=objects.get("sequence") if isinstance(objects.get("sequence"), str) else None)


# ---------------------------------------------------------------- helpers for parsers

def blocks(text: str) -> list[tuple[str, str]]:
    """Split grammar text into (kind, value): ("open"|"close"|"task", tag name) or ("text", s)."""
    out = []
    for piece in T.tokenize(text):
        role = T.TOKEN_ROLE.get(piece)
        if role is None:
            out.append(("text", piece))
        else:
            out.append((role[1], role[0]))
    return out


def block_contents(text: str, name: str) -> tuple[list[str], list[str]]:
    """Contents of every complete top-level ``name`` block, and reasons for what is malformed
    (an unclosed block, a stray closing tag, an unknown tag-like token)."""
    reasons: list[str] = []
    contents: list[str] = []
    cur: list[str] | None = None
    depth_other = 0
    for kind, value in blocks(text):
        if kind == "open" and value == name and cur is None and depth_other == 0:
            cur = []
        elif kind == "close" and value == name and cur is not None:
            contents.append("".join(cur))
            cur = None
        elif cur is not None:
            cur.append(T.TAGS[value].open if kind == "open" else
                       T.TAGS[value].close if kind == "close" else
                       T.TAGS[value].open if kind == "task" else value)
        elif kind == "text" and value.strip():
            reasons.append(f"text outside any block: {value[:40]!r}")
        elif kind == "close" and value == name:
            reasons.append(f"{T.TAGS[name].close} without {T.TAGS[name].open}")
    if cur is not None:
        reasons.append(f"{T.TAGS[name].open} block not closed (generation stopped: length limit?)")
    for m in T.TAGLIKE_RE.findall(text):
        if m not in T.TOKEN_ROLE:
            reasons.append(f"unknown tag {m}")
    return contents, reasons


def read_input_objects(inputs: dict, task: str):
    """Structures from ``inputs["file"]`` or ``inputs["text"]`` through engine.structures.io."""
    from engine.structures import io as sio

    if inputs.get("file"):
        path = Path(inputs["file"])
        try:
            objs = sio.read_file(path)
        except FileNotFoundError:
            raise TaskInputError(f"{path}: file not found") from None
        except ValueError as exc:  # StructureReadError: "FILE:LINE: reason"
            raise TaskInputError(str(exc)) from None
        data = path.read_bytes()
        return objs, [InputRecord(data=data, fmt=objs[0].fmt if objs else path.suffix.lstrip("."), name=path.name)]
    if inputs.get("text"):
        text = str(inputs["text"])
        try:
            objs = sio.read_text(text)
        except ValueError as exc:
            raise TaskInputError(str(exc)) from None
        return objs, [InputRecord(data=text.encode(), fmt=objs[0].fmt if objs else "txt", name="pasted")]
    raise TaskInputError(f"task {task} needs an input: --input FILE (or inputs.file / inputs.text)")
