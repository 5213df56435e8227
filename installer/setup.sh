#!/usr/bin/env bash
# LOGOS Desktop set-up: installs whatever is missing, then runs what was asked.
#
#   bash installer/setup.sh app  [-- ARGS]   set up, then start the GUI (on the demonstration model)
#   bash installer/setup.sh test [-- ARGS]   set up, then run the test suite under Xvfb
#   bash installer/setup.sh setup            set up only
#   bash installer/setup.sh doctor           set up, then print `logos doctor`
#   bash installer/setup.sh check            only check the prerequisites, change nothing
#   bash installer/setup.sh build-llama      only build the llama-cpp-python wheel into the cache
#   bash installer/setup.sh uninstall-desktop  remove the menu entry and file types that setup/app install
#
# Options (before the action or after it):
#   --bundle DIR   install from an offline bundle made by installer/bundle (no network used)
#   --backend B    force the llama.cpp build: cpu, cuda or metal (default: detected)
#   --force        redo every step even if the stamp says it is done
#
# Environment: LOGOS_CACHE_DIR (built wheels, data; default ~/.cache/logos-desktop),
#              LOGOS_BUNDLE (same as --bundle), PYTHON (interpreter to make the venv with),
#              LOGOS_CUDA_ARCHITECTURES (CUDA build: GPU architectures, default "native"),
#              LOGOS_LLAMA_SOURCE (a local llama-cpp-python sdist to build instead of PyPI's),
#              LOGOS_LLAMA_CMAKE_EXTRA (more CMake options for the llama.cpp build),
#              LOGOS_VENV (the virtual environment to set up; default .venv in the checkout).
#
# Supply chain: every package is installed with `pip install --require-hashes` from the sha256 sums
# in requirements/lock.txt (pip, setuptools and wheel first, pinned the same way; installer/lock-hashes
# writes the sums); llama-cpp-python is built from its sdist, checked against the lock's sum, with
# --no-build-isolation by the build tools of requirements/build.txt (scikit-build-core and its
# dependencies, installed into the venv with --require-hashes first), so that pip fetches no unpinned
# build tool; cmake and ninja are the system's (requirements/apt.txt), not PyPI's wheels; data
# packages (requirements/data.txt) are downloaded as files, checked against their sums and never built
# or installed; an offline bundle's files are checked against its SHA256SUMS before anything is used.
#
# A set-up step that cannot proceed stops with one line naming what is missing and what provides it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${LOGOS_VENV:-$ROOT/.venv}"
LOCK="$ROOT/requirements/lock.txt"
BUILD_REQS="$ROOT/requirements/build.txt"
DATA_LIST="$ROOT/requirements/data.txt"
APT_LIST="$ROOT/requirements/apt.txt"
CACHE="${LOGOS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/logos-desktop}"
BUNDLE="${LOGOS_BUNDLE:-}"
BACKEND=""
FORCE=0
ACTION=""
PASS=()
SETUP_VERSION=5   # bump when this script's steps change, so the stamp is redone

say()  { printf '[setup] %s\n' "$*" >&2; }
die()  { printf '[setup] cannot continue: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    app|test|setup|doctor|check|build-llama|uninstall-desktop) ACTION="$1" ;;
    --bundle) BUNDLE="${2:?--bundle needs a folder}"; shift ;;
    --bundle=*) BUNDLE="${1#*=}" ;;
    --backend) BACKEND="${2:?--backend needs cpu, cuda or metal}"; shift ;;
    --backend=*) BACKEND="${1#*=}" ;;
    --force) FORCE=1 ;;
    --) shift; PASS=("$@"); break ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) PASS+=("$1") ;;
  esac
  shift
done
ACTION="${ACTION:-setup}"
if [ -n "$BUNDLE" ]; then
  [ -d "$BUNDLE" ] || die "offline bundle folder not found: $BUNDLE (make one with installer/bundle)"
  BUNDLE="$(cd "$BUNDLE" && pwd)"
fi

# ---------------------------------------------------------------- backend detection
detect_backend() {
  if [ -n "$BACKEND" ]; then BACKEND_WHY="asked for with --backend"; return; fi
  local gpu=""
  if command -v nvidia-smi >/dev/null 2>&1; then gpu="$(nvidia-smi -L 2>/dev/null | head -n1 || true)"; fi
  if [ -n "$gpu" ] && command -v nvcc >/dev/null 2>&1; then
    BACKEND=cuda; BACKEND_WHY="NVIDIA GPU found by nvidia-smi ($gpu) and CUDA compiler $(command -v nvcc)"
  elif [ -n "$gpu" ]; then
    BACKEND=cpu
    BACKEND_WHY="NVIDIA GPU found ($gpu) but no CUDA compiler (nvcc): building for the CPU; install the CUDA toolkit (Debian package nvidia-cuda-toolkit) and re-run with --force for a CUDA build"
  elif command -v nvcc >/dev/null 2>&1; then
    BACKEND=cpu; BACKEND_WHY="CUDA compiler found ($(command -v nvcc)) but no NVIDIA GPU answers nvidia-smi"
  elif [ "$(uname -s)" = Darwin ] && [ "$(uname -m)" = arm64 ]; then
    BACKEND=metal; BACKEND_WHY="Apple silicon ($(uname -m) macOS)"
  else
    BACKEND=cpu; BACKEND_WHY="no NVIDIA GPU (nvidia-smi) or CUDA compiler (nvcc), not Apple silicon"
  fi
}
detect_backend
case "$BACKEND" in cpu|cuda|metal) ;; *) die "unknown --backend '$BACKEND' (use cpu, cuda or metal)";; esac

LLAMA_VERSION="$(sed -n 's/^llama-cpp-python==\([^ ;]*\).*/\1/p' "$LOCK")"
[ -n "$LLAMA_VERSION" ] || die "requirements/lock.txt names no llama-cpp-python version"
WHEEL_DIR="$CACHE/wheels/llama-cpp-python-$LLAMA_VERSION-$BACKEND"
# LLAVA_BUILD=OFF: the multimodal library is not used, and it is a third of the build time.
case "$BACKEND" in
  cpu)   LLAMA_CMAKE="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF" ;;
  cuda)  LLAMA_CMAKE="-DGGML_NATIVE=OFF -DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=${LOGOS_CUDA_ARCHITECTURES:-native} -DLLAVA_BUILD=OFF" ;;
  metal) LLAMA_CMAKE="-DGGML_METAL=on -DLLAVA_BUILD=OFF" ;;
esac
LLAMA_CMAKE="$LLAMA_CMAKE${LOGOS_LLAMA_CMAKE_EXTRA:+ $LOGOS_LLAMA_CMAKE_EXTRA}"

# ---------------------------------------------------------------- the stamp (fast path)
stamp_key() {
  { cat "$LOCK" "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/engine/runtime/_stepper.c" "$DATA_LIST" "$APT_LIST" 2>/dev/null
    echo "setup=$SETUP_VERSION backend=$BACKEND cmake=$LLAMA_CMAKE"; } | sha256sum | cut -c1-16
}
STAMP="$VENV/.logos-setup-stamp"
KEY="$(stamp_key)"

apt_missing() {
  local pkgs=() p
  command -v dpkg-query >/dev/null 2>&1 || return 0
  while read -r p _; do
    case "$p" in ''|'#'*) continue ;; esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || pkgs+=("$p")
  done < "$APT_LIST"
  printf '%s\n' "${pkgs[@]+"${pkgs[@]}"}"
}

setup_done() {
  [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ] \
    && [ -x "$VENV/bin/python" ] && [ -z "$(apt_missing)" ]
}

# ---------------------------------------------------------------- steps
check_disk() {
  local need_gb=${LOGOS_SETUP_MIN_DISK_GB:-$1} dir=$2 free_kb
  mkdir -p "$dir"
  free_kb=$(df -Pk "$dir" | awk 'NR==2 {print $4}')
  if [ "${free_kb:-0}" -lt $((need_gb * 1024 * 1024)) ]; then
    die "no disk space: $((free_kb / 1024)) MB free in $dir, set-up needs ${need_gb} GB (free some space)"
  fi
}

install_apt() {
  local missing
  missing="$(apt_missing | tr '\n' ' ' | sed 's/ *$//')"
  [ -z "$missing" ] && return 0
  if [ "$(uname -s)" != Linux ] || ! command -v apt-get >/dev/null 2>&1; then
    say "not a Debian/Ubuntu system: install the equivalents of: $missing"; return 0
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "missing Debian packages ($missing) and no root: run as root or install sudo (package sudo)"
    sudo="sudo"
  fi
  if [ -n "$BUNDLE" ] && ls "$BUNDLE"/apt/*.deb >/dev/null 2>&1; then
    say "installing Debian packages from the bundle: $missing"
    $sudo dpkg -i "$BUNDLE"/apt/*.deb >/dev/null || die "dpkg could not install the bundle's .deb files ($missing)"
  else
    say "installing Debian packages: $missing"
    $sudo apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed: no network? Missing Debian packages: $missing (or pass --bundle DIR)"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null \
      || die "apt-get could not install: $missing"
  fi
}

find_python() {
  local c
  for c in "${PYTHON:-}" python3.12 python3.11 python3.13 python3; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || continue
    if "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      # torch 2.13.0 has a local CPU wheel for 3.11 only here; prefer the interpreter that matches
      if [ -z "${PYTHON:-}" ] && ls /opt/wheels/torch-2.13.0*cp311* >/dev/null 2>&1 && command -v python3.11 >/dev/null 2>&1; then
        echo python3.11; return
      fi
      echo "$c"; return
    fi
  done
  die "no Python 3.11 or newer found (install Debian package python3, version >= 3.11)"
}

make_venv() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    return 0
  fi
  local py; py="$(find_python)"
  say "creating the virtual environment $VENV with $py ($("$py" --version 2>&1))"
  rm -rf "$VENV"
  "$py" -m venv "$VENV" 2>/dev/null || die "$py cannot create a virtual environment: missing venv/ensurepip (Debian package python3-venv)"
}

pip_net_args() {
  if [ -n "$BUNDLE" ]; then
    printf -- '--no-index\n--find-links\n%s\n' "$BUNDLE/wheelhouse"
  fi
}

check_network() {
  [ -n "$BUNDLE" ] && return 0
  local py="$VENV/bin/python"; [ -x "$py" ] || py="$(find_python)"
  "$py" - <<'PY' || die "no network and no offline bundle: connect to the network or pass --bundle DIR (made by installer/bundle on a connected machine)"
import os, subprocess, sys, urllib.request
url = "https://pypi.org/simple/pip/"
out = os.environ.get("PIP_INDEX_URL", "")
if not out:
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        out = ""
if out:
    url = out.rstrip("/") + "/pip/"
if url.startswith("file:"):
    sys.exit(0)
try:
    urllib.request.urlopen(url, timeout=15)
except Exception as exc:
    print(f"[setup] {url}: {exc}", file=sys.stderr)
    sys.exit(1)
PY
}

install_python_deps() {
  local args=(); mapfile -t args < <(pip_net_args)
  say "installing pinned Python packages (requirements/lock.txt, every file checked against its sha256)"
  # pip, setuptools, wheel (and wheel's packaging) first, pinned with their hashes like the rest
  grep -E '^(pip|setuptools|wheel|packaging)==' "$LOCK" > "$VENV/.lock-tools.txt"
  [ "$(wc -l < "$VENV/.lock-tools.txt")" -eq 4 ] || die "requirements/lock.txt must pin pip, setuptools, wheel and packaging"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes "${args[@]+"${args[@]}"}" -r "$VENV/.lock-tools.txt" >/dev/null \
    || die "pip could not install its pinned tools (pip, setuptools, wheel) with the hashes of requirements/lock.txt (see the messages above)"
  grep -v '^llama-cpp-python==' "$LOCK" > "$VENV/.lock-no-llama.txt"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes "${args[@]+"${args[@]}"}" -r "$VENV/.lock-no-llama.txt" \
    || die "pip could not install requirements/lock.txt with its hashes (see the messages above)"
  # setuptools warns about editable installs on stderr; keep its output for when it fails
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT" \
    >"$VENV/.pip-self.log" 2>&1 \
    || { cat "$VENV/.pip-self.log" >&2; die "pip could not install LOGOS Desktop itself (pyproject.toml)"; }
  # the compiled sampler is optional (setup.py): say so when it could not be built
  local sampler
  sampler="$("$VENV/bin/python" -c 'from engine.runtime.draw import stepper_available, sampler_report as r; import sys; print(r()); sys.exit(0 if stepper_available() else 1)' 2>&1)" \
    || say "warning: $(printf '%s\n' "$sampler" | tail -n1); install a C compiler and Python's headers (Debian packages gcc, python3-dev) and re-run with --force"
}

install_build_tools() {
  # The tools that build llama-cpp-python (requirements/build.txt: scikit-build-core and its
  # dependencies), into the interpreter $1 with their sha256 checked; the build then runs with
  # --no-build-isolation, so pip downloads no build tool of its own choosing.
  local py="$1" args=(); mapfile -t args < <(pip_net_args)
  [ -f "$BUILD_REQS" ] || die "requirements/build.txt is missing: it pins the tools that build llama-cpp-python"
  say "llama.cpp: installing the pinned build tools (requirements/build.txt, every file checked against its sha256)"
  "$py" -m pip install -q --disable-pip-version-check --require-hashes "${args[@]+"${args[@]}"}" -r "$BUILD_REQS" \
    || die "pip could not install the build tools of requirements/build.txt with their hashes (see the messages above)"
}

build_llama_wheel() {
  # Build the llama-cpp-python wheel for $BACKEND into $WHEEL_DIR with interpreter $1.
  local py="$1" src=() extra=()
  command -v cmake >/dev/null 2>&1 || die "cmake not found: it is needed to build llama.cpp (Debian package cmake)"
  command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || die "no C++ compiler: it is needed to build llama.cpp (Debian package g++)"
  check_disk 3 "$CACHE"
  mkdir -p "$CACHE"
  if [ -n "${LOGOS_LLAMA_SOURCE:-}" ]; then
    # a local source with no network (the build tools come from the venv or the bundle); an sdist
    # file must be the one the lock names (a source folder is the user's own, taken as it is)
    if [ -f "$LOGOS_LLAMA_SOURCE" ]; then
      local sum; sum="$(sha256sum "$LOGOS_LLAMA_SOURCE" | cut -d' ' -f1)"
      grep '^llama-cpp-python==' "$LOCK" | grep -q -- "--hash=sha256:$sum" \
        || die "LOGOS_LLAMA_SOURCE $LOGOS_LLAMA_SOURCE has sha256 $sum, not the llama-cpp-python $LLAMA_VERSION sdist of requirements/lock.txt"
    else
      say "llama.cpp: building from the folder $LOGOS_LLAMA_SOURCE (a folder has no checksum to check)"
    fi
    src=("$LOGOS_LLAMA_SOURCE"); extra=(--no-index)
  else
    # the sdist from the index (or the bundle's wheelhouse), checked against the lock's sha256
    grep '^llama-cpp-python==' "$LOCK" > "$CACHE/llama-requirement.txt"
    src=(--require-hashes -r "$CACHE/llama-requirement.txt")
    mapfile -t extra < <(pip_net_args)
  fi
  install_build_tools "$py"
  say "llama.cpp: building llama-cpp-python $LLAMA_VERSION for $BACKEND ($BACKEND_WHY) with CMAKE_ARGS='$LLAMA_CMAKE'"
  say "llama.cpp: this takes 10 to 40 minutes on 2 cores; the wheel is kept in $WHEEL_DIR"
  rm -rf "$WHEEL_DIR.tmp"; mkdir -p "$WHEEL_DIR.tmp"
  local t0; t0=$(date +%s)
  CMAKE_ARGS="$LLAMA_CMAKE" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 2)" \
    "$py" -m pip wheel -v --no-cache-dir --no-deps --no-binary llama-cpp-python --no-build-isolation --check-build-dependencies \
    "${extra[@]+"${extra[@]}"}" \
    -w "$WHEEL_DIR.tmp" "${src[@]}" >"$CACHE/llama-build.log" 2>&1 \
    || die "building llama-cpp-python failed (log: $CACHE/llama-build.log)"
  rm -rf "$WHEEL_DIR"; mv "$WHEEL_DIR.tmp" "$WHEEL_DIR"
  echo "$BACKEND: $BACKEND_WHY; CMAKE_ARGS=$LLAMA_CMAKE" > "$WHEEL_DIR/BACKEND"
  say "llama.cpp: built the $BACKEND wheel in $(( $(date +%s) - t0 )) s: $(ls "$WHEEL_DIR"/*.whl)"
}

install_llama() {
  local have
  have="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null || true)"
  local wheel=""
  if [ -n "$BUNDLE" ]; then
    wheel="$(ls "$BUNDLE"/llama/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
    [ -n "$wheel" ] || die "the bundle has no llama-cpp-python $LLAMA_VERSION wheel in $BUNDLE/llama"
    say "llama.cpp: installing the bundle's build $(basename "$wheel") (bundle made on $(cat "$BUNDLE/llama/BACKEND" 2>/dev/null || echo '?'))"
  else
    wheel="$(ls "$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
    if [ -z "$wheel" ]; then
      build_llama_wheel "$VENV/bin/python"
      wheel="$(ls "$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -n1)"
    else
      say "llama.cpp: using the cached $BACKEND build ($BACKEND_WHY): $wheel"
    fi
  fi
  if [ "$have" != "$LLAMA_VERSION" ] || [ "$FORCE" = 1 ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$wheel" >/dev/null \
      || die "pip could not install $wheel"
  fi
  echo "$BACKEND" > "$VENV/.llama-backend"
}

fetch_data() {
  # Real public data shipped inside registry packages (requirements/data.txt), kept unpacked-free
  # in the cache as the registry's own files; engine.datasets reads members out of them. Each file
  # is checked against its sha256 in data.txt and never built or installed (installer/fetch_data.py).
  [ -f "$DATA_LIST" ] || return 0
  "$VENV/bin/python" "$ROOT/installer/fetch_data.py" "$DATA_LIST" "$CACHE/data" "${BUNDLE:+$BUNDLE/data}" || exit 1
}

verify_bundle() {
  # Every file set-up may install or copy from the bundle (wheelhouse/, llama/, data/, apt/) must be
  # listed in its SHA256SUMS (written by installer/bundle) with the same sha256, before any is used.
  local sums="$BUNDLE/SHA256SUMS" f want got
  [ -f "$sums" ] || die "the offline bundle $BUNDLE has no SHA256SUMS file: refusing to install from it (make the bundle with installer/bundle)"
  while IFS= read -r -d '' f; do
    f="${f#"$BUNDLE"/}"
    want="$(awk -v f="$f" '{ n = $0; sub(/^[0-9a-fA-F]+ [ *]/, "", n); if (n == f) { print $1; exit } }' "$sums")"
    [ -n "$want" ] || die "bundle file $f is not listed in the bundle's SHA256SUMS: refusing to install from the bundle"
    got="$(sha256sum "$BUNDLE/$f" | cut -d' ' -f1)"
    [ "$got" = "$want" ] || die "bundle file $f fails its SHA256SUMS check (sha256 $got, listed $want): refusing to install from the bundle"
  done < <(find "$BUNDLE/wheelhouse" "$BUNDLE/llama" "$BUNDLE/data" "$BUNDLE/apt" -type f -print0 2>/dev/null)
}

needs_llama_build() {
  [ -z "$BUNDLE" ] && ! ls "$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1
}

preflight() {
  # Everything that can stop set-up, checked before anything is changed.
  [ -x "$VENV/bin/python" ] || find_python >/dev/null
  check_disk 6 "$ROOT"
  local missing; missing="$(apt_missing | tr '\n' ' ' | sed 's/ *$//')"
  if [ -n "$missing" ] && [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then
    die "missing Debian packages ($missing) and no root: run as root or install sudo (package sudo)"
  fi
  check_network
  [ -z "$BUNDLE" ] || verify_bundle
  if needs_llama_build && ! { [ -n "$missing" ] && echo " $missing " | grep -q ' cmake '; }; then
    command -v cmake >/dev/null 2>&1 || die "cmake not found: it is needed to build llama.cpp (Debian package cmake)"
  fi
  if needs_llama_build && ! { [ -n "$missing" ] && echo " $missing " | grep -q ' g++ '; }; then
    command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 \
      || die "no C++ compiler: it is needed to build llama.cpp (Debian package g++)"
  fi
  [ -z "$missing" ] || say "missing Debian packages, to be installed: $missing"
}

do_setup() {
  if setup_done; then
    return 0
  fi
  say "setting up LOGOS Desktop in $ROOT (llama.cpp backend: $BACKEND, because: $BACKEND_WHY)"
  preflight
  install_apt
  make_venv
  install_python_deps
  install_llama
  fetch_data
  echo "$KEY" > "$STAMP"
  say "set-up complete; $("$VENV/bin/python" -c 'from engine.runtime.backend import backend_info; print(backend_info().summary())')"
}

# ---------------------------------------------------------------- actions
if [ "$ACTION" = build-llama ]; then
  # the build tools go into the venv (made if missing), never into the system's Python
  make_venv
  build_llama_wheel "$VENV/bin/python"
  exit 0
fi
if [ "$ACTION" = check ]; then
  preflight
  say "all prerequisites are present (llama.cpp backend: $BACKEND, because: $BACKEND_WHY)"
  exit 0
fi
[ "$ACTION" = uninstall-desktop ] && exec bash "$ROOT/installer/desktop.sh" uninstall
do_setup
case "$ACTION" in setup|app) bash "$ROOT/installer/desktop.sh" install || say "warning: menu entry and file types not installed (installer/desktop.sh)" ;; esac
export LOGOS_CACHE_DIR="$CACHE"
case "$ACTION" in
  setup) ;;
  doctor) exec "$VENV/bin/logos" doctor "${PASS[@]+"${PASS[@]}"}" ;;
  app)
    if ! "$VENV/bin/python" -c 'from engine import paths; import sys; sys.exit(0 if paths.bundled_models() else 1)'; then
      say "the demonstration model is not bundled yet (resources/models/*.gguf): starting without a model"
    fi
    if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ "$(uname -s)" = Linux ]; then
      say "no display (DISPLAY is unset): starting the window on a virtual screen (Xvfb)"
      exec xvfb-run -a -s "-screen 0 1600x1000x24" "$VENV/bin/logos-desktop" "${PASS[@]+"${PASS[@]}"}"
    fi
    exec "$VENV/bin/logos-desktop" "${PASS[@]+"${PASS[@]}"}"
    ;;
  test)
    command -v xvfb-run >/dev/null 2>&1 || die "xvfb-run not found (Debian package xvfb)"
    export QT_QPA_PLATFORM=xcb LIBGL_ALWAYS_SOFTWARE=1 PYTHONFAULTHANDLER=1
    set +e
    xvfb-run -a -s "-screen 0 1600x1000x24 -nolisten tcp" "$VENV/bin/python" -m pytest "${PASS[@]+"${PASS[@]}"}"
    rc=$?
    set -e
    if [ "$rc" = 5 ]; then say "pytest collected no tests: that is a failure"; exit 1; fi
    exit "$rc"
    ;;
esac
