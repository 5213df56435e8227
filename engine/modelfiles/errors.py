"""Errors meant for the user: every one names the file and, where there is one, the field."""

from __future__ import annotations

from pathlib import Path


class ModelFileError(ValueError):
    """A model file or checkpoint folder we cannot use. ``str()`` reads ``FILE: FIELD: reason``, or,
    for an error found at a byte of a GGUF file, ``FILE: reason (at byte OFFSET, FIELD)``: one line.

    This is the one error type the GGUF reader (:mod:`engine.modelfiles.gguf_info`) raises, whatever
    the damage (a bad count, length, type, alignment, nesting or a truncation)."""

    def __init__(self, path: str | Path | None, reason: str, field: str | None = None, offset: int | None = None):
        self.path = Path(path) if path is not None else None
        self.field = field
        self.reason = reason
        self.offset = offset
        reason = " ".join(str(reason).split())  # one line, whatever a file put in it
        if field is not None and (not field.isprintable() or len(field) > 80):
            field = repr(field[:80])  # a key name read from a damaged file: shown escaped, short
        parts = [str(self.path)] if self.path is not None else []
        if offset is not None:
            where = f"at byte {offset:,}" + (f", {field}" if field else "")
            parts.append(f"{reason} ({where})")
        else:
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
