"""The pre-tokenizer is recognised the way llama.cpp's converter does it (the token ids of its check
text, else the exact regex) and written as llama.cpp's name; a plain GPT-2 byte-level tokenizer (the
``tokenizers`` ByteLevel pre-tokenizer) is "gpt-2"; anything else is refused with the list known.
Tiny Llama and Qwen3 checkpoints with a GPT-2 tokenizer convert to Q8_0 and Q4_K_M and tokenise
exactly like transformers (token parity 1.0)."""

from __future__ import annotations

import json
import shutil

import pytest

from engine.models import hf_tokenizer
from engine.modelfiles.errors import TokenizerMappingError
from engine.models.hf_tokenizer import map_tokenizer
from tests.fixtures.required import require_module
from tests.engine.models.gpt2_tiny import build_gpt2_tokenizer_model


@pytest.fixture(scope="module")
def gpt2_hf(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpt2-tok")
    return {arch: build_gpt2_tokenizer_model(root / arch, arch) for arch in ("llama", "qwen3")}


def _edit(folder, tmp_path, fn):
    dst = tmp_path / "edited"
    shutil.copytree(folder, dst)
    tj = dst / "tokenizer.json"
    data = json.loads(tj.read_text())
    fn(data)
    tj.write_text(json.dumps(data))
    return dst


def test_gpt2_byte_level_is_gpt2(gpt2_hf):
    for folder in gpt2_hf.values():
        cfg = json.loads((folder / "config.json").read_text())
        vocab = map_tokenizer(folder, cfg["vocab_size"], cfg)
        assert vocab.pre == "gpt-2" and vocab.add_bos is False and not vocab.warnings


def test_llama_and_qwen_regexes_still_known(tiny_llama_hf, tiny_qwen3_hf):
    for folder, name in ((tiny_llama_hf, "llama-bpe"), (tiny_qwen3_hf, "qwen2")):
        cfg = json.loads((folder / "config.json").read_text())
        assert map_tokenizer(folder, cfg["vocab_size"], cfg).pre == name


def test_gpt2_name_is_llama_cpps():
    """The names we write are among llama.cpp's own strings (the loads below show it accepts them)."""
    from pathlib import Path

    import llama_cpp

    lib = next(Path(llama_cpp.__file__).parent.joinpath("lib").glob("libllama*.so*"))
    blob = lib.read_bytes()
    for name in hf_tokenizer.known_pretokenizers():
        assert name.encode() + b"\0" in blob, name


@pytest.mark.parametrize("mutate, words", [
    (lambda t: t["pre_tokenizer"].update(use_regex=False), ["'(none)'", "known: gpt-2, llama-bpe, qwen2"]),
    (lambda t: t.update(pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"\w+|\s+"}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}),
     ["unrecognised pre-tokenizer", "known: gpt-2, llama-bpe, qwen2"]),
    (lambda t: t["pre_tokenizer"].update(add_prefix_space=True), ["add_prefix_space"]),
    (lambda t: t.update(normalizer={"type": "NFKC"}), ["normalizer", "'NFKC'", "'gpt-2'"]),
])
def test_anything_else_refused(gpt2_hf, tmp_path, mutate, words):
    folder = _edit(gpt2_hf["llama"], tmp_path, mutate)
    cfg = json.loads((folder / "config.json").read_text())
    with pytest.raises(TokenizerMappingError) as err:
        map_tokenizer(folder, cfg["vocab_size"], cfg)
    msg = str(err.value)
    assert str(folder / "tokenizer.json") in msg
    assert all(w in msg for w in words), msg


def test_identified_by_check_text_ids_first(gpt2_hf, monkeypatch):
    """A tokenizer whose ids for the check text are a published checkpoint's gets that checkpoint's
    name, whatever its regex (llama.cpp's rule); the hash is SHA-256 of str(ids)."""
    import hashlib

    from tokenizers import Tokenizer

    tj = gpt2_hf["qwen3"] / "tokenizer.json"
    ids = Tokenizer.from_file(str(tj)).encode(hf_tokenizer.check_text()).ids
    chkhsh = hashlib.sha256(str(ids).encode()).hexdigest()
    assert hf_tokenizer.check_hash(tj) == chkhsh
    table = json.loads(json.dumps(hf_tokenizer._pretokenizer_table()))
    table["qwen2"]["chkhsh"][chkhsh] = "a checkpoint published with this tokenizer"
    monkeypatch.setattr(hf_tokenizer, "_pretokenizer_table", lambda: table)
    tok = json.loads(tj.read_text())
    assert hf_tokenizer.recognise_pretokenizer(tok, tj) == "qwen2"


def test_check_text_is_llama_cpps():
    text = hf_tokenizer.check_text()
    assert len(text) == 350 and text.startswith("\n \n\n \n\n\n \t") and text.endswith("We'Ve a'lL")
    assert "\U0001f999\U0001f999" in text and "\u200d" in text


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["llama", "qwen3"])
@pytest.mark.parametrize("quant", ["Q8_0", "Q4_K_M"])
def test_gpt2_tokenizer_models_convert_with_token_parity(gpt2_hf, tmp_path, capsys, arch, quant):
    require_module("llama_cpp")
    from engine.cli import main as logos
    from engine.modelfiles.gguf_info import inspect_gguf
    from engine.models.parity import check_parity, default_corpus

    out = tmp_path / f"{arch}-{quant}.gguf"
    assert logos(["models", "convert", str(gpt2_hf[arch]), str(out), "--quant", quant]) == 0
    info = inspect_gguf(out, with_hash=False)
    assert info.pre_tokenizer == "gpt-2" and info.quant == quant and info.all_tags_single
    texts = default_corpus()[::3] + [hf_tokenizer.check_text(), "CCO  c1ccccc1\n\n<MoleculeS>CC(=O)O<MoleculeE>"]
    report = check_parity(out, gpt2_hf[arch], quants=(), texts=texts, threads=1)
    print(f"{arch} {quant}: token parity {report.token_parity}, argmax {report.argmax_agreement:.3f}, "
          f"{report.n_positions} positions")
    assert report.token_parity == 1.0, report.token_mismatches[:1]
