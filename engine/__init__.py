"""LOGOS Desktop engine: the headless science core (grammar, structures, models, runtime, store).

Never imports Qt, VTK or torch (checked by import-linter, see pyproject.toml).
"""

from engine._version import __version__

__all__ = ["__version__"]
