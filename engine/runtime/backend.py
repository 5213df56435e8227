"""What the installed llama.cpp build can do: backend (CPU, CUDA, Metal) and visible GPUs."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass, field


@dataclass
class BackendInfo:
    available: bool  # llama_cpp imports
    version: str | None = None
    backend: str = "none"  # "CPU", "CUDA", "Metal", "Vulkan", ... or "none"
    gpu_offload: bool = False  # the build can put layers on a GPU
    gpu_visible: bool = False  # a GPU of that backend is present on this machine
    devices: list[str] = field(default_factory=list)
    system_info: str = ""
    error: str | None = None
    sampler: str = ""  # which implementation samples tokens (engine.runtime.draw.sampler_report)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if not self.available:
            return f"llama.cpp not available ({self.error})"
        gpu = "GPU visible" if self.gpu_visible else "no GPU visible"
        return f"llama.cpp {self.version} · {self.backend} build · {gpu} · sampler: {self.sampler}"


def _nvidia_gpus() -> list[str]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def _registered_devices(llama_cpp) -> list[tuple[str, str]]:
    """(name, description) of every ggml backend device that the build registered."""
    devices: list[tuple[str, str]] = []
    count_fn = getattr(llama_cpp, "ggml_backend_dev_count", None)
    get_fn = getattr(llama_cpp, "ggml_backend_dev_get", None)
    name_fn = getattr(llama_cpp, "ggml_backend_dev_name", None)
    desc_fn = getattr(llama_cpp, "ggml_backend_dev_description", None)
    if not (count_fn and get_fn and name_fn):
        return devices
    for i in range(int(count_fn())):
        dev = get_fn(i)
        name = name_fn(dev)
        desc = desc_fn(dev) if desc_fn else b""
        devices.append((name.decode() if isinstance(name, bytes) else str(name),
                        desc.decode() if isinstance(desc, bytes) else str(desc)))
    return devices


def backend_info() -> BackendInfo:
    try:
        import llama_cpp
    except Exception as exc:  # noqa: BLE001 - any import failure is reported, not raised
        return BackendInfo(available=False, error=f"{type(exc).__name__}: {exc}")
    from engine.runtime.native import _backend_init

    # Initialise the backend (and our log capture) before any other call into the library: on a
    # CUDA build, asking for system info first and initialising later crashed the next model load.
    _backend_init(llama_cpp)
    from engine.runtime.draw import sampler_report

    info = BackendInfo(available=True, version=getattr(llama_cpp, "__version__", "?"), sampler=sampler_report())
    try:
        info.system_info = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    except Exception:  # noqa: BLE001
        info.system_info = ""
    try:
        info.gpu_offload = bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:  # noqa: BLE001
        info.gpu_offload = False
    try:
        devices = _registered_devices(llama_cpp)
    except Exception:  # noqa: BLE001
        devices = []
    names = " ".join(n.upper() for n, _ in devices) + " " + info.system_info.upper()
    if "CUDA" in names:
        info.backend = "CUDA"
    elif "METAL" in names or "MTL" in names:
        info.backend = "Metal"
    elif "VULKAN" in names:
        info.backend = "Vulkan"
    else:
        info.backend = "CPU"
    gpu_devices = [f"{n}: {d}" for n, d in devices if not n.upper().startswith("CPU")]
    info.devices = gpu_devices
    if info.backend == "CUDA":
        info.gpu_visible = bool(gpu_devices) or bool(_nvidia_gpus())
    elif info.backend != "CPU":
        info.gpu_visible = bool(gpu_devices)
    return info
