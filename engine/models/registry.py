"""The model registry: which GGUF files this user has, their hashes, and the default one.

Lives in ``engine.paths.data_dir() / "models"``: ``registry.json`` (the manifest: one entry per
model with its SHA-256, size, architecture, quantisation, parameters, context length and LOGOS tag
check) and ``files/`` (models imported by copy). A model may also stay where it is (``copy=False``:
a reference, e.g. a large file on a lab share). Every change writes the manifest to a temporary
file and renames it, so a crash never leaves a half-written registry, and a copy is only entered
after it is complete and hashed.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterator

from engine.modelfiles.errors import ModelFileError
from engine.modelfiles.gguf_info import GGUFInfo, inspect_gguf
from engine.models.card import ModelCard, card_json, load_card_json, no_card, read_card

Progress = Callable[[str, int, int], None]
MANIFEST = "registry.json"
SCHEMA_VERSION = 1


class RegistryError(ValueError):
    """A registry request that cannot be honoured (unknown model, name taken, ...)."""


@dataclass
class ModelEntry:
    id: str
    path: str
    sha256: str
    size: int
    architecture: str
    quant: str
    n_params: int
    context_length: int | None = None
    managed: bool = False          # the file was copied into the registry and is removed with it
    source: str | None = None      # where it was imported from
    added: str = ""
    base: str | None = None        # id of the model it was converted or quantised from
    tags_single: bool = False      # every LOGOS tag is one token
    tags_missing: list[str] = field(default_factory=list)
    name: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelEntry":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def exists(self) -> bool:
        return Path(self.path).is_file()


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.").lower()
    return s[:80] or "model"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An advisory lock so that two processes (GUI and CLI) do not interleave manifest edits."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: atomic replace still protects the file itself
        yield
        return
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Registry:
    def __init__(self, root: str | Path | None = None):
        if root is None:
            from engine.paths import data_dir

            root = data_dir() / "models"
        self.root = Path(root)
        self.manifest = self.root / MANIFEST
        self.files = self.root / "files"

    # ------------------------------------------------------------------ manifest
    def _read(self) -> dict:
        if not self.manifest.is_file():
            return {"version": SCHEMA_VERSION, "default": None, "models": []}
        try:
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelFileError(self.manifest, f"the registry manifest is damaged ({exc}); it was left untouched. "
                                 "Restore it or move it aside to start a new registry") from None
        if int(data.get("version", 1)) > SCHEMA_VERSION:
            raise ModelFileError(self.manifest, f"written by a newer LOGOS Desktop (version {data['version']}); "
                                 "update the program", field="version")
        data.setdefault("models", [])
        data.setdefault("default", None)
        return data

    def _write(self, data: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".registry-", suffix=".json", dir=self.root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.manifest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------------ queries
    def list(self) -> list[ModelEntry]:
        return [ModelEntry.from_dict(d) for d in self._read()["models"]]

    def get(self, ref: str | Path) -> ModelEntry:
        """A model by id, by name, by path or by SHA-256 (a unique prefix of at least 8 hex digits)."""
        ref_s = str(ref)
        entries = self.list()
        for e in entries:
            if ref_s in (e.id, e.name) or (Path(ref_s).exists() and Path(ref_s).resolve() == Path(e.path).resolve()):
                return e
        if re.fullmatch(r"[0-9a-f]{8,64}", ref_s):
            hits = [e for e in entries if e.sha256.startswith(ref_s)]
            if len(hits) == 1:
                return hits[0]
        known = ", ".join(e.id for e in entries) or "none registered"
        raise RegistryError(f"no model {ref_s!r} in the registry ({known})")

    def default(self) -> ModelEntry | None:
        data = self._read()
        for d in data["models"]:
            if d["id"] == data["default"]:
                return ModelEntry.from_dict(d)
        return None

    # ------------------------------------------------------------------ changes
    def import_file(self, path: str | Path, *, copy: bool = True, name: str | None = None,
                    base: str | None = None, progress: Progress | None = None) -> ModelEntry:
        """Check ``path`` (refusing partial or foreign files), hash it, copy it into the registry
        (or reference it where it is) and enter it. Importing a file already registered (same
        SHA-256) returns the existing entry.

        Two imports at once (threads, or the GUI and the CLI) never collide: a copy is written to
        a temporary file of its own (unique name), and the id, the final file name and the
        manifest entry are chosen and written under the registry's lock, where the temporary file
        is renamed (atomically) to its final name."""
        src = Path(path).expanduser().resolve()
        info = inspect_gguf(src, with_hash=not copy, progress=progress)
        if name:
            with _locked(self.root):  # refuse early, before copying gigabytes
                if _slug(name) in {d["id"] for d in self._read()["models"]}:
                    raise RegistryError(f"the name {_slug(name)!r} is already used in the registry")
        if copy:
            part, sha = self._copy_in(src, progress)
        else:
            part, sha = None, info.sha256
        try:
            with _locked(self.root):
                data = self._read()
                for d in data["models"]:
                    if d["sha256"] == sha:  # already registered (or imported meanwhile by another process)
                        return ModelEntry.from_dict(d)
                ids = {d["id"] for d in data["models"]}
                entry_id = _slug(name or src.stem)
                if name and entry_id in ids:
                    raise RegistryError(f"the name {entry_id!r} is already used in the registry")
                base_id, n = entry_id, 2
                while entry_id in ids or (copy and (self.files / f"{entry_id}.gguf").exists()):
                    entry_id, n = f"{base_id}-{n}", n + 1
                dest = src
                if part is not None:
                    dest = self.files / f"{entry_id}.gguf"
                    os.replace(part, dest)
                entry = self._entry(entry_id, dest, sha, info, managed=copy, source=str(src), base=base,
                                    name=name or src.stem)
                data["models"].append(entry.as_dict())
                if data["default"] is None:
                    data["default"] = entry.id
                try:
                    self._write(data)
                except BaseException:
                    if part is not None:
                        dest.unlink(missing_ok=True)
                    raise
        finally:
            if part is not None:
                part.unlink(missing_ok=True)  # renamed already, or not wanted
        return entry

    def _copy_in(self, src: Path, progress: Progress | None) -> tuple[Path, str]:
        """Copy ``src`` into ``files/`` under a unique temporary name, hashing it on the way, and
        check the copy; returns (temporary path, SHA-256)."""
        import hashlib

        self.files.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".import-", suffix=".gguf.part", dir=self.files)
        part = Path(tmp)
        total = src.stat().st_size
        h = hashlib.sha256()
        done = 0
        try:
            with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
                while True:
                    block = fin.read(16 << 20)
                    if not block:
                        break
                    h.update(block)
                    fout.write(block)
                    done += len(block)
                    if progress:
                        progress("copy", done, total)
                fout.flush()
                os.fsync(fout.fileno())
            if part.stat().st_size != total:
                raise ModelFileError(src, f"copy incomplete ({part.stat().st_size} of {total} bytes)")
            try:
                inspect_gguf(part, with_hash=False)
            except ModelFileError as exc:  # named by its source, not by the temporary copy
                raise ModelFileError(src, f"the copy in the registry does not read back: {exc.reason}") from None
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return part, h.hexdigest()

    @staticmethod
    def _entry(entry_id: str, path: Path, sha: str, info: GGUFInfo, *, managed: bool, source: str | None,
               base: str | None, name: str) -> ModelEntry:
        missing = [t for t, v in info.tags.items() if not v["single"]]
        return ModelEntry(
            id=entry_id, path=str(path), sha256=sha, size=info.size, architecture=info.architecture,
            quant=info.quant, n_params=info.n_params, context_length=info.context_length, managed=managed,
            source=source, added=_now(), base=base, tags_single=info.all_tags_single, tags_missing=missing, name=name,
        )

    # ------------------------------------------------------------------ cards (sidecars)
    def card_path(self, entry_id: str) -> Path:
        return self.root / "cards" / f"{entry_id}.json"

    def card(self, ref: str | Path):
        """The sidecar card of a registered model (``cards/<id>.json``), or None. A model whose GGUF
        carries its own card keys is read from the file (:func:`card_for`)."""

        try:
            entry = self.get(ref)
        except RegistryError:
            return None
        path = self.card_path(entry.id)
        return load_card_json(path) if path.is_file() else None

    def set_card(self, ref: str | Path, card) -> Path:
        """Write (atomically) the sidecar card of a registered model; ``card`` is a
        ``engine.models.card.ModelCard`` or its dict (checked: unknown tasks or statuses refused)."""

        if isinstance(card, dict):
            card = ModelCard.from_dict(card)
        with _locked(self.root):
            entry = self.get(ref)
            path = self.card_path(entry.id)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{entry.id}-", suffix=".json", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(card_json(card))
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return path

    def remove(self, ref: str | Path, *, delete_file: bool | None = None) -> ModelEntry:
        """Take a model out of the registry. Its file is deleted when the registry owns it (copied
        in) unless ``delete_file=False``; a referenced file is never deleted unless asked."""
        with _locked(self.root):
            data = self._read()
            entry = self.get(ref)
            data["models"] = [d for d in data["models"] if d["id"] != entry.id]
            if data["default"] == entry.id:
                data["default"] = None
            self._write(data)
            self.card_path(entry.id).unlink(missing_ok=True)
        if delete_file if delete_file is not None else entry.managed:
            Path(entry.path).unlink(missing_ok=True)
        return entry

    def set_default(self, ref: str | Path) -> ModelEntry:
        with _locked(self.root):
            data = self._read()
            entry = self.get(ref)
            if not entry.exists:
                raise RegistryError(f"{entry.path}: the file of model {entry.id!r} is missing")
            data["default"] = entry.id
            self._write(data)
        return entry

    def verify(self, ref: str | Path, progress: Progress | None = None) -> tuple[bool, str]:
        """Re-hash a model's file: (matches, message)."""
        entry = self.get(ref)
        if not entry.exists:
            return False, f"{entry.path}: file missing"
        from engine.modelfiles.gguf_info import sha256_file

        sha = sha256_file(entry.path, progress)
        if sha != entry.sha256:
            return False, f"{entry.path}: SHA-256 {sha[:12]}… differs from the registered {entry.sha256[:12]}… (file changed)"
        return True, f"{entry.path}: SHA-256 matches"


def default_model() -> Path | None:
    """The registry's default model if its file is present, else the bundled demonstration model,
    else None."""
    from engine.paths import bundled_models

    try:
        entry = Registry().default()
    except ModelFileError:
        entry = None
    if entry is not None and entry.exists:
        return Path(entry.path)
    bundled = bundled_models()
    return bundled[0] if bundled else None


# ---------------------------------------------------------------------------- a model's card

def card_for(path: str | Path | None, *, sha256: str | None = None, registry=None) -> ModelCard:
    """The card of a model file: its own keys, else the registry's sidecar (found by SHA-256 when
    given, else by path), else ``unknown: no card`` for every task. Never hashes the file."""
    if path is None:
        return no_card("a remote model: no card")
    embedded = read_card(path)
    if embedded is not None:
        return embedded
    reg = registry or Registry()
    # a model not in the registry has no sidecar; a damaged sidecar raises ModelFileError naming it
    side = reg.card(sha256 if sha256 else path)
    return side or no_card()


def card_event(path: str | Path | None) -> dict:
    """The card as the engine process sends it with ``model_loaded`` (never raises: a card that
    cannot be read is reported as unknown, with the reason)."""
    try:
        return card_for(path).as_dict()
    except (ModelFileError, OSError, ValueError) as exc:
        return no_card(f"the card could not be read: {exc}").as_dict()
