"""installer/setup.sh: backend detection and the one-line messages when set-up cannot proceed.

These run the real script in `check` mode (it checks prerequisites and changes nothing). The
network is never used: PIP_INDEX_URL points at a local folder or a closed loopback port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "installer" / "setup.sh"


def path_without(tmp_path: Path, *names: str, extra: dict[str, str] | None = None) -> str:
    """A PATH made of symlinks to every program on the current PATH except ``names``."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            if entry.name in names or (bindir / entry.name).exists():
                continue
            if entry.is_file() and os.access(entry.path, os.X_OK):
                (bindir / entry.name).symlink_to(entry.path)
    for name, body in (extra or {}).items():
        script = bindir / name
        script.write_text("#!/bin/sh\n" + body + "\n")
        script.chmod(0o755)
    return str(bindir)


def run_setup(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    return subprocess.run(["bash", str(SETUP), *args], capture_output=True, text=True,
                          timeout=timeout, env=full, cwd=ROOT)


def last_line(out: subprocess.CompletedProcess) -> str:
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.fixture
def offline_index(tmp_path):
    """An index URL that is local, so the network probe passes without any network."""
    folder = tmp_path / "index"
    folder.mkdir()
    return {"PIP_INDEX_URL": folder.as_uri(), "LOGOS_CACHE_DIR": str(tmp_path / "cache")}


def test_check_passes_on_this_machine(offline_index):
    out = run_setup("check", env=offline_index)
    assert out.returncode == 0, out.stderr
    assert "all prerequisites are present" in out.stderr


def test_no_disk_space_is_one_line_naming_it(offline_index):
    out = run_setup("check", env={**offline_index, "LOGOS_SETUP_MIN_DISK_GB": "100000000"})
    assert out.returncode == 1
    assert "cannot continue: no disk space" in last_line(out)
    assert "Traceback" not in out.stderr


def test_no_cmake_names_the_debian_package(tmp_path, offline_index):
    env = {**offline_index, "PATH": path_without(tmp_path, "cmake", "nvcc", "nvidia-smi")}
    out = run_setup("check", "--backend", "cpu", env=env)
    assert out.returncode == 1
    assert last_line(out) == ("[setup] cannot continue: cmake not found: it is needed to build "
                              "llama.cpp (Debian package cmake)")


def test_no_compiler_names_the_debian_package(tmp_path, offline_index):
    env = {**offline_index, "PATH": path_without(tmp_path, "c++", "g++", "nvcc", "nvidia-smi")}
    out = run_setup("check", "--backend", "cpu", env=env)
    assert out.returncode == 1
    assert "no C++ compiler" in last_line(out) and "(Debian package g++)" in last_line(out)


def test_no_network_and_no_bundle(tmp_path):
    env = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "LOGOS_CACHE_DIR": str(tmp_path / "c")}
    out = run_setup("check", env=env)
    assert out.returncode == 1
    assert "no network and no offline bundle" in last_line(out)


def test_a_bundle_replaces_the_network(tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "wheelhouse").mkdir(parents=True)
    env = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "LOGOS_CACHE_DIR": str(tmp_path / "c")}
    out = run_setup("check", "--bundle", str(bundle), env=env)
    assert out.returncode == 0, out.stderr


def test_missing_bundle_folder(tmp_path):
    out = run_setup("check", "--bundle", str(tmp_path / "nope"), env={})
    assert out.returncode == 1
    assert "offline bundle folder not found" in last_line(out)


GPU = 'echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)"'
NVCC = 'echo "Cuda compilation tools, release 13.0"'


@pytest.mark.parametrize(
    ("fake", "expected", "why"),
    [
        ({"nvidia-smi": GPU, "nvcc": NVCC}, "backend: cuda", "NVIDIA GPU found by nvidia-smi"),
        ({"nvcc": NVCC}, "backend: cpu", "no NVIDIA GPU answers nvidia-smi"),
        ({"nvidia-smi": GPU}, "backend: cpu", "nvidia-cuda-toolkit"),
        ({}, "backend: cpu", "no NVIDIA GPU"),
    ],
)
def test_backend_detection(tmp_path, offline_index, fake, expected, why):
    env = {**offline_index, "PATH": path_without(tmp_path, "nvcc", "nvidia-smi", extra=fake)}
    out = run_setup("check", env=env)
    assert out.returncode == 0, out.stderr
    assert f"(llama.cpp {expected}," in out.stderr, out.stderr
    assert why in out.stderr


def test_rerun_on_a_set_up_checkout_skips_set_up():
    if not (ROOT / ".venv" / ".logos-setup-stamp").is_file():
        pytest.skip("this checkout was not set up by installer/setup.sh")
    start = time.monotonic()
    out = run_setup("setup", env={})
    elapsed = time.monotonic() - start
    assert out.returncode == 0, out.stderr
    assert "setting up" not in out.stderr
    assert elapsed < 30, f"a set-up re-run took {elapsed:.1f} s"


def test_bash_syntax_of_installer_scripts():
    for script in ("setup.sh", "bundle"):
        out = subprocess.run(["bash", "-n", str(ROOT / "installer" / script)], capture_output=True,
                             text=True)
        assert out.returncode == 0, out.stderr
    assert shutil.which("bash")
