"""The Hugging Face side of the parity check, run in a child Python process.

The engine never imports torch (import-linter enforces it, and the engine process must stay
light), so the reference forward pass runs as ``python -m engine.models.hf_reference_child`` with
the same interpreter: it reads a JSON request on stdin, tokenises every text with the checkpoint's
own tokenizer (transformers), runs the model in float32 on the token ids (truncated to
``max_tokens``), writes ``logits_<i>.npy`` into ``out_dir`` and prints ``{"ids": [...]}`` on
stdout. It loads local files only (no Hub lookup) and weights from safetensors only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from engine.modelfiles.errors import ModelFileError

CHILD_MODULE = "engine.models.hf_reference_child"  # a real module (seen by the safe-loading scan)


def run_reference(hf_dir: str | Path, texts: list[str], out_dir: str | Path, *, max_tokens: int = 256,
                  logits: bool = True, threads: int = 2, timeout: float | None = None) -> list[list[int]]:
    """Token ids of ``texts`` by the HF tokenizer; with ``logits``, ``out_dir/logits_<i>.npy`` too."""
    req = {"hf_dir": str(hf_dir), "texts": list(texts), "out_dir": str(out_dir), "max_tokens": int(max_tokens),
           "logits": bool(logits), "threads": int(threads)}
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS=str(int(threads)), MKL_NUM_THREADS=str(int(threads)))
    root = str(Path(__file__).resolve().parents[2])  # the engine package importable in the child
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, "-m", CHILD_MODULE], input=json.dumps(req), capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
        raise ModelFileError(hf_dir, f"the Hugging Face reference could not run: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["ids"]


def load_logits(out_dir: str | Path, i: int) -> np.ndarray:
    return np.load(Path(out_dir) / f"logits_{i}.npy")
