"""``logos doctor``: what this installation is made of, and whether it can run a model."""

from __future__ import annotations

import json
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

CORE_PACKAGES = [
    "llama-cpp-python", "gguf", "rdkit", "gemmi", "biopython", "pymatgen", "biotite",
    "sqlalchemy", "alembic", "numpy", "platformdirs", "torch", "transformers", "tokenizers",
    "safetensors", "peft", "PySide6-Essentials", "vtk", "pyqtgraph",
]


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in CORE_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def collect() -> dict:
    from engine import __version__, paths
    from engine.runtime.backend import backend_info

    bundled = paths.bundled_models()
    info = backend_info().as_dict()
    if info.get("available"):
        from engine.runtime import backend_sampling

        info["backend_sampling"] = backend_sampling.report()
    return {
        "logos": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "llama_cpp": info,
        "data_dir": str(paths.data_dir()),
        "demo_model": [str(p) for p in bundled],
    }


def run(args) -> int:
    report = collect()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"LOGOS Desktop {report['logos']}")
    print(f"Python        {report['python']} ({report['platform']})")
    print("Packages:")
    for name, ver in report["packages"].items():
        print(f"  {name:<20} {ver or 'NOT INSTALLED'}")
    ll = report["llama_cpp"]
    if ll["available"]:
        gpu = "a GPU is visible" if ll["gpu_visible"] else "no GPU visible"
        print(f"llama.cpp     {ll['version']}: {ll['backend']} build, GPU offload "
              f"{'supported' if ll['gpu_offload'] else 'not supported'}, {gpu}")
        for dev in ll["devices"]:
            print(f"  device      {dev}")
        print(f"Sampler       {ll.get('sampler') or '?'}")
        if ll.get("backend_sampling"):
            print(f"On-device     {ll['backend_sampling']}")
    else:
        print(f"llama.cpp     NOT AVAILABLE: {ll['error']}")
    print(f"Data dir      {report['data_dir']}")
    if report["demo_model"]:
        print(f"Demo model    present: {', '.join(report['demo_model'])}")
    else:
        print("Demo model    missing (resources/models/*.gguf)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("doctor", help="print versions, the llama.cpp build and the data directory")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=run)
