"""Where LOGOS Desktop keeps its files: the user's data directory and the bundled resources."""

from __future__ import annotations

import os
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
