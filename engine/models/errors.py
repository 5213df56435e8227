"""Errors meant for the user: every one names the file and, where there is one, the field."""

from __future__ import annotations

from pathlib import Path


class ModelFileError(ValueError):
    """A model file or checkpoint folder we cannot use. ``str()`` reads ``FILE: FIELD: reason``."""

    def __init__(self, path: str | Path | None, reason: str, field: str | None = None):
        self.path = Path(path) if path is not None else None
        self.field = field
        self.reason = reason
        parts = [str(self.path)] if self.path is not None else []
        if field:
            parts.append(field)
        parts.append(reason)
        super().__init__(": ".join(parts))


class UnsupportedArchitectureError(ModelFileError):
    pass


class TokenizerMappingError(ModelFileError):
    pass


class PartialFileError(ModelFileError):
    """A GGUF file shorter than its own header says (an interrupted copy or download)."""
