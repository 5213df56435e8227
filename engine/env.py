"""Tuning knobs read from the environment."""

from __future__ import annotations

import os


def env_int(name: str, default: int) -> int:
    """A whole number from the environment variable ``name``; missing or not a whole number:
    ``default`` (a tuning knob must never stop the engine or a reader from working)."""
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default
