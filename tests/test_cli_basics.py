"""`logos --version` and `logos doctor` work on an installed checkout."""

from __future__ import annotations

import json
import subprocess
import sys

from engine import __version__


def run_logos(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_version():
    out = run_logos("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"logos {__version__}"


def test_doctor_json_reports_packages_backend_and_paths(tmp_path, monkeypatch):
    out = run_logos("doctor", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["python"].startswith("3.")
    assert report["packages"]["rdkit"]
    assert report["packages"]["llama-cpp-python"]
    ll = report["llama_cpp"]
    assert ll["available"], ll
    assert ll["backend"] in {"CPU", "CUDA", "Metal", "Vulkan"}
    assert isinstance(ll["gpu_visible"], bool)
    assert ll["sampler"].startswith(("compiled", "numpy"))
    # whether llama.cpp can sample on the device, and when the compiled sampler draws instead
    assert "backend sampling" in ll["backend_sampling"] and "compiled sampler" in ll["backend_sampling"]
    assert report["data_dir"]


def test_doctor_text_names_the_build():
    out = run_logos("doctor")
    assert out.returncode == 0
    assert "llama.cpp" in out.stdout and "build" in out.stdout
    assert "Data dir" in out.stdout and "Demo model" in out.stdout
    assert "Sampler       compiled" in out.stdout or "Sampler       numpy" in out.stdout


def test_unknown_command_fails_cleanly():
    out = run_logos("no-such-command")
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
