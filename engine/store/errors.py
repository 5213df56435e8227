"""Errors of the project store. ``str(error)`` is one line: ``FILE: reason``."""

from __future__ import annotations

from pathlib import Path


class ProjectError(Exception):
    """A project file could not be opened, read or written. Nothing in the file was changed."""

    def __init__(self, path: Path | str | None, reason: str):
        self.path = Path(path) if path is not None else None
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path is not None else reason)


class NotAProjectError(ProjectError):
    """The file is not an SQLite database, or an SQLite database that is not a LOGOS project."""


class CorruptProjectError(ProjectError):
    """SQLite reports the file as damaged."""


class ProjectLockedError(ProjectError):
    """Another process holds a lock on the file for longer than the busy timeout."""


class DiskFullError(ProjectError):
    """A write failed because the disk (or the database's size limit) is full; it was rolled back."""


class ReadOnlyProjectError(ProjectError):
    """A write was attempted on a project opened read-only (newer schema or read-only file)."""


class NewerSchemaError(ReadOnlyProjectError):
    """The project was written by a newer LOGOS Desktop; it can be read but not changed."""
