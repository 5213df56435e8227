"""The layout and import rules from docs/ARCHITECTURE.md hold."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

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


def _engine_contracts() -> list[dict]:
    """The engine's own contracts of pyproject.toml (the layers and the no-circles ones)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return [c for c in config["contracts"] if c["type"] in ("layers", "acyclic_siblings")]


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(v)


def _lint_engine_copy(tmp_path: Path, edits: dict[str, str]) -> subprocess.CompletedProcess:
    """lint-imports with the engine's contracts on a copy of engine/ (its .py files) where each
    ``edits`` file (relative to engine/) gets the given line appended, or is created with it."""
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "engine", copy / "engine",
                    ignore=lambda d, names: [n for n in names if n == "__pycache__"
                                             or ((Path(d) / n).is_file() and not n.endswith(".py"))])
    for rel, line in edits.items():
        f = copy / "engine" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text((f.read_text() if f.exists() else "") + "\n" + line + "\n")
    lines = ['[tool.importlinter]', 'root_packages = ["engine"]']
    for c in _engine_contracts():
        lines.append("[[tool.importlinter.contracts]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in c.items()]
    (copy / "pyproject.toml").write_text("\n".join(lines) + "\n")
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    env = {**os.environ, "PYTHONPATH": str(copy)}  # the copy, not the installed engine
    return subprocess.run([exe, "--no-cache", "--no-logo", "pyproject.toml"], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=300)


def test_engine_contracts_exist():
    names = {c["name"] for c in _engine_contracts()}
    assert any(n.startswith("engine layers") for n in names), names
    assert any(n.startswith("engine modules: no import circles") for n in names), names


@pytest.mark.parametrize("edits, broken, named", [
    # the circle issue 19 removed: the runtime reading model files through engine.models
    ({"runtime/gguf_facts.py": "from engine.models import card"},
     "engine layers", "engine.runtime.gguf_facts -> engine.models.card"),
    # the bottom of the engine importing a package above it
    ({"grammar/tags.py": "import engine.structures.model"},
     "engine layers", "engine.grammar.tags -> engine.structures.model"),
    # a circle inside one package: the CIF reader importing the framework decomposition again
    ({"structures/io.py": "from engine.structures import framework"},
     "engine modules: no import circles", ".io -> .framework"),
    # a new package that the layers do not place
    ({"newpackage/__init__.py": "X = 1"}, "engine layers", "engine.newpackage"),
], ids=["runtime-imports-models", "grammar-imports-structures", "io-framework-circle", "unplaced-package"])
def test_engine_contracts_catch_a_new_circle(tmp_path, edits, broken, named):
    """A copy of the engine with one import pointing up (or a circle, or an unplaced package) fails
    lint-imports, naming the contract and the import; the unchanged copy passes."""
    out = _lint_engine_copy(tmp_path, edits)
    report = out.stdout + out.stderr
    assert out.returncode != 0, report
    assert any(line.startswith(broken) and " BROKEN" in line for line in report.splitlines()), report
    assert named in report, report


def test_engine_contracts_hold_on_an_unchanged_copy(tmp_path):
    out = _lint_engine_copy(tmp_path, {})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout, out.stdout
