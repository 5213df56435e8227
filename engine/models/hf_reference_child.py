"""The Hugging Face side of the parity check, as a program run in a child process:
``python -m engine.models.hf_reference_child`` (see :func:`engine.models.hf_reference.run_reference`).

It reads a JSON request on stdin (``hf_dir``, ``texts``, ``out_dir``, ``max_tokens``, ``logits``),
tokenises every text with the checkpoint's own tokenizer, runs the model in float32 on the token
ids (truncated to ``max_tokens``), writes ``logits_<i>.npy`` into ``out_dir`` and prints
``{"ids": [...]}`` on stdout.

Loading is local and safe: ``local_files_only=True`` (a path that does not exist is an error, never
a Hub lookup), weights from safetensors only (``use_safetensors=True``: a folder with only
``pytorch_model.bin``, a pickle, is refused), no remote code. This module imports transformers,
never torch itself (the engine stays torch-free; the thread count comes from ``OMP_NUM_THREADS``,
set by the parent).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def reference(req: dict) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf_dir = str(req["hf_dir"])
    tok = AutoTokenizer.from_pretrained(hf_dir, local_files_only=True, trust_remote_code=False)
    texts = [str(t) for t in req["texts"]]
    ids = [list(tok(text, add_special_tokens=True)["input_ids"]) for text in texts]
    if req.get("logits"):
        model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype="float32", local_files_only=True,
                                                     use_safetensors=True, trust_remote_code=False)
        model.eval()
        model.requires_grad_(False)
        n = int(req["max_tokens"])
        out_dir = Path(req["out_dir"])
        for i, text in enumerate(texts):
            batch = tok(text, add_special_tokens=True, return_tensors="pt")["input_ids"][:, :n]
            logits = model(input_ids=batch).logits[0].float().numpy()
            np.save(out_dir / f"logits_{i}.npy", logits.astype(np.float32))
    return {"ids": ids}


def main() -> int:
    req = json.load(sys.stdin)
    print(json.dumps(reference(req)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
