"""Task id → task object. Task id = CLI ``--task`` value = the store's ``task`` column."""

from __future__ import annotations

import importlib

from engine.tasks.base import Task, TaskInputError

# task id -> module (engine/tasks/<module>.py)
_MODULES = {
    "molecule": "molecule",
    "ligand": "ligand",
    "binding-site": "binding_site",
    "retro": "retro",
    "forward": "forward",
    "material": "material",
    "antibody": "antibody",
}
ALIASES = {
    "ligand-design": "ligand", "ligand_design": "ligand", "binding_site": "binding-site",
    "retrosynthesis": "retro", "forward-reaction": "forward", "forward_reaction": "forward",
}
TASKS: tuple[str, ...] = tuple(_MODULES)


def get_task(name: str) -> Task:
    key = ALIASES.get(name, name)
    if key not in _MODULES:
        raise TaskInputError(f"unknown task {name!r} (tasks: {', '.join(TASKS)})")
    return importlib.import_module(f"engine.tasks.{_MODULES[key]}").TASK


def schemas() -> list[dict]:
    return [get_task(n).schema() for n in TASKS]
