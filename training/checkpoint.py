"""Checkpoint directories (litgpt style): weights, tokenizer, config and trainer state together.

``step-000100/`` holds ``model.safetensors`` + ``config.json`` (or a LoRA adapter), the tokenizer
files, ``train_config.yaml`` and ``trainer_state.pt`` (optimizer, step, RNG). A checkpoint is
written to ``<name>.tmp`` and renamed, so a crash never leaves a half-written one under the real
name; :func:`is_complete` refuses directories missing a part.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

STATE = "trainer_state.pt"
CONFIG = "train_config.yaml"
_STEP = re.compile(r"^step-(\d+)$")


class NoDiskSpace(OSError):
    """Not enough free space to write a checkpoint."""

    def __init__(self, path: Path, needed: int, free: int):
        self.path, self.needed, self.free = Path(path), needed, free
        super().__init__(errno.ENOSPC,
                         f"{path}: not enough disk space for a checkpoint: needs about "
                         f"{needed / 1e6:.1f} MB, {free / 1e6:.1f} MB free. Free some space or "
                         "choose another --out directory; training was stopped, earlier checkpoints are kept.")


def free_bytes(path: Path) -> int:
    path = Path(path)
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def estimate_bytes(model, optimizer=None) -> int:
    """Rough size of one checkpoint: trainable weights x (1 + optimizer moments) + frozen weights."""
    total = 0
    for p in model.parameters():
        n = p.numel() * p.element_size()
        total += n * (3 if (optimizer is not None and p.requires_grad) else 1)
    return total + 5_000_000  # tokenizer, config, slack


def ensure_space(path: Path, needed: int) -> None:
    free = free_bytes(path)
    if free < needed:
        raise NoDiskSpace(path, needed, free)


def is_complete(folder: Path) -> bool:
    folder = Path(folder)
    has_weights = any((folder / n).is_file() for n in
                      ("model.safetensors", "adapter_model.safetensors", "model.safetensors.index.json"))
    return folder.is_dir() and has_weights and (folder / STATE).is_file() and (folder / CONFIG).is_file()


def list_checkpoints(out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out_dir.iterdir() if (m := _STEP.match(p.name)) and is_complete(p)]
    return [p for _, p in sorted(found)]


def latest(out_dir: Path) -> Path | None:
    cps = list_checkpoints(out_dir)
    return cps[-1] if cps else None


def save(out_dir: Path, name: str, model, tokenizer, config, state: dict, optimizer=None,
         keep: int | None = None) -> Path:
    """Write a checkpoint directory atomically; prune older ``step-*`` ones beyond ``keep``."""
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ensure_space(out_dir, estimate_bytes(model, optimizer))
    final = out_dir / name
    tmp = out_dir / (name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        config.save(tmp / CONFIG)
        payload = dict(state)
        if optimizer is not None:
            payload["optimizer"] = optimizer.state_dict()
        torch.save(payload, tmp / STATE)
        (tmp / "metrics.json").write_text(json.dumps(state.get("metrics", {}), indent=1))
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == errno.ENOSPC:
            raise NoDiskSpace(out_dir, estimate_bytes(model, optimizer), free_bytes(out_dir)) from exc
        raise
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    if keep:
        for old in list_checkpoints(out_dir)[:-keep]:
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
    return final


def load_state(folder: Path) -> dict:
    import torch

    # step counters, history and the optimizer state: plain types and tensors, no pickle needed
    return torch.load(Path(folder) / STATE, map_location="cpu", weights_only=True)


def load_weights(model, folder: Path) -> None:
    """Load a checkpoint's weights into an already built model (full or LoRA)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if (folder / "adapter_model.safetensors").is_file():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
        return
    state = load_file(str(folder / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # tied output weights are not stored twice
    missing = [m for m in missing if not m.endswith("lm_head.weight")]
    if missing or unexpected:
        raise ValueError(f"{folder}: checkpoint does not fit the model (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
