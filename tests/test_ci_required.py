"""tests/fixtures/required.py: a part the set-up installs that is missing skips a test on a
developer's machine and fails it under CI=true (run as a pytest of its own in a temporary folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

INNER = '''
import sys
import pytest
from tests.fixtures.required import missing, require_module, require_tool

def test_module():
    require_module("logos_no_such_module")

def test_tool():
    require_tool("logos-no-such-tool")

def test_fixture():
    missing("the 1hvr fixture is not present")

def test_importorskip_of_an_installed_package():
    sys.modules["pytestqt"] = None  # as if pytest-qt were not installed
    try:
        pytest.importorskip("pytestqt")
    finally:
        del sys.modules["pytestqt"]

def test_importorskip_of_something_else():
    pytest.importorskip("logos_optional_extra")

def test_a_machine_skip():
    pytest.skip("this CPU has no AVX2")
'''

MODULE_LEVEL = '''
from tests.fixtures.required import require_module
require_module("logos_no_such_module", allow_module_level=True)

def test_never():
    pass
'''


def _run(tmp_path: Path, ci: str | None) -> str:
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\npytest_plugins = ['tests.fixtures.required']\n")
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "test_module_level.py").write_text(MODULE_LEVEL)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-o", "addopts=",
                           "--continue-on-collection-errors", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    return proc.stdout + proc.stderr


def test_missing_parts_skip_locally(tmp_path):
    out = _run(tmp_path, None)
    assert "7 skipped" in out and "failed" not in out, out


@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_parts_fail_under_ci(tmp_path, ci):
    out = _run(tmp_path, ci)
    assert "4 failed" in out and "2 skipped" in out and "1 error" in out, out
    assert "CI=true: the set-up installs this" in out
    for name in ("test_module", "test_tool", "test_fixture", "test_importorskip_of_an_installed_package"):
        assert f"FAILED test_inner.py::{name}" in out, out
    assert "ERROR test_module_level.py" in out, out
    assert "SKIPPED [1] test_inner.py" in out  # the optional extra and the machine skip stay skips
