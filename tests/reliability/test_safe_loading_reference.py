"""The Hugging Face reference of the parity check is a real module (engine/models/hf_reference_child.py)
that the safe-loading scan sees, loading local files only and weights from safetensors only; and
the scan sees Python kept in a string (a script run with ``python -c``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.fixtures.required import require_module
from tests.reliability.safe_loading import ROOT, product_files, scan_source

SCRIPT_IN_A_STRING = textwrap.dedent('''
    import subprocess, sys
    SCRIPT = r"""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForCausalLM.from_pretrained(d)
    state = torch.load(p)
    """
    subprocess.run([sys.executable, "-c", SCRIPT])
''')


def test_the_scan_sees_python_in_a_string():
    findings = scan_source(SCRIPT_IN_A_STRING, "x.py")
    rules = sorted({f.rule for f in findings})
    assert rules == ["hub-lookup", "torch-load", "weights-format"], findings
    assert all("string" in f.text and f.line >= 3 for f in findings)


def test_reference_is_a_scanned_module_without_findings():
    child = ROOT / "engine" / "models" / "hf_reference_child.py"
    assert child in product_files()
    source = child.read_text()
    assert "local_files_only=True" in source and "use_safetensors=True" in source
    assert scan_source(source, "hf_reference_child.py") == []
    parent = (ROOT / "engine" / "models" / "hf_reference.py").read_text()
    assert '"-c"' not in parent and "from_pretrained" not in parent  # no script in a string left


def test_reference_refuses_pickle_weights_and_missing_folders(tiny_llama_hf, tmp_path):
    """A checkpoint whose weights are only a pickle (pytorch_model.bin) is refused, and a folder
    that does not exist is an error, not a Hub lookup."""
    torch = require_module("torch")
    from safetensors.torch import load_file

    from engine.modelfiles.errors import ModelFileError
    from engine.models.hf_reference import run_reference

    folder = tmp_path / "bin-only"
    folder.mkdir()
    state = {}
    for f in Path(tiny_llama_hf).iterdir():
        if f.suffix == ".safetensors":
            state.update(load_file(f))
        elif not f.name.endswith(".index.json"):
            (folder / f.name).write_bytes(f.read_bytes())
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ModelFileError, match="bin-only"):
        run_reference(folder, ["CCO"], tmp_path, max_tokens=8, threads=1, timeout=300)
    with pytest.raises(ModelFileError, match="no-such-model"):
        run_reference(tmp_path / "no-such-model", ["CCO"], tmp_path, logits=False, threads=1, timeout=300)
    ids = run_reference(tiny_llama_hf, ["CCO"], tmp_path, max_tokens=8, threads=1, timeout=300)
    assert len(ids) == 1 and ids[0] and (tmp_path / "logits_0.npy").is_file()
