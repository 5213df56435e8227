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
from engine.runtime import _internals as native
from engine.runtime.llama import Cancelled, Runtime, RuntimeLoadError, RuntimeOptions
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
    ids.append(7)  # the ids kept for the next call are not the caller's list
    assert rt.tokenize("<MoleculeS>CCO<MoleculeE>", add_special=False) == ids[:-1]
    with_bos = rt.tokenize("<MoleculeS>CCO<MoleculeE>")
    assert with_bos[1:] == ids[:-1] or with_bos == ids[:-1]  # BOS where the model adds one
    if tags == "special":
        assert rt.is_control(rt.token_id("<MoleculeE>"))


def test_stop_rules_are_kept_per_setting_and_read_only(runtimes):
    """A job's StopRule is made once per setting (stop ids, count, texts, max_new, end-of-generation
    kept or not) and shared by the jobs that ask it again: read-only, so no job changes another's."""
    rt = runtimes("llama", "special")
    stop = rt.token_id("<MoleculeE>")
    a = rt._stop_rule([stop], 1, (), 20, False)
    assert rt._stop_rule([stop, stop], 1, [], 20, False) is a
    others = [rt._stop_rule([stop], 2, (), 20, False), rt._stop_rule([stop], 1, (), 21, False),
              rt._stop_rule([], 1, (), 20, True), rt._stop_rule([stop], 1, ("CC",), 20, False)]
    assert len({id(r) for r in [a] + others}) == 5
    assert a.stop_mask[stop] and a.end_codes[stop] == 1 and others[3].stop_bytes == [b"CC"]
    assert not others[2].stop_mask.any() and not others[2].eog_mask.any()
    assert np.array_equal(a.eog_mask, rt.model.eog_mask())
    for arr in (a.stop_mask, a.ends, a.end_codes, a.eog_mask, others[2].eog_mask):
        with pytest.raises(ValueError):
            arr[0] = 1


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
    assert stats.refills == 0 and stats.max_batch == 16
    assert 0 < stats.llama_s < stats.decode_s  # the time inside llama_decode, and the host's share
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


def test_more_samples_than_slots_refill_the_slots_and_give_the_same_samples(runtimes):
    """40 samples in 31 slots: each finished sample's slot starts the next one (the batch stays
    full). A sample's tokens depend on its own seed only, not on its slot or on when it started:
    the same job in one batch of 40 gives the same samples."""
    rt = runtimes()
    p = SamplingParams(max_new_tokens=8)
    samples, stats = rt.generate("<MoleculeS>", 40, p, seed=1)
    assert len(samples) == 40 and stats.refills == 9 and stats.max_batch == 31
    assert [s.index for s in samples] == list(range(40))
    one = Runtime.load(rt.path, n_ctx=8192, n_threads=1, n_seq_max=41)
    try:
        alone, st1 = one.generate("<MoleculeS>", 40, p, seed=1)
    finally:
        one.close()
    assert st1.refills == 0 and st1.max_batch == 40
    assert [s.tokens for s in samples] == [s.tokens for s in alone]
    assert len({s.tokens[0] for s in alone}) > 1


@pytest.mark.parametrize("sampler", ["logos", "numpy", "native"])
def test_refilled_slots_start_clean(sampler):
    """A slot that takes over from a finished sample must forget it: its penalty sees the prompt
    alone, its draws come from the new sample's seed, its KV cache holds the prompt alone. With 3
    slots, 24 molecules of the demonstration model (closing at different steps, so slots free up
    at different steps) are those of 24 slots, with each sampler. On the demonstration model's
    Q8_0 weights llama.cpp's results do not depend on the batch (on the F16 test models its
    kernels for 3 rows and for 24 differ in the last bits)."""
    from engine import paths

    p = SamplingParams(max_new_tokens=64, repetition_penalty=1.3)
    out = {}
    for slots in (24, 3):
        rt = Runtime.load(paths.bundled_models()[0], n_ctx=8192, n_threads=2, n_seq_max=slots + 1,
                          options=RuntimeOptions(sampler=sampler))
        try:
            samples, stats = rt.generate("<MoleculeS>", 24, p, seed=4, stop_ids=[rt.token_id("<MoleculeE>")])
        finally:
            rt.close()
        out[slots] = samples
        assert stats.max_batch == slots and stats.refills == 24 - slots
    assert [s.tokens for s in out[3]] == [s.tokens for s in out[24]]
    assert len({len(s.tokens) for s in out[3]}) > 3  # slots free at different steps
    np.testing.assert_allclose([s.ppl for s in out[3]], [s.ppl for s in out[24]], rtol=1e-9)


def test_refilling_takes_fewer_steps_than_waves_for_the_same_samples():
    """RuntimeOptions(refill=False) (LOGOS_REFILL=0, kept for comparison) runs the slots in waves:
    each wave waits for its longest sample. Refilling gives the same samples in fewer steps."""
    from engine import paths

    rt = Runtime.load(paths.bundled_models()[0], n_ctx=4096, n_threads=2, n_seq_max=5)
    try:
        stop = rt.token_id("<MoleculeE>")
        runs = {}
        for refill in (True, False):
            rt.options = rt.options.replace(refill=refill)
            runs[refill] = rt.generate("<MoleculeS>", 20, SamplingParams(max_new_tokens=96), seed=8, stop_ids=[stop])
    finally:
        rt.close()
    (a, sa), (b, sb) = runs[True], runs[False]
    assert [x.tokens for x in a] == [y.tokens for y in b]
    assert sa.tokens_generated == sb.tokens_generated and sa.refills == sb.refills == 16
    assert sa.steps < sb.steps
    # a wave lasts as long as its longest sample; the next wave draws its first tokens in the step
    # where the last one ends
    longest_per_wave = [max(len(x.tokens) for x in b[w:w + 4]) for w in range(0, 20, 4)]
    assert sb.steps == sum(longest_per_wave) - (len(longest_per_wave) - 1)


def test_samples_that_end_at_their_first_token_restart_the_slot_again_in_the_same_step():
    """A restarted slot draws its first token in the step where its previous sample ended; when
    that token ends the new sample too, the slot starts the next one at once. With a stop on the
    most frequent first token, many samples are one token long: 3 slots give the samples of 30."""
    from engine import paths

    p = SamplingParams(max_new_tokens=40)
    runs = {}
    for slots in (30, 3):
        rt = Runtime.load(paths.bundled_models()[0], n_ctx=16384, n_threads=2, n_seq_max=slots + 1)
        try:
            if not runs:
                probe, _ = rt.generate("<MoleculeS>", 30, p, seed=2)
                stops = [rt.token_id("<MoleculeE>"), int(np.bincount([x.tokens[0] for x in probe]).argmax())]
            runs[slots] = rt.generate("<MoleculeS>", 30, p, seed=2, stop_ids=stops)
        finally:
            rt.close()
    (a, sa), (b, sb) = runs[3], runs[30]
    assert [x.tokens for x in a] == [x.tokens for x in b]
    assert sum(len(x.tokens) == 1 for x in a) >= 5  # many samples end at their first token
    assert sa.refills == 27 and sa.tokens_generated == sb.tokens_generated


def test_a_grammar_job_refills_its_slots_with_fresh_grammars(tiny_gguf):
    """With more samples than slots, a restarted slot gets a new grammar state: every sample is a
    whole record, not the end of the previous one's."""
    rt = Runtime.load(tiny_gguf("llama", "special"), n_ctx=2048, n_threads=1, n_seq_max=3)
    try:
        stop = rt.token_id("<MoleculeE>")
        grammar = resolve_grammar("root ::= [CNO]{1,6} <MoleculeE>\n", rt.token_id)
        samples, stats = rt.generate("<MoleculeS>", 9, SamplingParams(max_new_tokens=40), seed=3,
                                     stop_ids=[stop], grammar=grammar)
    finally:
        rt.close()
    assert len(samples) == 9 and stats.refills == 9 - stats.max_batch > 0
    for s in samples:
        assert s.stop == "stop_token" and s.tokens[-1] == stop, s
        body = s.text[:-len("<MoleculeE>")]
        assert 1 <= len(body) <= 6 and set(body) <= set("CNO"), s


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


def test_the_cancel_watcher_raises_the_abort_flag_for_its_loop_only_while_it_watches_it():
    """The scheduler's watcher raises llama.cpp's abort flag when every job of the loop it watches
    is cancelled; once a loop is unwatched (it returned between two steps) it never raises the
    flag for that loop: the next job clears the flag and must not find it set again (its first
    decode would abort). The watcher ends with its scheduler thread."""
    from types import SimpleNamespace

    from engine.runtime.slots import _LoopWatcher

    flag = threading.Event()
    sched = SimpleNamespace(rt=SimpleNamespace(abort_flag=flag))
    made, release = [], threading.Event()
    owner = threading.Thread(target=lambda: (made.append(_LoopWatcher(sched)), release.wait(30)))
    owner.start()
    while not made:
        time.sleep(0.001)
    watcher = made[0]

    def loop(cancelled):
        return SimpleNamespace(flag_lock=threading.Lock(), all_cancelled=lambda: cancelled.is_set())

    try:
        cancel = threading.Event()
        running = loop(cancel)
        watcher.watch(running)
        cancel.set()
        deadline = time.monotonic() + 2
        while not flag.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert flag.is_set()  # the loop's decode is aborted
        watcher.unwatch(running)
        for _ in range(10):  # cancelled, then unwatched before the watcher's next look
            flag.clear()
            cancel = threading.Event()
            running = loop(cancel)
            watcher.watch(running)
            cancel.set()
            watcher.unwatch(running)
            flag.clear()  # the next job starts
            time.sleep(0.06)
            assert not flag.is_set()
    finally:
        release.set()
        owner.join(5)
    watcher._thread.join(2)
    assert not watcher._thread.is_alive()


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


SAMPLING_CASES = [
    SamplingParams(),  # the reference defaults: penalty 1.05, T 1.2, top-k 50, top-p 0.85
    SamplingParams(temperature=0.7, top_k=0, top_p=0.9, repetition_penalty=1.3),
    SamplingParams(temperature=1.0, top_k=5, top_p=1.0, repetition_penalty=1.0),
    SamplingParams(temperature=1.5, top_k=40, top_p=0.5, min_p=0.05, repetition_penalty=2.0),
    SamplingParams(temperature=0.0, repetition_penalty=1.2),
]


@pytest.mark.parametrize("params", SAMPLING_CASES, ids=lambda p: f"T{p.temperature}-k{p.top_k}-p{p.top_p}-r{p.repetition_penalty}")
def test_native_chain_keeps_what_the_reference_order_keeps(runtimes, params):
    """llama.cpp's chain as the runtime builds it gives the same candidates, in the same order, with
    the same probabilities as the numpy implementation of transformers' order (penalty over prompt
    and output, temperature, top-k, top-p, min-p)."""
    from engine.runtime.sampling import distribution

    rt = runtimes()
    rng = np.random.default_rng(3)
    for trial in range(20):
        row = (rng.standard_normal(rt.n_vocab) * 3).astype(np.float32)
        history = rng.integers(0, rt.n_vocab, 40).tolist()
        ids, probs = rt.candidates(row, history, params)
        ref_ids, ref_probs = distribution(row, np.unique(history), params)
        assert ids.tolist() == ref_ids.tolist(), trial
        np.testing.assert_allclose(probs, ref_probs, atol=2e-5)


def test_native_draws_follow_the_candidate_probabilities(runtimes):
    rt = runtimes()
    ll = rt.model.ll
    row = (np.random.default_rng(5).standard_normal(rt.n_vocab) * 2).astype(np.float32)
    params = SamplingParams(temperature=1.0, top_k=8, top_p=0.95, repetition_penalty=1.0)
    ids, probs = rt.candidates(row, [], params)
    draws = []
    for seed in range(3000):
        chain = native.reference_chain(ll, params, seed, rt.n_vocab, rt.n_ctx)
        try:
            draws.append(native.chain_pick(ll, chain, row, rt.n_vocab))
        finally:
            native.free_sampler(ll, chain)
    assert set(draws) <= set(ids.tolist())
    freq = np.array([draws.count(t) for t in ids]) / len(draws)
    assert np.abs(freq - probs).max() < 0.03, (freq, probs)


@pytest.mark.parametrize("params", [p for p in SAMPLING_CASES if p.repetition_penalty != 1.0],
                         ids=lambda p: f"T{p.temperature}-k{p.top_k}-r{p.repetition_penalty}")
def test_the_penalty_applied_to_the_logits_draws_what_the_native_penalty_draws(runtimes, params):
    """The generation loop applies the repetition penalty to the logits in numpy (its cost does not
    grow with the vocabulary) and samples with a chain without llama.cpp's penalties sampler: for
    the same seed, every draw must be the one the full native chain makes; the raw logits come back."""
    from engine.runtime.draw import penalize, restore

    rt = runtimes()
    ll, V = rt.model.ll, rt.n_vocab
    rng = np.random.default_rng(8)
    for seed in range(40):
        row = (rng.standard_normal(V) * 3).astype(np.float32)
        history = rng.integers(0, V, 30).tolist()
        full = native.reference_chain(ll, params, seed, V, rt.n_ctx, history)
        lean = native.reference_chain(ll, params, seed, V, rt.n_ctx, history, penalties=False)
        try:
            penalized = row.copy()[None, :]
            cols = np.unique(np.array(history, dtype=np.int64))
            saved = penalize(penalized, np.zeros_like(cols), cols, params.repetition_penalty)
            assert not np.array_equal(penalized[0], row)
            # the very logits llama.cpp's penalties sampler writes (a chain of that sampler alone)
            alone = native.reference_chain(ll, SamplingParams(temperature=0.0,
                                                              repetition_penalty=params.repetition_penalty),
                                           0, V, rt.n_ctx, history, draw=False)
            view, _ = native.apply_sampler(ll, alone, row, V)
            native.free_sampler(ll, alone)
            by_llama = np.empty(V, dtype=np.float32)
            by_llama[view["id"]] = view["logit"]
            assert np.array_equal(by_llama, penalized[0]), seed
            assert native.chain_pick(ll, full, row, V) == native.chain_pick(ll, lean, penalized[0], V), seed
            restore(penalized, saved)
            assert np.array_equal(penalized[0], row)
        finally:
            native.free_sampler(ll, full)
            native.free_sampler(ll, lean)


def test_seen_pairs_follow_the_live_rows():
    """The (row, token) pairs of the penalty: every sequence has seen the prompt, then its own new
    tokens; once a sequence has finished, the rows after it move up by one."""
    from engine.runtime.draw import _SeenPairs

    pairs = _SeenPairs(3, np.array([5, 9]))
    pairs.add(1, 7)
    pairs.add(2, 4)
    r, c = pairs.pairs([0, 1, 2])
    assert sorted(zip(r.tolist(), c.tolist())) == [(0, 5), (0, 9), (1, 5), (1, 7), (1, 9), (2, 4), (2, 5), (2, 9)]
    pairs.add(2, 8)
    r, c = pairs.pairs([0, 2])  # slot 1 finished: slot 2 is row 1 now
    assert sorted(zip(r.tolist(), c.tolist())) == [(0, 5), (0, 9), (1, 4), (1, 5), (1, 8), (1, 9)]


@pytest.mark.parametrize("sampler", ["logos", "native"])
def test_host_work_spread_over_threads_gives_the_same_samples(tiny_gguf, sampler):
    """With a large vocabulary the host's work of a step (the compiled sampler's rows, or the
    log-sum-exp and llama.cpp's samplers) runs in worker threads (forced here on the tiny model):
    samples and perplexities must not change."""
    runs = {}
    for threshold in (1 << 62, 1):
        rt = Runtime.load(tiny_gguf("llama", "special"), n_ctx=4096, n_threads=2, n_seq_max=17,
                          options=RuntimeOptions(sampler=sampler, parallel_host_work=threshold))
        try:
            runs[threshold] = rt.generate("<MoleculeS>", 16, SamplingParams(max_new_tokens=30), seed=4,
                                          stop_ids=[rt.token_id("<MoleculeE>")])[0]
            assert rt.host.started == (threshold == 1)
        finally:
            rt.close()
        assert not rt.host.started
    one, spread = runs[1 << 62], runs[1]
    assert [s.tokens for s in one] == [s.tokens for s in spread]
    assert len({tuple(s.tokens) for s in one}) > 1
    assert [s.ppl for s in one] == [s.ppl for s in spread]


def test_streams_and_the_unified_cache_give_the_same_samples(tiny_gguf):
    """One KV stream per sample (the prompt copied into each) must not change what is generated."""

    rt = Runtime.load(tiny_gguf("llama", "special"), n_ctx=8192, n_threads=1, n_seq_max=9)
    try:
        prompt = "<ProteinS>MKTAYIAKQRQISFVK<ProteinE><MoleculeS>"
        runs = {}
        for streams in (True, False):
            rt.options = rt.options.replace(kv_streams=streams)
            runs[streams] = rt.generate(prompt, 8, SamplingParams(max_new_tokens=40), seed=11)
        (a, sa), (b, sb) = runs[True], runs[False]
        assert sa.layout.startswith("9 streams") and sb.layout.startswith("unified")
        assert [x.tokens for x in a] == [y.tokens for y in b]
        assert len({tuple(x.tokens) for x in a}) > 1  # the samples differ from each other
        np.testing.assert_allclose([x.ppl for x in a], [y.ppl for y in b], rtol=1e-4)
    finally:
        rt.close()


def test_the_compiled_sampler_is_built():
    """setup.py builds engine/runtime/_stepper.c on install (the set-up installs gcc and Python's
    headers). Without it the engine still works, on the slower numpy implementation."""
    from engine.runtime.draw import STEPPER_ERROR, stepper_available

    assert stepper_available(), f"engine.runtime._stepper is not built: {STEPPER_ERROR}"


@pytest.mark.parametrize("penalty", [1.05, 1.0, 1.3])
def test_compiled_and_numpy_samplers_give_the_same_samples(tiny_gguf, monkeypatch, penalty):
    """The default sampler draws in C what the numpy implementation draws (the fallback where the
    extension is not built): same tokens, perplexities equal to rounding; with slots refilled."""
    import engine.runtime.draw as D

    rt = Runtime.load(tiny_gguf("llama", "special"), n_ctx=512, n_threads=1, n_seq_max=9)
    try:

        runs = {}
        for sampler in ("logos", "numpy", "unbuilt"):
            with monkeypatch.context() as m:
                rt.options = RuntimeOptions(sampler="numpy" if sampler == "numpy" else "logos")
                if sampler == "unbuilt":  # as where the extension could not be compiled
                    m.setattr(D, "_stepper", None)
                runs[sampler] = rt.generate("<MoleculeS>", 20, SamplingParams(max_new_tokens=40,
                                                                             repetition_penalty=penalty),
                                            seed=6, stop_ids=[rt.token_id("<MoleculeE>")])
        (a, sa), (b, sb), (c, sc) = runs["logos"], runs["numpy"], runs["unbuilt"]
        assert sa.sampler == "compiled" and sb.sampler == "numpy" and sc.sampler == "numpy"
        assert [x.tokens for x in c] == [y.tokens for y in b]
        assert sa.refills > 0
        assert [x.tokens for x in a] == [y.tokens for y in b]
        assert len({tuple(x.tokens) for x in a}) > 1
        np.testing.assert_allclose([x.ppl for x in a], [y.ppl for y in b], rtol=1e-6)
        np.testing.assert_allclose(sum((x.logprobs for x in a), []), sum((y.logprobs for y in b), []),
                                   rtol=1e-5, atol=1e-6)
    finally:
        rt.close()


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
@pytest.mark.parametrize("n,streams,penalty,max_new", [(1, True, 1.05, 60), (12, True, 1.3, 40),
                                                       (12, False, 1.0, 25), (30, True, 1.05, 12)])
def test_steps_in_c_give_the_same_samples_as_steps_in_python(tiny_gguf, arch, n, streams, penalty, max_new):
    """A lone job's steps run in C (RuntimeOptions.fused_steps), the freed slots taking the next
    samples there too: the same tokens, log-probabilities, stops, token counts and refills as every
    step in Python; single stream, slots refilled, both KV layouts, samples cut at max_new."""
    rt = Runtime.load(tiny_gguf(arch, "special"), n_ctx=1024, n_threads=1, n_seq_max=9)
    try:
        runs = {}
        for fused in (True, False):
            rt.options = RuntimeOptions(fused_steps=fused, kv_streams=streams)
            runs[fused] = rt.generate("<MoleculeS>", n, SamplingParams(max_new_tokens=max_new,
                                                                        repetition_penalty=penalty),
                                      seed=11, stop_ids=[rt.token_id("<MoleculeE>")])
        (a, sa), (b, sb) = runs[True], runs[False]
        assert sa.steps_in_c > 0.9 * sa.steps and sb.steps_in_c == 0  # (in Python: the first, and a few returns)
        assert (sa.steps, sa.tokens_generated, sa.refills) == (sb.steps, sb.tokens_generated, sb.refills)
        assert [x.tokens for x in a] == [y.tokens for y in b]
        assert [x.stop for x in a] == [y.stop for y in b]
        assert len({tuple(x.tokens) for x in a}) == min(n, len(a)) or n == 1
        assert {x.stop for x in a} >= ({"length"} if max_new <= 12 else set())
        np.testing.assert_allclose(sum((x.logprobs for x in a), []), sum((y.logprobs for y in b), []),
                                   rtol=1e-6, atol=1e-7)
    finally:
        rt.close()


def test_draws_spread_over_llama_cpps_threads_give_the_same_samples(tiny_gguf):
    """Where the compiled sampler and llama.cpp's CPU backend both use OpenMP (Linux), the steps in
    C draw a step's rows on llama.cpp's threads (RuntimeOptions.threaded_draws): the same samples
    as in one thread, refills and length cuts included."""
    import sys

    from engine.runtime.draw import draw_threads

    rt = Runtime.load(tiny_gguf("llama", "special"), n_ctx=2048, n_threads=2, n_seq_max=9)
    try:
        if sys.platform.startswith("linux"):  # built with -fopenmp (setup.py), as llama.cpp's wheel
            assert rt.host.draw_threads == 2
        assert draw_threads(2, "CPU : AVX2 = 1 | OPENMP = 0 |") == 1
        runs = {}
        for k in (2, 1):
            rt.host.draw_threads = k
            runs[k] = rt.generate("<MoleculeS>", 20, SamplingParams(max_new_tokens=30, repetition_penalty=1.2),
                                  seed=5, stop_ids=[rt.token_id("<MoleculeE>")])
        (a, sa), (b, sb) = runs[2], runs[1]
        assert sa.steps_in_c > 0.9 * sa.steps and sa.refills == sb.refills > 0
        assert [x.tokens for x in a] == [y.tokens for y in b]
        assert [x.logprobs for x in a] == [y.logprobs for y in b]
    finally:
        rt.close()


def test_a_job_queued_during_steps_in_c_still_joins_the_slots(tiny_gguf):
    """A job submitted after the first has run steps in C joins its slots (a C call returns at the
    next step when a job waits) and both give their own samples."""
    rt = Runtime.load(tiny_gguf("llama", "special"), n_ctx=4096, n_threads=1, n_seq_max=9)
    try:
        p = SamplingParams(max_new_tokens=100)
        alone, _ = rt.generate("<MoleculeS>", 4, p, seed=3)
        out = {}
        started = threading.Event()

        def first():
            out["a"] = rt.generate("<MoleculeS>", 8, SamplingParams(max_new_tokens=200), seed=2, ignore_eos=True,
                                   on_progress=lambda done, n, tokens, s: tokens >= 8 * 20 and started.set())

        t = threading.Thread(target=first)
        t.start()
        assert started.wait(30)
        out["b"] = rt.generate("<MoleculeS>", 4, p, seed=3)
        t.join(60)
        (a, sa), (b, sb) = out["a"], out["b"]
        assert sb.shared_jobs == 2 and sa.shared_jobs == 2
        assert 0 < sa.steps_in_c < sa.steps
        assert [len(x.tokens) for x in a] == [200] * 8
        assert [x.tokens for x in b] == [x.tokens for x in alone]
    finally:
        rt.close()


def test_the_slot_loop_thread_waits_for_the_next_job_and_ends_with_the_runtime(tiny_gguf):
    """One thread decodes the jobs that follow each other (a new thread's first llama_decode
    starts an OpenMP team: milliseconds a job) and the runtime's other llama.cpp calls; it ends
    when another runtime starts to decode, or when the runtime closes."""
    rt = Runtime.load(tiny_gguf("llama", "special"), n_ctx=512, n_threads=1, n_seq_max=5)
    names = []
    try:
        for seed in (1, 2):
            rt.generate("<MoleculeS>", 3, SamplingParams(max_new_tokens=8), seed=seed,
                        on_sample=lambda s: names.append(threading.current_thread()))
        first = names[0]
        assert first.is_alive() and all(t is first for t in names)
        # a function run "in the loop" runs there too, between jobs; its error comes back
        assert rt.run_in_loop(threading.current_thread) is first
        with pytest.raises(ZeroDivisionError):
            rt.run_in_loop(lambda: 1 / 0)
        assert len(rt.token_logprobs(rt.tokenize("<MoleculeS>C"))) >= 1
        # another runtime's job dismisses this thread: one OpenMP team decodes at a time
        other = Runtime.load(tiny_gguf("qwen3", "special"), n_ctx=512, n_threads=1, n_seq_max=5)
        try:
            other.generate("<MoleculeS>", 2, SamplingParams(max_new_tokens=4), seed=1)
            assert not first.is_alive()
            rt.generate("<MoleculeS>", 2, SamplingParams(max_new_tokens=4), seed=1)  # a new thread serves it
        finally:
            other.close()
    finally:
        rt.close()
    assert not first.is_alive()


def test_numpy_and_native_samplers_both_stop_and_repeat(runtimes):
    rt = runtimes()
    stop = rt.token_id("<MoleculeE>")
    for sampler in ("logos", "native", "numpy"):
        rt.options = RuntimeOptions(sampler=sampler)
        a, _ = rt.generate("<MoleculeS>", 4, SamplingParams(max_new_tokens=30), seed=2, stop_ids=[stop])
        b, _ = rt.generate("<MoleculeS>", 4, SamplingParams(max_new_tokens=30), seed=2, stop_ids=[stop])
        assert [s.tokens for s in a] == [s.tokens for s in b], sampler
        assert all(s.stop in ("stop_token", "length", "eog") for s in a)


def test_the_native_abort_flag_stops_a_decode_without_python_callbacks(runtimes):
    """llama.cpp polls the flag itself (ggml_is_empty on a tensor-shaped head): set, a decode is
    aborted at once; cleared, the same context decodes again."""
    rt = runtimes()
    flag, ctx = rt.abort_flag, rt.context
    assert flag.native, "ggml_is_empty was not found in ggml-base: cancel would wait for the step"
    ctx.clear()
    ids = rt.tokenize("<MoleculeS>CCO")
    flag.set()
    try:
        with pytest.raises(Cancelled):
            ctx.decode(ids, np.arange(len(ids)), 0, True)
    finally:
        flag.clear()
    ctx.clear()
    ctx.decode(ids, np.arange(len(ids)), 0, True)
    assert np.isfinite(ctx.logits(len(ids))).all()
