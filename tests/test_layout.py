"""The layout and import rules from docs/ARCHITECTURE.md hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_packages_and_folders_exist():
    for name in ("engine", "logos_desktop", "training"):
        assert (ROOT / name / "__init__.py").is_file(), name
    for folder in ("resources", "installer", "tests", "tests/benchmarks"):
        assert (ROOT / folder).is_dir(), folder


def test_architecture_names_only_paths_that_exist():
    """docs/ARCHITECTURE.md describes the folders and files that exist (no stale names)."""
    import re

    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:engine|logos_desktop|training|installer|resources|requirements|docs|tests)"
                           r"/[A-Za-z0-9_./-]*)`", text))
    assert len(named) > 30, named  # the document names the parts it describes
    missing = sorted(n for n in named if not (ROOT / n.rstrip("/")).exists())
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


def test_pyproject_entry_points_and_python():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["requires-python"] == ">=3.11"
    assert meta["project"]["scripts"] == {
        "logos": "engine.cli:main",
        "logos-desktop": "logos_desktop.app:main",
    }


def test_lock_pins_every_core_dependency():
    pins = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, ver = line.split("==", 1)
            pins[name.lower().replace("_", "-")] = ver
    for name in ("pyside6-essentials", "vtk", "rdkit", "biopython", "gemmi", "pymatgen", "sqlalchemy",
                 "alembic", "llama-cpp-python", "gguf", "platformdirs", "transformers", "tokenizers",
                 "safetensors", "peft", "pytest", "pytest-qt"):
        assert name in pins, f"{name} is not pinned in requirements/lock.txt"
    assert pins["torch"].startswith("2.13.0")


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is not installed in the environment"
    out = subprocess.run([exe, str(ROOT / "pyproject.toml")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout, out.stdout
