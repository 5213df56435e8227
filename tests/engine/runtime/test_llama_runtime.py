"""The llama.cpp runtime on tiny real GGUFs (Llama and Qwen3 layouts, tags as control tokens and
as ordinary added tokens), converted by our converter."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from engine.grammar.tags import ALL_TOKENS
from engine.process.jobs import resolve_grammar
from engine.runtime.gguf_facts import ModelFileError
from engine.runtime.llama import Cancelled, Runtime, RuntimeLoadError
from engine.runtime.sampling import SamplingParams

VARIANTS = [("llama", "special"), ("llama", "ordinary"), ("qwen3", "special"), ("qwen3", "ordinary")]


@pytest.fixture(scope="module")
def runtimes(tiny_gguf):
    cache: dict = {}

    def get(arch="llama", tags="special"):
        if (arch, tags) not in cache:
            cache[(arch, tags)] = Runtime.load(tiny_gguf(arch, tags), n_ctx=4096, n_threads=1, n_seq_max=32)
        return cache[(arch, tags)]

    yield get
    for rt in cache.values():
        rt.close()


@pytest.mark.parametrize("arch,tags", VARIANTS)
def test_tags_are_single_tokens_and_render_with_special_shown(runtimes, arch, tags):
    rt = runtimes(arch, tags)
    for tag in ALL_TOKENS:
        tid = rt.token_id(tag)
        assert tid is not None, f"{tag} is not one token"
        assert rt.piece(tid) == tag.encode()
    ids = rt.tokenize("<MoleculeS>CCO<MoleculeE>", add_special=False)
    assert ids[0] == rt.token_id("<MoleculeS>") and ids[-1] == rt.token_id("<MoleculeE>")
    assert rt.detokenize(ids) == "<MoleculeS>CCO<MoleculeE>"
    if tags == "special":
        assert rt.is_control(rt.token_id("<MoleculeE>"))


def test_plan_is_reported(runtimes):
    rt = runtimes()
    d = rt.describe()
    assert d["plan"]["n_ctx"] == 4096 and d["n_gpu_layers"] == 0
    assert d["plan"]["cpu_reason"]  # CPU build here: the reason is said, never silent
    assert rt.n_ctx == 4096


@pytest.mark.parametrize("arch,tags", VARIANTS)
def test_stop_on_closing_tag_by_token_id(runtimes, arch, tags):
    """A grammar forces the closing tag after a few atoms; the runtime must stop on its id and
    render it, whether the tag is a control token (renders empty without special=True) or not."""
    rt = runtimes(arch, tags)
    stop = rt.token_id("<MoleculeE>")
    grammar = resolve_grammar("root ::= [CNO]{1,6} <MoleculeE>\n", rt.token_id)
    assert f"<[{stop}]>" in grammar
    samples, stats = rt.generate("<MoleculeS>", 4, SamplingParams(max_new_tokens=40), seed=3,
                                 stop_ids=[stop], grammar=grammar)
    assert len(samples) == 4
    for s in samples:
        assert s.stop == "stop_token" and s.tokens[-1] == stop, s
        assert s.text.endswith("<MoleculeE>") and set(s.text[:-len("<MoleculeE>")]) <= set("CNO")


def test_batched_job_evaluates_the_prompt_once_and_decodes_together(runtimes):
    rt = runtimes()
    prompt = "<ProteinS>MKTAYIAKQRQISFVKSHFSRQ<ProteinE><MoleculeS>"
    samples, stats = rt.generate(prompt, 16, SamplingParams(max_new_tokens=24), seed=11,
                                 stop_ids=[rt.token_id("<MoleculeE>")])
    assert [s.index for s in samples] == list(range(16))
    assert stats.waves == 1 and stats.max_batch == 16
    assert stats.n_prompt == len(rt.tokenize(prompt))
    # steps = longest sample, not the sum: all sequences advanced in the same decode calls
    assert stats.steps == max(len(s.tokens) for s in samples)
    assert stats.tokens_generated == sum(len(s.tokens) for s in samples)
    assert len({s.text for s in samples}) > 1


def test_same_seed_same_samples_other_seed_other_samples(runtimes):
    rt = runtimes("qwen3", "special")
    p = SamplingParams(max_new_tokens=20)
    a, _ = rt.generate("<MoleculeS>", 6, p, seed=5)
    b, _ = rt.generate("<MoleculeS>", 6, p, seed=5)
    c, _ = rt.generate("<MoleculeS>", 6, p, seed=6)
    assert [s.tokens for s in a] == [s.tokens for s in b]
    assert [s.tokens for s in a] != [s.tokens for s in c]


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_perplexity_from_generation_equals_a_separate_pass(runtimes, arch):
    rt = runtimes(arch, "special")
    prompt = "<MoleculeS>CC(=O)"
    samples, _ = rt.generate(prompt, 4, SamplingParams(max_new_tokens=16), seed=2)
    ptoks = rt.tokenize(prompt)
    for s in samples:
        lp = rt.token_logprobs(ptoks + s.tokens)
        ppl = float(np.exp(-np.mean(lp)))
        assert s.ppl == pytest.approx(ppl, rel=2e-3)
        out_ppl = float(np.exp(-np.mean(lp[len(ptoks) - 1:])))
        assert s.ppl_output == pytest.approx(out_ppl, rel=2e-3)


def test_more_samples_than_fit_run_in_waves_with_the_prompt_kept(runtimes):
    rt = runtimes()
    samples, stats = rt.generate("<MoleculeS>", 40, SamplingParams(max_new_tokens=8), seed=1)
    assert len(samples) == 40 and stats.waves == 2 and stats.max_batch == 31


def test_cancel_stops_within_a_second(runtimes):
    rt = runtimes()
    cancel = threading.Event()
    result = {}

    def go():
        try:
            rt.generate("<MoleculeS>", 24, SamplingParams(max_new_tokens=4000), seed=1, cancel=cancel,
                        on_progress=lambda *a: result.setdefault("started", time.perf_counter()))
        except Cancelled:
            result["cancelled"] = time.perf_counter()

    t = threading.Thread(target=go)
    t.start()
    deadline = time.time() + 30
    while "started" not in result and time.time() < deadline:
        time.sleep(0.01)
    t0 = time.perf_counter()
    cancel.set()
    t.join(5)
    assert "cancelled" in result and result["cancelled"] - t0 < 1.0
    samples, _ = rt.generate("<MoleculeS>", 2, SamplingParams(max_new_tokens=4), seed=1)
    assert len(samples) == 2  # the runtime is usable after a cancel


def test_bad_model_files_name_the_file_and_the_reason(tmp_path, tiny_gguf):
    with pytest.raises(ModelFileError, match="missing.gguf: file not found"):
        Runtime.load(tmp_path / "missing.gguf")
    text = tmp_path / "notes.gguf"
    text.write_text("hello, I am not a model\n")
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        Runtime.load(text)
    good = tiny_gguf("llama", "special")
    half = tmp_path / "half.gguf"
    data = good.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="half.gguf: (tensor data incomplete|the file ends inside its header)"):
        Runtime.load(half)


def test_unsupported_architecture_is_refused_with_llama_cpp_words(tmp_path):
    import gguf

    path = tmp_path / "alien.gguf"
    w = gguf.GGUFWriter(str(path), "alienformer")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(RuntimeLoadError, match="alien.gguf: unsupported architecture 'alienformer'"):
        Runtime.load(path, n_ctx=512)


def test_close_frees_and_refuses_later_use(tiny_gguf):
    rt = Runtime.load(tiny_gguf("llama", "special"), n_ctx=512, n_seq_max=4)
    rt.close()
    rt.close()
    with pytest.raises(RuntimeError, match="no model loaded"):
        rt.generate("<MoleculeS>", 1)
