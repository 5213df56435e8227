"""The GUI's view of the engine's task registry (``engine.tasks``): names, options, sampling,
prompts, and which inputs a task takes from the workspace selection.

Building a prompt here is headless engine code (``Task.build_prompt``), run in the GUI process
only to show it; generation itself always happens in the engine process.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logos_desktop.generation.selection import Selection

# what to select, per kind of input a task needs (shown when the input is missing)
WHAT_TO_SELECT = {
    "pocket": ("select a ligand of a loaded protein–ligand complex (PDB or mmCIF), or select the "
               "pocket residues of a loaded protein"),
    "molecule": "select a molecule in the workspace (load an SDF, MOL or SMILES file, or paste a SMILES)",
    "protein": "select a loaded protein (PDB or mmCIF) or a FASTA sequence",
}

# task id -> the kind of input it takes from the selection (None: generates from scratch)
INPUT_KIND = {"ligand": "pocket", "retro": "molecule", "forward": "molecules", "binding-site": "protein",
              "molecule": None, "material": None, "antibody": None}
WHAT_TO_SELECT["molecules"] = ("select the reactant molecule(s) in the workspace (load an SDF, MOL or "
                               "SMILES file, or paste SMILES)")

# samples per input in the authors' commands (LOGOS-GRAMMAR.md); other tasks: 10
DEFAULT_N = {"retro": 32, "binding-site": 40, "ligand": 10}

# options that the selection fills in, or that name files: not drawn in the options form
INPUT_OPTIONS = {"ligand", "residues", "smiles", "sequence", "reference"}

SAMPLING_HELP = {
    "temperature": "softmax temperature (applied after the repetition penalty)",
    "top_p": "nucleus sampling: keep the smallest set of tokens with this much probability",
    "top_k": "keep the k most likely tokens (0 = off)",
    "min_p": "drop tokens below this fraction of the best one (0 = off, as the reference)",
    "repetition_penalty": "penalty on tokens already in the prompt or output (1 = off)",
    "max_tokens": "stop a sample after this many new tokens",
    "max_new_tokens": "stop a sample after this many new tokens",
}


@dataclass
class TaskInput:
    needed: bool
    description: str = ""
    payload: dict = field(default_factory=dict)  # the engine's ``inputs``: {"file": path} or {"text": ...}
    options: dict = field(default_factory=dict)  # task options that the selection decides
    object: Any = None  # the LoadedObject it came from
    cli: list[str] = field(default_factory=list)  # the equivalent ``logos generate`` arguments


@dataclass
class GenerationRequest:
    task: str
    input: TaskInput | None
    options: dict
    n: int
    seed: int | None
    sampling: dict
    prompt: str | None = None  # the user's edited prompt (None: the task builds it)
    model: str | None = None
    project: str | None = None
    dock_after: bool = False  # dock the run's valid results when it ends (ligand design)

    def engine_options(self) -> dict:
        """The task options as the engine takes them: the form's values (empty ones dropped) plus
        what the selection decided (ligand, residues, smiles ...)."""
        opts = {k: v for k, v in self.options.items() if v not in ("", None) and k not in INPUT_OPTIONS}
        if self.input is not None:
            opts.update(self.input.options)
        return opts

    def engine_inputs(self) -> dict | None:
        return dict(self.input.payload) if self.input is not None and self.input.payload else None

    def submit_fields(self) -> dict:
        """The fields of the engine's submit request for this job."""
        req = {"task": self.task, "n": int(self.n), "seed": int(self.seed or 0)}
        for key, value in (("inputs", self.engine_inputs()), ("options", self.engine_options()),
                           ("sampling", dict(self.sampling)), ("project", self.project),
                           ("prompt", self.prompt)):
            if value:
                req[key] = value
        return req

    def command_line(self) -> str:
        """The equivalent ``logos generate`` command (the engine logs the same with the run)."""
        from engine.process.protocol import command_line

        return command_line(self.submit_fields(), model=self.model)


class TaskCatalog:
    """Reads ``engine.tasks.registry`` (``TASKS``, ``get_task``)."""

    def __init__(self) -> None:
        from engine.tasks import registry

        self._registry = registry
        self._names = list(registry.TASKS)

    def names(self) -> list[str]:
        return list(self._names)

    def task(self, name: str):
        return self._registry.get_task(name)

    def label(self, name: str) -> str:
        t = self.task(name)
        return getattr(t, "title", "") or name

    def description(self, name: str) -> str:
        return getattr(self.task(name), "description", "") or ""

    def input_kind(self, name: str) -> str | None:
        if name in INPUT_KIND:
            return INPUT_KIND[name]
        return "molecule" if getattr(self.task(name), "needs_input", False) else None

    def kind_for(self, name: str) -> str | None:
        return self.input_kind(name)

    def options_schema(self, name: str, sel: Selection | None = None) -> list[dict]:
        """The task's options as a form; for a pocket task on a structure with ligands, first a
        ``ligand`` choice of them (the engine's list, largest first): picking one marks its pocket."""
        out = []
        for o in getattr(self.task(name), "options", ()) or ():
            d = o.as_dict() if hasattr(o, "as_dict") else dict(o)
            if d.get("type") in ("file", "list") or d["name"] in INPUT_OPTIONS:
                continue  # inputs come from the selection, not from a form
            out.append(d)
        refs = []
        if sel is not None and self.input_kind(name) == "pocket":  # a result shown: the complex before it
            refs = _ligands_of(_pocket_object(sel) or _pocket_object(getattr(sel, "fallback", None)))
        if refs:
            out.insert(0, {"name": "ligand", "type": "choice", "choices": [r.spec for r in refs],
                           "default": refs[0].spec, "label": "ligand",
                           "help": "the ligand whose pocket the task encodes (protein residues within the "
                                   "cutoff); its pocket is marked in orange in the views"})
        return out

    @staticmethod
    def pocket_of_input(inp: TaskInput | None) -> tuple[Any, str] | None:
        """(object, ligand spec) when ``inp`` is a pocket around a ligand, else None."""
        if inp is None or not inp.needed or not (inp.options or {}).get("ligand") or inp.object is None:
            return None
        return inp.object, str(inp.options["ligand"])

    def sampling_defaults(self, name: str) -> dict:
        """The reference sampling (engine.runtime.sampling) with the task's own overrides."""
        from engine.runtime.sampling import REFERENCE_DEFAULTS

        return {**REFERENCE_DEFAULTS, **(getattr(self.task(name), "sampling", {}) or {})}

    def default_n(self, name: str) -> int:
        return DEFAULT_N.get(name, 10)

    def sampling_schema(self, name: str) -> list[dict]:
        out = []
        for key, value in self.sampling_defaults(name).items():
            if key == "n" or isinstance(value, (dict, list, str)) or value is None:
                continue
            kind = "bool" if isinstance(value, bool) else "int" if isinstance(value, int) else "float"
            spec = {"name": key, "type": kind, "default": value, "help": SAMPLING_HELP.get(key, "")}
            if kind == "float":
                spec.update(min=0.0, max=100.0 if key != "top_p" else 1.0)
            elif kind == "int":
                spec.update(min=0, max=1_000_000)
            out.append(spec)
        return out

    def build_prompt(self, req: GenerationRequest) -> str:
        task = self.task(req.task)
        options = task.check_options(req.engine_options())
        prompt = task.build_prompt(req.engine_inputs() or {}, options)
        return prompt.text

    def stop(self, req: GenerationRequest) -> str:
        """The stop the prompt ends with, in words (for the prompt dialog)."""
        try:
            task = self.task(req.task)
            prompt = task.build_prompt(req.engine_inputs() or {}, task.check_options(req.engine_options()))
        except Exception:  # noqa: BLE001
            return "the end of the text"
        return ", ".join(prompt.stop_tags) if prompt.stop_tags else "the end of the text"

    # -- inputs from the selection ----------------------------------------------------------
    def inputs_from_selection(self, name: str, sel: Selection) -> tuple[TaskInput | None, str | None]:
        """The task's input from the selection; when the current object (a result shown in the
        views, say) is not of the kind the task takes, from what was selected before it."""
        found, problem = self._inputs_from(name, sel)
        fallback = getattr(sel, "fallback", None)
        if problem and fallback is not None:
            again, problem2 = self._inputs_from(name, fallback)
            if not problem2:
                return again, None
        return found, problem

    def _inputs_from(self, name: str, sel: Selection) -> tuple[TaskInput | None, str | None]:
        kind = self.input_kind(name)
        if kind is None:
            return TaskInput(needed=False), None
        if kind == "pocket":
            return _pocket_input(sel)
        if kind == "molecule":
            return _molecule_input(sel, one=True)
        if kind == "molecules":
            return _molecule_input(sel, one=False)
        if kind == "protein":
            return _protein_input(sel)
        return None, f"this task's input ({kind}) cannot be taken from the selection yet"


def _source_payload(obj) -> tuple[dict, list[str]]:
    """{"file": path} of the object as it is now: its file while it is unedited, else the object
    written from memory by the structures layer (``edited_file``)."""
    src = getattr(obj, "source", None)
    if src is not None and Path(src).is_file() and not getattr(obj, "modified", False):
        return {"file": str(src)}, ["--input", str(src)]
    path = edited_file(obj)
    return {"file": str(path)}, ["--input", str(path)]


EDITED_DIR: Path | None = None  # this session's folder of objects written from memory
EDITED_MARK = " (edited, "  # in the name of an input written from an edited object


def is_edited_input(name: str) -> bool:
    """True for the stored name of an input that was an edited object (see ``edited_file``)."""
    return EDITED_MARK in str(name or "")


def edited_file(obj) -> Path:
    """The object as it is now, written by ``engine.structures.io`` into a file named for the
    provenance: ``1hvr (edited, mutated A25 ASP→ALA).pdb`` (the engine stores the file under its
    name and its own SHA-256). One folder per content, so a queued job's file is never overwritten;
    written again only after the object changed."""
    import hashlib

    from engine.structures import edits
    from engine.structures import io as sio

    global EDITED_DIR
    value = obj.structure if obj.structure is not None else obj.mol if obj.mol is not None else obj.crystal
    cached = getattr(obj, "_logos_written", None)
    if cached is not None and cached[0] is value and cached[1].is_file():
        return cached[1]
    if obj.structure is not None:
        mmcif = str(getattr(obj, "fmt", "")).lower() in ("cif", "mmcif")
        fmt, ext = ("mmcif", "cif") if mmcif else ("pdb", "pdb")
    elif obj.mol is not None:
        fmt = ext = "sdf"
    elif obj.crystal is not None:
        fmt = ext = "cif"
    else:
        fmt = ext = "fasta"
    text = sio.write_text(obj, fmt)
    stem = Path(getattr(obj, "source", None) or obj.name or "input").name
    stem = stem[:-3] if stem.endswith(".gz") else stem
    stem = Path(stem).stem or "input"
    what = edits.edit_summary(obj)
    name = f"{stem}{EDITED_MARK}{what})" if what else stem
    name = _file_safe(name)[:150] + f".{ext}"
    if EDITED_DIR is None:
        EDITED_DIR = Path(tempfile.mkdtemp(prefix="logos-edited-"))
    folder = EDITED_DIR / hashlib.sha256(text.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    obj._logos_written = (value, path)
    return path


def _file_safe(name: str) -> str:
    """A file name on every system: no path separators, no characters Windows refuses."""
    return "".join("-" if c in '<>:"/\\|?*' or ord(c) < 32 else c for c in name).strip(" .") or "input"


SHOWN_SMILES = 48  # characters of a SMILES shown in the panel (the command line holds all of it)


def _shown(smiles: str) -> str:
    """A SMILES as the panel shows it: long ones (a line QLabel cannot wrap) shortened in the
    middle, with the length said; the full text is in the command line and its Copy button."""
    if len(smiles) <= SHOWN_SMILES:
        return smiles
    half = SHOWN_SMILES // 2
    return f"{smiles[:half]}…{smiles[-half:]} ({len(smiles)} characters)"


def _pocket_object(sel):
    obj = getattr(sel, "current", None)
    return obj if obj is not None and getattr(obj, "structure", None) is not None else None


def _ligands_of(obj) -> list:
    """The engine's ligands of a structure (largest first); [] for none."""
    if obj is None:
        return []
    from engine.structures import pocket

    try:
        return pocket.ligands(obj)
    except pocket.PocketError:
        return []


def _pocket_input(sel: Selection):
    """The pocket: a ligand among the picked residues; else the ligand whose pocket is marked (the
    marking is the engine's pocket of that ligand); else the protein residues picked or marked by
    hand; else the ligand the task takes by default (the largest)."""
    obj = _pocket_object(sel)
    if obj is None:
        return None, "Ligand design needs a pocket: " + WHAT_TO_SELECT["pocket"] + "."
    refs = _ligands_of(obj)
    by_key = {r.key: r for r in refs}
    residues = list(sel.residues)
    marked = getattr(sel, "pocket_ligand", None)
    ligand = next((by_key[(c, s)] for c, s, _n in residues if (c, s) in by_key), None)
    how = "selected"
    if ligand is None and marked:
        ligand = next((r for r in refs if r.spec == marked), None)
        how = "marked"
    protein_res = [r for r in residues if (r[0], r[1]) not in by_key]
    if ligand is None and not protein_res and refs:
        ligand, how = refs[0], "default"
    payload, cli = _source_payload(obj)
    edited = " (as edited)" if getattr(obj, "modified", False) else ""
    if ligand is not None:
        n = len(residues) if how == "marked" else None
        cutoff = getattr(sel, "pocket_cutoff", None)
        within = (f": {n} protein residues within {cutoff:g} Å, marked in orange" if n and cutoff
                  else " (protein residues within the contact cutoff)")
        return TaskInput(True, f"Pocket around ligand <b>{ligand.resname}</b> {ligand.chain}:{ligand.resnum}"
                               f"{ligand.icode} of <b>{obj.name}</b>{edited}{within}.", payload,
                         {"ligand": ligand.spec}, obj, cli + ["--ligand", ligand.spec]), None
    if protein_res:
        spec = [f"{c}:{s}" for c, s, _n in protein_res]
        listed = ", ".join(f"{n} {c}:{s}" for c, s, n in protein_res[:8])
        more = f" and {len(protein_res) - 8} more" if len(protein_res) > 8 else ""
        return TaskInput(True, f"Pocket of {len(protein_res)} selected residues of <b>{obj.name}</b>{edited}: "
                               f"{listed}{more}.", payload, {"residues": spec}, obj,
                         cli + ["--option", "residues=" + ",".join(spec)]), None
    return None, (f"Ligand design needs a pocket in {obj.name}: it has no ligand (water, ions and additives "
                  "are not ligands); select the pocket residues.")


def _molecule_input(sel: Selection, one: bool):
    from engine.grammar.chem import canonical_smiles

    chosen = [o for o in ([sel.current] if sel.current is not None else []) if getattr(o, "mol", None) is not None]
    if not one:  # reactants: every selected molecule (the workspace may report several)
        chosen += [o for o in getattr(sel, "selected_objects", []) or []
                   if getattr(o, "mol", None) is not None and o not in chosen]
    if not chosen:
        what = "a product molecule" if one else "reactant molecules"
        return None, f"This task needs {what}: " + WHAT_TO_SELECT["molecule" if one else "molecules"] + "."
    smiles = [canonical_smiles(o.mol) for o in chosen]
    if one and "." in smiles[0]:
        return None, (f"{chosen[0].name} has several fragments ({smiles[0]}): select a single product "
                      "molecule.")
    joined = ".".join(smiles)
    names = ", ".join(o.name for o in chosen)
    return TaskInput(True, f"{'Product' if one else 'Reactants'} <b>{names}</b>: <tt>{_shown(joined)}</tt>", {},
                     {"smiles": joined}, chosen[0], ["--smiles", joined]), None


def _protein_input(sel: Selection):
    obj = sel.current
    if obj is None or (getattr(obj, "structure", None) is None and not getattr(obj, "sequence", None)):
        return None, "Binding-site identification needs a protein: " + WHAT_TO_SELECT["protein"] + "."
    summary = obj.summary()
    if getattr(obj, "structure", None) is None:
        return TaskInput(True, f"Sequence <b>{obj.name}</b> ({len(obj.sequence)} residues).", {},
                         {"sequence": obj.sequence}, obj, ["--option", f"sequence={obj.sequence}"]), None
    payload, cli = _source_payload(obj)
    chains = sorted({c for c, _s, _n in sel.residues})
    opts = {"chain": chains[0]} if len(chains) == 1 else {}
    return TaskInput(True, f"Protein <b>{obj.name}</b> ({summary.get('residues', 0)} residues, "
                           f"{summary.get('chains', 0)} chain(s))"
                           + (f", chain {chains[0]}" if opts else "") + ".", payload, opts, obj,
                     cli + (["--option", f"chain={chains[0]}"] if opts else [])), None
