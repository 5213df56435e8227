"""Export a trained checkpoint: merged weights -> GGUF (engine converter) -> quantised -> registered.

All GGUF work goes through ``engine.models`` (``convert.convert_hf_to_gguf``, ``quantize.quantize``,
``registry.Registry``). The registry entry gets a provenance file beside the manifest
(``<registry>/provenance/<id>.json``): base model hash, data hash, hyper-parameters, metrics.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path


def folder_hash(folder: Path) -> str:
    """SHA-256 over the weight files of a Hugging Face checkpoint (sorted by name)."""
    h = hashlib.sha256()
    for p in sorted(Path(folder).glob("*.safetensors")):
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def merge_lora(base_dir: Path, adapter_dir: Path, out_dir: Path) -> Path:
    """Fold a saved LoRA adapter into its base checkpoint and save a plain HF directory."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32, use_safetensors=True,
                                                local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(adapter_dir), local_files_only=True)
    if len(tok) > base.get_input_embeddings().weight.shape[0]:
        base.resize_token_embeddings(len(tok))
    model = PeftModel.from_pretrained(base, str(adapter_dir), local_files_only=True).merge_and_unload()
    out_dir = Path(out_dir)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tok.save_pretrained(str(out_dir))
    return out_dir


def export(hf_dir: Path, out_path: Path, quant: str = "Q8_0", provenance: dict | None = None,
           register: bool = True, name: str | None = None, log=print) -> Path:
    """``hf_dir`` (merged weights) -> ``out_path`` GGUF at ``quant``; optionally registered."""
    from engine.models.convert import convert_hf_to_gguf
    from engine.models.quantize import quantize

    hf_dir, out_path = Path(hf_dir), Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    quant = quant.upper()
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".export-") as tmp:
        outtype = "f32" if quant in ("F32", "Q8_0") else "f16"
        if quant in ("F16", "BF16", "F32"):
            outtype = quant.lower()
        f_path = Path(tmp) / f"model-{outtype}.gguf"
        res = convert_hf_to_gguf(hf_dir, f_path, outtype=outtype)
        for w in res.warnings:
            log(f"convert: {w}")
        if quant.lower() == outtype:
            shutil.move(str(f_path), out_path)
        else:
            quantize(f_path, out_path, quant)
    log(f"exported {out_path} ({out_path.stat().st_size / 1e6:.1f} MB, {quant})")
    prov = dict(provenance or {})
    prov.setdefault("hf_weights_sha256", folder_hash(hf_dir))
    prov["quant"] = quant
    if register:
        register_model(out_path, prov, name=name)
    return out_path


def register_model(gguf: Path, provenance: dict, name: str | None = None):
    from engine.models.registry import Registry

    reg = Registry()
    entry = reg.import_file(gguf, copy=True, name=name)
    folder = Path(reg.root) / "provenance"
    folder.mkdir(parents=True, exist_ok=True)
    record = {"id": entry.id, "sha256": entry.sha256, **provenance}
    tmp = folder / f".{entry.id}.json.tmp"
    tmp.write_text(json.dumps(record, indent=1, default=str))
    tmp.replace(folder / f"{entry.id}.json")
    return entry


def provenance_of(entry_id: str) -> dict | None:
    from engine.models.registry import Registry

    p = Path(Registry().root) / "provenance" / f"{entry_id}.json"
    return json.loads(p.read_text()) if p.is_file() else None
