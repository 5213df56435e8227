"""installer/setup.sh: backend detection and the one-line messages when set-up cannot proceed.

These run the real script in `check` mode (it checks prerequisites and changes nothing). The
network is never used: PIP_INDEX_URL points at a local folder or a closed loopback port.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
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
    (bundle / "SHA256SUMS").write_text("")
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


# ---------------------------------------------------------------- supply chain (issue 18 item 9)
LOCK = ROOT / "requirements" / "lock.txt"
DATA = ROOT / "requirements" / "data.txt"
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})\b")


def _pins(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 list) of a requirements file, one package per line."""
    out = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
        assert m, f"{path.name}: not a pinned line: {raw!r}"
        out[m.group(1).lower().replace("_", "-")] = (m.group(2), HASH.findall(line))
    return out


def test_every_pin_carries_its_sha256():
    for path in (LOCK, DATA):
        pins = _pins(path)
        assert len(pins) > (100 if path is LOCK else 4), path
        unhashed = [name for name, (_, sums) in pins.items() if not sums]
        assert not unhashed, f"{path.name}: no --hash for {unhashed}"
    lock = _pins(LOCK)
    for tool in ("pip", "setuptools", "wheel", "packaging"):  # the set-up's own tools, pinned too
        assert tool in lock and lock[tool][1], tool
    assert lock["torch"][0] == "2.13.0+cpu"  # the CPU wheel; PyPI's Linux torch pulls CUDA packages
    # data packages: exactly one file each (the archive engine.datasets reads)
    assert all(len(sums) == 1 for _, sums in _pins(DATA).values())


def test_torch_hash_is_the_cpu_wheel_on_this_machine():
    wheels = list(Path("/opt/wheels").glob("torch-2.13.0+cpu-cp311-*.whl"))
    if not wheels:
        pytest.skip("this machine has no local torch CPU wheel in /opt/wheels")
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    assert digest in _pins(LOCK)["torch"][1]


def test_cached_data_files_match_their_pins():
    """The data files set-up fetched on this machine are the ones data.txt's sums name."""
    from engine import datasets

    for name, (_, sums) in _pins(DATA).items():
        try:
            path = datasets.archive(name)
        except datasets.DatasetMissing:
            continue  # not fetched here; test_fetch_data_* cover the fetcher
        assert hashlib.sha256(path.read_bytes()).hexdigest() in sums, path


def _bundle(tmp_path: Path, files: dict[str, bytes], wrong: str | None = None) -> Path:
    bundle = tmp_path / "bundle"
    for sub in ("wheelhouse", "llama", "data", "apt"):
        (bundle / sub).mkdir(parents=True)
    lines = []
    for rel, body in files.items():
        (bundle / rel).write_bytes(body)
        digest = hashlib.sha256(body if rel != wrong else body + b"!").hexdigest()
        lines.append(f"{digest}  {rel}")
    (bundle / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return bundle


def _offline(tmp_path: Path) -> dict[str, str]:
    return {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "LOGOS_CACHE_DIR": str(tmp_path / "c")}


def test_a_bundle_file_with_a_wrong_checksum_is_refused(tmp_path):
    files = {"wheelhouse/tabulate-0.10.0-py3-none-any.whl": b"PK wheel",
             "apt/strace_6.1_amd64.deb": b"!<arch> deb", "data/core_mof-2019.1-py3-none-any.whl": b"PK data"}
    bundle = _bundle(tmp_path, files, wrong="apt/strace_6.1_amd64.deb")
    out = run_setup("check", "--bundle", str(bundle), env=_offline(tmp_path))
    assert out.returncode == 1
    assert last_line(out).startswith("[setup] cannot continue: bundle file apt/strace_6.1_amd64.deb "
                                     "fails its SHA256SUMS check"), out.stderr
    assert "Traceback" not in out.stderr
    # the same bundle with the right sum passes the check
    ok = _bundle(tmp_path / "ok", files)
    out = run_setup("check", "--bundle", str(ok), env=_offline(tmp_path))
    assert out.returncode == 0, out.stderr


def test_a_bundle_file_not_listed_or_no_sums_is_refused(tmp_path):
    bundle = _bundle(tmp_path, {"wheelhouse/tabulate-0.10.0-py3-none-any.whl": b"PK wheel"})
    (bundle / "llama" / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl").write_bytes(b"PK other")
    out = run_setup("check", "--bundle", str(bundle), env=_offline(tmp_path))
    assert out.returncode == 1
    assert "bundle file llama/llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl is not listed" in last_line(out)
    (bundle / "SHA256SUMS").unlink()
    out = run_setup("check", "--bundle", str(bundle), env=_offline(tmp_path))
    assert out.returncode == 1
    assert "has no SHA256SUMS file" in last_line(out)


def test_set_up_installs_with_require_hashes(tmp_path):
    """The real set-up, into a scratch virtual environment (LOGOS_VENV), from a bundle whose pip
    wheel is not the file the lock's sha256 names (the bundle's own SHA256SUMS agrees with it, as a
    bundle made from a tampered index would): pip refuses it, nothing else is installed."""
    if not shutil.which("python3.11") and sys.version_info[:2] != (3, 11):
        pytest.skip("no Python 3.11 on this machine to make the scratch environment with")
    version = _pins(LOCK)["pip"][0]
    bundle = _bundle(tmp_path, {f"wheelhouse/pip-{version}-py3-none-any.whl": b"PK\x03\x04 not pip"})
    venv = tmp_path / "venv"
    stamp = ROOT / ".venv" / ".logos-setup-stamp"
    before = stamp.read_bytes() if stamp.is_file() else None
    out = run_setup("setup", "--bundle", str(bundle), timeout=300,
                    env={**_offline(tmp_path), "LOGOS_VENV": str(venv)})
    assert out.returncode == 1, out.stderr
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in out.stderr, out.stderr[-2000:]
    assert last_line(out).startswith("[setup] cannot continue: pip could not install its pinned tools"), out.stderr
    assert (venv / "bin" / "python").exists()  # the scratch environment was the one used
    assert not list(venv.glob("lib/python*/site-packages/numpy"))
    assert (stamp.read_bytes() if stamp.is_file() else None) == before  # .venv untouched


def _fake_index(tmp_path: Path, name: str, filename: str, body: bytes, fragment: bool) -> str:
    files = tmp_path / "index" / "files"
    files.mkdir(parents=True)
    (files / filename).write_bytes(body)
    page = tmp_path / "index" / "simple" / name
    page.mkdir(parents=True)
    frag = f"#sha256={hashlib.sha256(body).hexdigest()}" if fragment else ""
    (page / "index.html").write_text(f'<html><body><a href="../../files/{filename}{frag}">{filename}</a></body></html>')
    return (tmp_path / "index" / "simple").as_uri()


def _fetch(tmp_path: Path, listing: str, index: str, bundle: Path | None = None):
    data_list = tmp_path / "data.txt"
    data_list.write_text(listing)
    env = {**os.environ, "PIP_INDEX_URL": index, "PIP_EXTRA_INDEX_URL": ""}
    args = [sys.executable, str(ROOT / "installer" / "fetch_data.py"), str(data_list), str(tmp_path / "cache")]
    if bundle is not None:
        args.append(str(bundle))
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)


def test_fetch_data_keeps_only_the_listed_file(tmp_path):
    body = b"PK\x03\x04 a data wheel"
    good = hashlib.sha256(body).hexdigest()
    index = _fake_index(tmp_path, "tiny-data", "tiny_data-1.0-py3-none-any.whl", body, fragment=False)
    out = _fetch(tmp_path, f"tiny-data==1.0 --hash=sha256:{'0' * 64}  # the wrong sum\n", index)
    assert out.returncode == 1
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert lines[-1] == (f"[setup] cannot continue: data package tiny-data==1.0: the downloaded "
                         f"tiny_data-1.0-py3-none-any.whl has sha256 {good}, requirements/data.txt lists {'0' * 64}")
    assert not list((tmp_path / "cache").iterdir())  # nothing kept, no partial file
    out = _fetch(tmp_path, f"tiny-data==1.0 --hash=sha256:{good}\n", index)
    assert out.returncode == 0, out.stderr
    kept = tmp_path / "cache" / "tiny_data-1.0-py3-none-any.whl"
    assert kept.read_bytes() == body
    # a cached file changed afterwards is replaced by the listed one
    kept.write_bytes(b"tampered")
    out = _fetch(tmp_path, f"tiny-data==1.0 --hash=sha256:{good}\n", index)
    assert out.returncode == 0 and "does not match" in out.stderr
    assert kept.read_bytes() == body


def test_fetch_data_never_builds_and_refuses_unhashed_lines(tmp_path):
    """An sdist is fetched as a file (its setup.py would write a marker if it ran), and a line
    without a sum is refused naming the line."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        script = f"open({str(tmp_path / 'RAN')!r}, 'w').write('built')\n".encode()
        info = tarfile.TarInfo("tiny_src-2.0/setup.py")
        info.size = len(script)
        tf.addfile(info, io.BytesIO(script))
    body = buf.getvalue()
    index = _fake_index(tmp_path, "tiny-src", "tiny_src-2.0.tar.gz", body, fragment=True)
    out = _fetch(tmp_path, f"tiny-src==2.0 --hash=sha256:{hashlib.sha256(body).hexdigest()}\n", index)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "cache" / "tiny_src-2.0.tar.gz").is_file() and not (tmp_path / "RAN").exists()
    out = _fetch(tmp_path, "tiny-src==2.0\n", index)
    assert out.returncode == 1
    assert "data.txt:1: tiny-src==2.0 has no --hash=sha256:" in out.stderr.splitlines()[-1]


def test_fetch_data_from_a_bundle_checks_the_sum(tmp_path):
    bundle = tmp_path / "bdata"
    bundle.mkdir()
    (bundle / "tiny_data-1.0-py3-none-any.whl").write_bytes(b"not the listed file")
    out = _fetch(tmp_path, f"tiny-data==1.0 --hash=sha256:{'1' * 64}\n", "http://127.0.0.1:9/simple", bundle)
    assert out.returncode == 1
    assert "the bundle's tiny_data-1.0-py3-none-any.whl has sha256" in out.stderr.splitlines()[-1]


def test_a_local_llama_sdist_must_be_the_locked_one(tmp_path):
    """LOGOS_LLAMA_SOURCE (an sdist on disk, for machines without network) is built only when its
    sha256 is the one requirements/lock.txt names for llama-cpp-python."""
    fake = tmp_path / "llama_cpp_python-0.3.36.tar.gz"
    fake.write_bytes(b"\x1f\x8b not the real sdist")
    digest = hashlib.sha256(fake.read_bytes()).hexdigest()
    out = run_setup("build-llama", env={"LOGOS_LLAMA_SOURCE": str(fake), "LOGOS_CACHE_DIR": str(tmp_path / "c"),
                                        "PIP_INDEX_URL": "http://127.0.0.1:9/simple"})
    assert out.returncode == 1
    assert last_line(out) == (f"[setup] cannot continue: LOGOS_LLAMA_SOURCE {fake} has sha256 {digest}, not the "
                              f"llama-cpp-python {_pins(LOCK)['llama-cpp-python'][0]} sdist of requirements/lock.txt")
    assert not (tmp_path / "c" / "wheels").exists()


# ---------------------------------------------------------------- the llama.cpp build tools (issue 18 item 9)
BUILD = ROOT / "requirements" / "build.txt"
# where this machine keeps PyPI's files offline (the local index of pip's configuration)
LOCAL_FILES = (Path("/opt/pypi/files"), Path("/opt/pypi-more/files"), Path("/opt/wheels"))


def _wheel_requires(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's METADATA."""
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def _local_wheel(name: str, version: str, sums: list[str]) -> Path | None:
    """This machine's offline copy of a pinned wheel, if it has one whose sha256 is pinned."""
    stem = name.replace("-", "_")
    for folder in LOCAL_FILES:
        for f in folder.glob(f"{stem}-{version}-*.whl") if folder.is_dir() else ():
            if hashlib.sha256(f.read_bytes()).hexdigest() in sums:
                return f
    return None


def test_build_tools_are_pinned_with_hashes_and_complete():
    """requirements/build.txt pins scikit-build-core (llama-cpp-python's build backend) and every
    package it needs on CPython 3.11, each with a sha256; shared pins equal lock.txt's; no PyPI
    cmake/ninja (the system's are used)."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.version import Version

    build = _pins(BUILD)
    unhashed = [name for name, (_, sums) in build.items() if not sums]
    assert not unhashed, f"build.txt: no --hash for {unhashed}"
    assert "scikit-build-core" in build
    assert Version(build["scikit-build-core"][0]) >= Version("0.9.2")  # the sdist's build-system requires
    assert not {"cmake", "ninja"} & set(build), "cmake and ninja come from the system (requirements/apt.txt)"
    lock = _pins(LOCK)
    for name, pin in build.items():
        if name in lock:
            assert lock[name] == pin, f"{name}: build.txt and lock.txt pin it differently"
    # the dependency closure, read from the pinned wheels themselves where this machine has them
    env = {**default_environment(), "python_version": "3.11", "python_full_version": "3.11.7",
           "sys_platform": "linux", "platform_machine": "x86_64", "extra": ""}
    seen = 0
    for name, (version, sums) in build.items():
        wheel = _local_wheel(name, version, sums)
        if wheel is None:
            continue
        seen += 1
        for spec in _wheel_requires(wheel):
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            dep = req.name.lower().replace("_", "-")
            assert dep in build, f"{name} {version} needs {spec!r}, which requirements/build.txt does not pin"
            assert req.specifier.contains(build[dep][0], prereleases=True), (spec, build[dep][0])
    if seen == 0:
        pytest.skip("no offline copy of the pinned build tools on this machine to read their requirements from")


def test_setup_builds_llama_without_build_isolation():
    """setup.sh's llama build installs requirements/build.txt with --require-hashes and runs pip
    wheel with --no-build-isolation (pip fetches no build tool of its own) and without pip's wheel
    cache (a wheel built for another backend must not come back)."""
    text = SETUP.read_text()
    body = re.search(r"^build_llama_wheel\(\) \{\n(.*?)^\}", text, re.S | re.M).group(1)
    wheel_cmd = re.search(r'-m pip wheel (.*?)>"\$CACHE/llama-build.log"', body, re.S).group(1)
    for flag in ("--no-build-isolation", "--check-build-dependencies", "--no-cache-dir", "--no-deps"):
        assert flag in wheel_cmd, flag
    assert body.index("install_build_tools") < body.index("-m pip wheel")
    tools = re.search(r"^install_build_tools\(\) \{\n(.*?)^\}", text, re.S | re.M).group(1)
    assert re.search(r'pip install .*--require-hashes .*-r "\$BUILD_REQS"', tools)
    assert 'BUILD_REQS="$ROOT/requirements/build.txt"' in text


def _build_tool_bundle(tmp_path: Path) -> tuple[Path, Path]:
    """A bundle whose wheelhouse holds this machine's offline copies of the pinned build tools, and a
    scratch venv that already has lock.txt's packaging (copied from .venv, installed there from the
    lock with its hash); skips where either is missing."""
    if not shutil.which("python3.11"):
        pytest.skip("no python3.11 to make the scratch environment with")
    build = _pins(BUILD)
    wheelhouse = tmp_path / "bundle" / "wheelhouse"
    wheelhouse.mkdir(parents=True)
    for name, (version, sums) in build.items():
        if name == "packaging":
            continue
        wheel = _local_wheel(name, version, sums)
        if wheel is None:
            pytest.skip(f"no offline copy of {name} {version} on this machine")
        shutil.copy(wheel, wheelhouse / wheel.name)
    venv = tmp_path / "venv"
    subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True, timeout=120)
    site = next(venv.glob("lib/python3.11/site-packages"))
    shared = next((ROOT / ".venv").glob("lib/python3.11/site-packages"), None)
    version = build["packaging"][0]
    if shared is None or not (shared / f"packaging-{version}.dist-info").is_dir():
        pytest.skip(f".venv has no packaging {version} to copy")
    shutil.copytree(shared / "packaging", site / "packaging")
    shutil.copytree(shared / f"packaging-{version}.dist-info", site / f"packaging-{version}.dist-info")
    return tmp_path / "bundle", venv


def _tiny_source(tmp_path: Path) -> Path:
    """A source folder built the way llama-cpp-python's sdist is (scikit-build-core + CMake), small."""
    src = tmp_path / "src"
    (src / "llama_cpp").mkdir(parents=True)
    (src / "llama_cpp" / "__init__.py").write_text('__version__ = "0.3.36"\n')
    (src / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.21)\n"
                                        "project(${SKBUILD_PROJECT_NAME} LANGUAGES NONE)\n")
    llama_version = _pins(LOCK)["llama-cpp-python"][0]
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["scikit-build-core>=0.9.2"]\nbuild-backend = "scikit_build_core.build"\n'
        f'[project]\nname = "llama_cpp_python"\nversion = "{llama_version}"\n'
        '[tool.scikit-build]\nwheel.packages = ["llama_cpp"]\nwheel.py-api = "py3"\n')
    return src


def _no_index_env(tmp_path: Path, venv: Path, src: Path) -> dict[str, str]:
    empty = tmp_path / "no-links"
    empty.mkdir(exist_ok=True)
    # no pip configuration (its local indexes and find-links), no index: only the bundle's wheelhouse
    return {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
            "PIP_FIND_LINKS": str(empty), "PIP_EXTRA_INDEX_URL": "", "LOGOS_VENV": str(venv),
            "LOGOS_CACHE_DIR": str(tmp_path / "cache"), "LOGOS_LLAMA_SOURCE": str(src)}


def test_build_llama_uses_only_the_pinned_build_tools(tmp_path):
    """The real `setup.sh build-llama` on a small scikit-build-core project, offline from a bundle
    whose wheelhouse has only build.txt's wheels: the tools are installed from there with their
    hashes and the build runs without an isolated environment (with one, pip would have to fetch
    scikit-build-core with no index and the build would fail)."""
    bundle, venv = _build_tool_bundle(tmp_path)
    src = _tiny_source(tmp_path)
    out = run_setup("build-llama", "--backend", "cpu", "--bundle", str(bundle), timeout=300,
                    env=_no_index_env(tmp_path, venv, src))
    log = tmp_path / "cache" / "llama-build.log"
    assert out.returncode == 0, out.stderr + (log.read_text()[-3000:] if log.exists() else "")
    version = _pins(BUILD)["scikit-build-core"][0]
    text = log.read_text()
    assert f"scikit-build-core {version} using CMake" in text, text[-2000:]
    assert "Installing build dependencies" not in text  # no isolated build environment
    wheels = list((tmp_path / "cache" / "wheels").glob("llama-cpp-python-*-cpu/llama_cpp_python-*.whl"))
    assert len(wheels) == 1, out.stderr
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    installed = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
                 for line in freeze.stdout.splitlines() if "==" in line}
    for name, (pinned, _) in _pins(BUILD).items():
        assert installed.get(name) == pinned, (name, installed)


def test_build_tool_without_hash_is_refused(tmp_path):
    """A build.txt line without its sha256 stops the build before anything is built."""
    root = tmp_path / "root"
    (root / "installer").mkdir(parents=True)
    shutil.copy(SETUP, root / "installer" / "setup.sh")
    shutil.copytree(ROOT / "requirements", root / "requirements")
    lines = (root / "requirements" / "build.txt").read_text().splitlines()
    lines = [re.sub(r" --hash=sha256:\S+", "", ln) if ln.startswith("pathspec==") else ln for ln in lines]
    (root / "requirements" / "build.txt").write_text("\n".join(lines) + "\n")
    bundle, venv = _build_tool_bundle(tmp_path)
    src = _tiny_source(tmp_path)
    out = subprocess.run(["bash", str(root / "installer" / "setup.sh"), "build-llama", "--backend", "cpu",
                          "--bundle", str(bundle)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, **_no_index_env(tmp_path, venv, src)}, cwd=root)
    assert out.returncode == 1, out.stderr
    assert "Hashes are required in --require-hashes mode" in out.stderr, out.stderr[-2000:]
    assert last_line(out).startswith("[setup] cannot continue: pip could not install the build tools")
    assert not (tmp_path / "cache" / "wheels").exists() or not list((tmp_path / "cache" / "wheels").rglob("*.whl"))
