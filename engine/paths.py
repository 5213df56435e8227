"""Where LOGOS Desktop keeps its files: the user's data directory and the bundled resources."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

APP_NAME = "logos-desktop"


def data_dir() -> Path:
    """The user's data directory (model registry, settings). ``LOGOS_DATA_DIR`` overrides it."""
    override = os.environ.get("LOGOS_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """The user's cache directory (built wheels, downloaded datasets). ``LOGOS_CACHE_DIR`` overrides it."""
    override = os.environ.get("LOGOS_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def resources_dir() -> Path:
    """The ``resources/`` folder of the checkout (demonstration model, examples, icons)."""
    override = os.environ.get("LOGOS_RESOURCES_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "resources"


def bundled_models() -> list[Path]:
    """GGUF files shipped in ``resources/models`` (the demonstration model), sorted by name."""
    folder = resources_dir() / "models"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.gguf") if p.is_file())


# where an installed (non-editable) package puts resources/examples: pyproject.toml's data-files
INSTALLED_EXAMPLES = Path("share") / APP_NAME / "examples"


def examples_dir() -> Path:
    """The example structures (``resources/examples`` of the checkout, or where a wheel installed
    them: ``<prefix>/share/logos-desktop/examples``)."""
    here = resources_dir() / "examples"
    if (here / "examples.json").is_file():
        return here
    for prefix in (sys.prefix, sys.base_prefix):
        installed = Path(prefix) / INSTALLED_EXAMPLES
        if (installed / "examples.json").is_file():
            return installed
    return here


def examples() -> list[dict]:
    """The shipped examples from ``examples.json``: ``{"kind", "file", "title", "detail", "path"}``,
    only those whose file is present."""
    folder = examples_dir()
    try:
        listed = json.loads((folder / "examples.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out = []
    for entry in listed if isinstance(listed, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("file"), str) and (folder / entry["file"]).is_file():
            out.append({**entry, "path": folder / entry["file"]})
    return out
