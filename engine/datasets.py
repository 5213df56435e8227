"""Real public data that ships inside registry packages (see requirements/data.txt).

``installer/setup.sh`` downloads each listed distribution (wheel or sdist, never installed) into
``$LOGOS_CACHE_DIR/data``. These helpers read members straight out of those archives, so a
dataset never drags a package's stale pins into the environment.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import zipfile
from pathlib import Path

from engine import paths


class DatasetMissing(FileNotFoundError):
    """A data package or member is not in the cache: run ``bash installer/setup.sh setup``."""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def data_cache() -> Path:
    return paths.cache_dir() / "data"


def listed_packages() -> dict[str, str]:
    """name -> version from requirements/data.txt."""
    out: dict[str, str] = {}
    listing = paths.resources_dir().parent / "requirements" / "data.txt"
    if not listing.is_file():
        return out
    for raw in listing.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line:
            name, ver = line.split("==", 1)
            out[_norm(name)] = (ver.split() or [""])[0]  # "1.0 --hash=sha256:..." -> "1.0"
    return out


def archive(package: str) -> Path:
    """The downloaded archive of ``package`` (the version pinned in requirements/data.txt)."""
    pins = listed_packages()
    key = _norm(package)
    version = pins.get(key)
    folder = data_cache()
    if folder.is_dir():
        for f in sorted(folder.iterdir()):
            stem = _norm(f.name)
            if stem.startswith(key + "_") and (version is None or stem.startswith(f"{key}_{_norm(version)}")):
                return f
    raise DatasetMissing(
        f"data package {package}{'==' + version if version else ''} is not in {folder}; "
        "run: bash installer/setup.sh setup"
    )


def members(package: str, pattern: str = "") -> list[str]:
    """Member names of the package's archive containing ``pattern``."""
    path = archive(package)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    else:
        with tarfile.open(path) as tf:
            names = tf.getnames()
    return [n for n in names if pattern in n]


def read_bytes(package: str, member: str) -> bytes:
    """Bytes of one member; ``member`` may be a suffix of the full archive path."""
    path = archive(package)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            name = _resolve(zf.namelist(), member, package)
            return zf.read(name)
    with tarfile.open(path) as tf:
        name = _resolve(tf.getnames(), member, package)
        fh = tf.extractfile(name)
        if fh is None:
            raise DatasetMissing(f"{member} in {package} is not a regular file")
        return fh.read()


def read_text(package: str, member: str, encoding: str = "utf-8") -> str:
    """Text of one member, transparently gunzipped when it ends in ``.gz``."""
    data = read_bytes(package, member)
    if member.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode(encoding)


def extract(package: str, member: str, dest: Path) -> Path:
    """Write one member to ``dest`` (a file path) and return it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(read_bytes(package, member))
    return dest


def open_member(package: str, member: str) -> io.BytesIO:
    return io.BytesIO(read_bytes(package, member))


def _resolve(names: list[str], member: str, package: str) -> str:
    if member in names:
        return member
    hits = [n for n in names if n.endswith("/" + member) or n.endswith(member)]
    if not hits:
        raise DatasetMissing(f"{member} is not in data package {package}")
    return min(hits, key=len)
