"""A model's card: per task of the task catalogue (engine.tasks), whether the model was trained for
it, on what data, and its measured figures.

Where a card lives:

* in the GGUF itself, as metadata keys written by our converter (``engine.models.convert`` reads
  ``logos_card.json`` from the checkpoint folder, which the training writes) and kept by the
  quantiser (llama.cpp copies every key); an existing file gets them with :func:`embed_card`, which
  rewrites the metadata and copies the tensor data byte for byte;
* for an imported GGUF without those keys, in the registry's sidecar
  (``<registry>/cards/<id>.json``, :meth:`engine.models.registry.Registry.set_card`; which of
  the two applies: :func:`engine.models.registry.card_for`);
* nowhere: then every task reads ``unknown`` ("no card"), never ``trained``.

Keys (GGUF value types in brackets)::

    logos.card.version              [uint32]  CARD_VERSION
    logos.card.summary              [string]  one line: what the model is
    logos.card.source               [string]  how the card was made (script, date)
    logos.task.<task>.status        [string]  trained | not_learnt | not_trained
    logos.task.<task>.data          [string]  the training data for this task ("" when none)
    logos.task.<task>.note          [string]  optional
    logos.task.<task>.figure.names  [string array]   e.g. "MOSES validity"
    logos.task.<task>.figure.values [float64 array]  in the unit below
    logos.task.<task>.figure.units  [string array]   "%" or ""
    logos.task.<task>.figure.on     [string array]   samples and sampling ("app sampling, 1,000 samples")
    logos.task.<task>.figure.source [string array]   sampler, date, script

``not_learnt``: the task's records were in the training data but the measured figures show the
model did not learn it (the user should expect invalid output, as for ``not_trained``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.modelfiles.errors import ModelFileError

CARD_VERSION = 1
CARD_FILE = "logos_card.json"  # in a Hugging Face checkpoint folder: read by the converter
STATUSES = ("trained", "not_learnt", "not_trained", "unknown")
PREFIX_CARD = "logos.card."
PREFIX_TASK = "logos.task."
IMPORT_HINT = "import a LOGOS model: Models › Manage models… › Import GGUF… (or logos models import)"


def task_names() -> tuple[str, ...]:
    from engine.tasks.registry import TASKS

    return TASKS


@dataclass
class Figure:
    name: str            # "MOSES validity"
    value: float         # in ``unit``
    unit: str = "%"      # "%" or ""
    on: str = ""         # short: "app sampling, 1,000 samples"
    source: str = ""     # how and when: "llama.cpp on the Q8_0 GGUF, 2026-12-05, python -m training.card demo"

    def text(self, with_source: bool = False) -> str:
        value = f"{self.value:.1f} %" if self.unit == "%" else f"{self.value:g}{' ' + self.unit if self.unit else ''}"
        where = ", ".join(x for x in (self.on, self.source if with_source else "") if x)
        return f"{self.name} {value}" + (f" ({where})" if where else "")


@dataclass
class TaskCard:
    status: str                  # one of STATUSES
    data: str = ""
    note: str = ""
    figures: list[Figure] = field(default_factory=list)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")

    def line(self) -> str:
        """The one line the Generate panel shows next to the task (its first, main figure)."""
        fig = self.figures[0].text() if self.figures else ""
        if self.status == "trained":
            return "trained" + (f": {fig}" if fig else ": no figures measured")
        if self.status == "not_learnt":
            return ("seen in training but not learnt" + (f": {fig}" if fig else "")
                    + f"; {self.note or 'expect invalid output'}; {IMPORT_HINT}")
        if self.status == "not_trained":
            return f"not trained for this task: expect invalid output; {IMPORT_HINT}"
        return f"unknown: no card ({self.note or 'the model file carries no LOGOS card'})"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["trained"] = {"trained": True, "not_learnt": True, "not_trained": False}.get(self.status)
        d["usable"] = self.status == "trained"
        d["line"] = self.line()
        d["details"] = self.details()
        return d

    def details(self) -> list[str]:
        """Every figure with its source, the data and the note: the panel's tooltip, the CLI table."""
        out = [f.text(with_source=True) for f in self.figures]
        if self.data:
            out.append(f"training data: {self.data}")
        if self.note and self.status != "not_learnt":  # a not_learnt note is in the line already
            out.append(self.note)
        return out

    @classmethod
    def from_dict(cls, d: dict, where: str = "card") -> "TaskCard":
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected an object, found {type(d).__name__}")
        figs = []
        for i, f in enumerate(d.get("figures") or []):
            if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not _is_number(f.get("value")):
                raise ValueError(f"{where}: figures[{i}] needs a name (text) and a value (number)")
            figs.append(Figure(f["name"], float(f["value"]), str(f.get("unit", "%")), str(f.get("on", "")),
                               str(f.get("source", ""))))
        status = d.get("status")
        if status not in STATUSES:
            raise ValueError(f"{where}: status {status!r} is not one of {', '.join(STATUSES)}")
        return cls(status, str(d.get("data") or ""), str(d.get("note") or ""), figs)


@dataclass
class ModelCard:
    tasks: dict[str, TaskCard]
    summary: str = ""
    source: str = ""             # how the card was made
    origin: str = "gguf"         # where it was read: "gguf" | "sidecar" | "none"

    def __post_init__(self):
        unknown = sorted(set(self.tasks) - set(task_names()))
        if unknown:
            raise ValueError(f"unknown task(s) {', '.join(unknown)} (tasks: {', '.join(task_names())})")
        self.tasks = _complete(self.tasks, "the card does not mention this task (not measured)")

    def as_dict(self) -> dict:
        return {"version": CARD_VERSION, "summary": self.summary, "source": self.source, "origin": self.origin,
                "tasks": {t: c.as_dict() for t, c in self.tasks.items()}}

    def task(self, name: str) -> TaskCard:
        from engine.tasks.registry import ALIASES

        name = ALIASES.get(name, name)
        return self.tasks.get(name) or TaskCard("unknown", note=f"the card does not mention the task {name!r}")

    @classmethod
    def from_dict(cls, d: dict, origin: str = "sidecar", where: str = "card") -> "ModelCard":
        if not isinstance(d, dict) or not isinstance(d.get("tasks"), dict):
            raise ValueError(f"{where}: expected an object with 'tasks'")
        if int(d.get("version", CARD_VERSION)) > CARD_VERSION:
            raise ValueError(f"{where}: card version {d['version']} is newer than this program reads ({CARD_VERSION})")
        known = set(task_names())
        tasks = {}
        for name, t in d["tasks"].items():
            if name not in known:
                raise ValueError(f"{where}: unknown task {name!r} (tasks: {', '.join(sorted(known))})")
            tasks[name] = TaskCard.from_dict(t, f"{where}: tasks.{name}")
        return cls(tasks, str(d.get("summary") or ""),
                   str(d.get("source") or ""), origin)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _complete(tasks: dict[str, TaskCard], note: str) -> dict[str, TaskCard]:
    """Every task of the catalogue, in catalogue order; missing ones unknown."""
    return {t: tasks.get(t) or TaskCard("unknown", note=note) for t in task_names()}


def no_card(note: str = "the model file carries no LOGOS card") -> ModelCard:
    return ModelCard({t: TaskCard("unknown", note=note) for t in task_names()}, origin="none")


# ---------------------------------------------------------------------------- GGUF keys

def card_keys(card: ModelCard) -> list[tuple[str, object, str]]:
    """(key, value, type) triples: type "uint32" | "str" | "list[str]" | "list[f64]"."""
    out: list[tuple[str, object, str]] = [
        (PREFIX_CARD + "version", CARD_VERSION, "uint32"),
        (PREFIX_CARD + "summary", card.summary, "str"),
        (PREFIX_CARD + "source", card.source, "str"),
    ]
    for name, t in card.tasks.items():
        if t.status == "unknown":
            continue  # an unknown task is written as no keys at all
        p = f"{PREFIX_TASK}{name}."
        out += [(p + "status", t.status, "str"), (p + "data", t.data, "str")]
        if t.note:
            out.append((p + "note", t.note, "str"))
        if t.figures:
            out += [(p + "figure.names", [f.name for f in t.figures], "list[str]"),
                    (p + "figure.values", [float(f.value) for f in t.figures], "list[f64]"),
                    (p + "figure.units", [f.unit for f in t.figures], "list[str]"),
                    (p + "figure.on", [f.on for f in t.figures], "list[str]"),
                    (p + "figure.source", [f.source for f in t.figures], "list[str]")]
    return out


def add_card_to_writer(writer, card: ModelCard) -> None:
    """Add the card's keys to a ``gguf.GGUFWriter`` (before its KV data is written)."""
    import gguf

    VT = gguf.GGUFValueType
    for key, value, kind in card_keys(card):
        if kind == "uint32":
            writer.add_uint32(key, int(value))
        elif kind == "str":
            writer.add_string(key, str(value))
        elif kind == "list[str]":
            writer.add_key_value(key, list(value), VT.ARRAY, sub_type=VT.STRING)
        else:
            writer.add_key_value(key, list(value), VT.ARRAY, sub_type=VT.FLOAT64)


def has_card_keys(kv: dict) -> bool:
    return any(k.startswith(PREFIX_CARD) or k.startswith(PREFIX_TASK) for k in kv)


def card_from_header(h) -> ModelCard | None:
    """The card in a parsed GGUF header (``gguf_info.GGUFHeader``), or None when it has no card keys.
    A card key of the wrong type raises ModelFileError naming the key and its byte offset."""
    kv = h.kv
    if not has_card_keys(kv):
        return None

    def bad(key: str, expected: str) -> ModelFileError:
        v = kv[key]
        shown = f"an array of {len(v)} items" if isinstance(v, list) else f"{type(v).__name__} {repr(v)[:40]}"
        return ModelFileError(h.path, f"expected {expected}, found {shown}", field=key, offset=h.offsets.get(key))

    def get(key: str, kind: str, default=None):
        if key not in kv:
            return default
        v = kv[key]
        ok = {"str": isinstance(v, str),
              "uint": isinstance(v, int) and not isinstance(v, bool) and v >= 0,
              "list[str]": isinstance(v, list) and all(isinstance(x, str) for x in v),
              "list[number]": isinstance(v, list) and all(_is_number(x) for x in v)}[kind]
        if not ok:
            raise bad(key, kind)
        return v

    version = get(PREFIX_CARD + "version", "uint", CARD_VERSION)
    if version > CARD_VERSION:
        raise ModelFileError(h.path, f"card version {version} is newer than this program reads ({CARD_VERSION}); "
                             "update the program", field=PREFIX_CARD + "version", offset=h.offsets.get(PREFIX_CARD + "version"))
    known = set(task_names())
    tasks: dict[str, TaskCard] = {}
    for key in kv:
        if not key.startswith(PREFIX_TASK) or not key.endswith(".status"):
            continue
        name = key[len(PREFIX_TASK):-len(".status")]
        if name not in known:
            continue  # a task of a newer catalogue: not ours to show
        p = f"{PREFIX_TASK}{name}."
        status = get(p + "status", "str")
        if status not in STATUSES or status == "unknown":
            raise ModelFileError(h.path, f"status {status[:40]!r} is not one of trained, not_learnt, not_trained",
                                 field=p + "status", offset=h.offsets.get(p + "status"))
        names = get(p + "figure.names", "list[str]", [])
        values = get(p + "figure.values", "list[number]", [])
        units = get(p + "figure.units", "list[str]", ["%"] * len(names))
        on = get(p + "figure.on", "list[str]", [""] * len(names))
        src = get(p + "figure.source", "list[str]", [""] * len(names))
        for k, arr in (("figure.values", values), ("figure.units", units), ("figure.on", on), ("figure.source", src)):
            if len(arr) != len(names):
                raise ModelFileError(h.path, f"{len(arr)} items where figure.names has {len(names)}",
                                     field=p + k, offset=h.offsets.get(p + k))
        figs = [Figure(n, float(v), u, o, sc) for n, v, u, o, sc in zip(names, values, units, on, src)]
        tasks[name] = TaskCard(status, get(p + "data", "str", ""), get(p + "note", "str", ""), figs)
    return ModelCard(tasks,
                     get(PREFIX_CARD + "summary", "str", ""), get(PREFIX_CARD + "source", "str", ""), "gguf")


def read_card(path: str | Path) -> ModelCard | None:
    """The card embedded in a GGUF file, or None (ModelFileError for a damaged file)."""
    from engine.modelfiles.gguf_info import read_header

    return card_from_header(read_header(path))


def load_card_json(path: str | Path) -> ModelCard:
    """A card from a JSON file (``logos_card.json`` or a sidecar); ValueError names the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(path, f"cannot read the card ({exc})") from None
    try:
        return ModelCard.from_dict(data, origin="sidecar", where=str(path))
    except (ValueError, TypeError) as exc:
        raise ModelFileError(path, str(exc).removeprefix(f"{path}: ")) from None


def card_json(card: ModelCard) -> str:
    d = card.as_dict()
    d.pop("origin")
    for t in d["tasks"].values():  # derived fields are not stored
        for k in ("trained", "usable", "line", "details"):
            t.pop(k)
    return json.dumps(d, indent=1, ensure_ascii=False)


# ---------------------------------------------------------------------------- rewriting a GGUF

def tensor_data_hash(path: str | Path) -> str:
    """SHA-256 over every tensor's name, type, shape and data bytes, in file order."""
    from engine.modelfiles.gguf_info import read_header

    h = read_header(path)
    sha = hashlib.sha256()
    with open(h.path, "rb") as fh:
        for t in h.tensors:
            sha.update(f"{t.name}|{t.type_id}|{list(t.shape)}|".encode())
            fh.seek(h.data_start + t.offset)
            left = t.nbytes
            while left:
                block = fh.read(min(left, 1 << 22))
                if not block:
                    raise ModelFileError(h.path, "tensor data ends early", field=f"tensor {t.name!r}")
                sha.update(block)
                left -= len(block)
    return sha.hexdigest()


def embed_card(src: str | Path, dst: str | Path, card: ModelCard) -> Path:
    """Write ``dst``: ``src`` with its card keys replaced by ``card`` (every other key kept, in order)
    and every tensor copied byte for byte. ``dst`` may be ``src`` (written beside it, then renamed)."""
    import gguf
    import numpy as np

    src, dst = Path(src), Path(dst)
    before = tensor_data_hash(src)  # also refuses a damaged input
    reader = gguf.GGUFReader(src)
    arch_field = reader.fields.get("general.architecture")
    arch = str(arch_field.contents()) if arch_field is not None else None
    if not arch:
        raise ModelFileError(src, "missing: not a model file", field="general.architecture")
    part = dst.with_name(dst.name + ".part")
    writer = gguf.GGUFWriter(part, arch)
    try:
        align = reader.fields.get("general.alignment")
        for key, f in reader.fields.items():
            if key.startswith("GGUF.") or key in ("general.architecture", "general.alignment") \
                    or key.startswith(PREFIX_CARD) or key.startswith(PREFIX_TASK):
                continue
            vtype = f.types[0]
            sub = f.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
            if sub == gguf.GGUFValueType.ARRAY:
                raise ModelFileError(src, "nested arrays are not copied", field=key)
            writer.add_key_value(key, f.contents(), vtype, sub_type=sub)
        if align is not None:
            writer.add_custom_alignment(int(align.contents()))
        add_card_to_writer(writer, card)
        for t in reader.tensors:
            writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, int(t.n_bytes), raw_dtype=t.tensor_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for t in reader.tensors:
            writer.write_tensor_data(np.ascontiguousarray(t.data))
        writer.close()
        del reader
        after = tensor_data_hash(part)
        if after != before:
            raise ModelFileError(part, f"tensor data changed while rewriting the metadata ({before[:12]}… → {after[:12]}…)")
        got = read_card(part)
        if got is None or card_json(got) != card_json(card):
            raise ModelFileError(part, "the card written does not read back the same")
        os.replace(part, dst)
    except BaseException:
        writer.close()
        part.unlink(missing_ok=True)
        raise
    return dst
