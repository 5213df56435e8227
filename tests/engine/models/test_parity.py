"""Converted tiny Llama and Qwen3 checkpoints run in real llama.cpp exactly like in transformers;
llama.cpp's quantiser produces real K-quants with the expected perplexity ordering."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.required import require_module

require_module("llama_cpp", allow_module_level=True)

from engine.cli import main as logos  # noqa: E402
from engine.modelfiles.gguf_info import read_header  # noqa: E402
from engine.models.parity import check_parity, default_corpus  # noqa: E402
from engine.models.quantize import quantize  # noqa: E402
from engine.runtime.logits import Scorer  # noqa: E402

COMBOS = [("llama", "special"), ("llama", "ordinary"), ("qwen3", "special"), ("qwen3", "ordinary")]
# every 3rd held-out record: all record kinds, 16 texts; one thread (ggml threads spin, and CI's
# two cores are shared)
TEXTS = default_corpus()[::3]


@pytest.mark.slow
@pytest.mark.parametrize("arch, tags", COMBOS)
def test_f32_full_parity(tiny_hf, tiny_gguf, arch, tags):
    report = check_parity(tiny_gguf(arch, tags, "f32"), tiny_hf(arch, tags), quants=(), texts=TEXTS, threads=1)
    assert report.n_texts == len(TEXTS) and report.n_positions > 500
    assert report.token_parity == 1.0, report.token_mismatches[:1]
    assert report.argmax_agreement == 1.0
    assert report.max_abs_logit_diff < 1e-3
    assert report.perplexity_gguf == pytest.approx(report.perplexity_hf, rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_f16_parity_and_quantisations(tiny_hf, tiny_gguf, arch):
    report = check_parity(tiny_gguf(arch, "special", "f16"), tiny_hf(arch, "special"),
                          quants=("F16", "Q8_0", "Q5_K_M", "Q4_K_M"), texts=TEXTS, threads=1)
    assert report.token_parity == 1.0
    # F16 weights move logits by ~1e-2; a random model has near-ties (gaps of 1e-4), so a rare flip
    # is rounding, not a conversion error (the F32 test above demands every position)
    assert report.argmax_agreement > 0.99
    assert report.max_abs_logit_diff < 0.1
    by = {q.quant: q for q in report.quantizations}
    assert list(by) == ["F16", "Q8_0", "Q5_K_M", "Q4_K_M"]
    assert by["F16"].ppl_delta_vs_f16 == 0.0 and by["F16"].argmax_agreement_vs_f16 == 1.0
    # a random model's next-token distribution is flat (near-ties everywhere), so argmax agreement
    # under quantisation noise is far below a trained model's; perplexity moves little
    assert abs(by["Q8_0"].ppl_delta_vs_f16) < 0.01 and by["Q8_0"].argmax_agreement_vs_f16 > 0.8
    assert by["Q4_K_M"].argmax_agreement_vs_f16 > 0.3
    assert by["Q8_0"].argmax_agreement_vs_f16 > by["Q4_K_M"].argmax_agreement_vs_f16
    assert abs(by["Q4_K_M"].ppl_delta_vs_f16) > abs(by["Q8_0"].ppl_delta_vs_f16)
    assert by["F16"].size > by["Q8_0"].size > by["Q5_K_M"].size > by["Q4_K_M"].size


@pytest.mark.parametrize("quant, weight_type", [("Q8_0", "Q8_0"), ("Q5_K_M", "Q5_K"), ("Q4_K_M", "Q4_K")])
def test_quantize_writes_real_k_quants(tiny_gguf, tmp_path, quant, weight_type):
    seen = []
    res = quantize(tiny_gguf("llama", "special", "f32"), tmp_path / f"m-{quant}.gguf", quant,
                   progress=lambda s, d, t: seen.append((d, t)), threads=1)
    assert res.path.is_file() and not (tmp_path / f"m-{quant}.gguf.part").exists()
    types = {t.name: t.type_name for t in read_header(res.path).tensors}
    # 256-wide rows: the K-quant is really used, not the Q5_0 fallback for narrow rows
    assert types["blk.0.ffn_up.weight"] == weight_type
    assert types["blk.0.attn_norm.weight"] == "F32"
    assert seen and seen[-1][0] == seen[-1][1]
    with Scorer(res.path, n_ctx=64, n_threads=1) as s:
        ids = s.tokenize("<MoleculeS>CCO<MoleculeE>")
        assert s.logits(ids).shape == (len(ids), s.n_vocab)


def test_quantize_refuses_partial_input(tiny_gguf, tmp_path):
    src = tiny_gguf("qwen3", "special", "f16")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    from engine.modelfiles.errors import PartialFileError

    with pytest.raises(PartialFileError):
        quantize(cut, tmp_path / "q.gguf", "Q8_0")
    assert not list(tmp_path.glob("q.gguf*"))


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_tag_types_seen_by_llama_cpp(tiny_gguf, arch):
    """Control tags need special-token parsing (the runtime turns it on); ordinary tags never split."""
    text = "<ProteinS>MKT<ProteinE>"
    with Scorer(tiny_gguf(arch, "special", "f16"), vocab_only=True) as s:
        with_special = s.tokenize(text, add_special=False, parse_special=True)
        without = s.tokenize(text, add_special=False, parse_special=False)
        assert len(without) > len(with_special)
    with Scorer(tiny_gguf(arch, "ordinary", "f16"), vocab_only=True) as s:
        assert s.tokenize(text, add_special=False, parse_special=False) == \
            s.tokenize(text, add_special=False, parse_special=True)
    with Scorer(tiny_gguf(arch, "special", "f16"), vocab_only=True) as s:
        ids = s.tokenize("<MoleculeS>C<MoleculeE>", add_special=True)
        assert (len(ids) == 4) == (arch == "llama")  # Llama adds BOS, Qwen3 does not


@pytest.mark.slow
def test_cli_check_json(tiny_hf, tiny_gguf, capsys, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("# a comment line\n" + "\n".join(TEXTS[:6]) + "\n")
    rc = logos(["models", "check", str(tiny_gguf("qwen3", "ordinary", "f32")), "--hf", str(tiny_hf("qwen3", "ordinary")),
                "--json", "--quants", "Q8_0", "--threads", "1", "--corpus", str(corpus)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["token_parity"] == 1.0 and out["argmax_agreement"] == 1.0 and out["max_abs_logit_diff"] < 1e-3
    assert out["n_texts"] == 6 and [q["quant"] for q in out["quantizations"]] == ["Q8_0"]


@pytest.mark.slow
def test_cli_check_fails_on_foreign_checkpoint(tiny_hf, tiny_gguf, capsys, tmp_path):
    """A GGUF checked against a different checkpoint (other tokenizer) must not pass."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS[:4]))
    rc = logos(["models", "check", str(tiny_gguf("llama", "special", "f16")), "--hf", str(tiny_hf("qwen3", "special")),
                "--json", "--quants", "", "--threads", "1", "--corpus", str(corpus)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and out["token_parity"] < 1.0 and out["token_mismatches"]


def test_cli_convert_with_quant(tiny_hf, tmp_path, capsys):
    out = tmp_path / "m-q4.gguf"
    rc = logos(["models", "convert", str(tiny_hf("qwen3", "special")), str(out), "--quant", "Q4_K_M"])
    assert rc == 0 and "Q4_K_M" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-q4.gguf"]  # the F16 intermediate is gone
    from engine.modelfiles.gguf_info import inspect_gguf

    info = inspect_gguf(out, with_hash=False)
    assert info.quant == "Q4_K_M" and info.all_tags_single
