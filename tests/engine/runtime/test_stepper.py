"""The compiled step sampler (engine/runtime/_stepper.c) against the numpy implementation it must
match draw for draw (engine.runtime.sampling.sample_batch), and against bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.runtime.draw import pcg64_states, stepper_available
from engine.runtime.sampling import SamplingParams, distribution, log_softmax_at, sample_batch
from tests.fixtures.required import missing

if not stepper_available():  # built by pip install through setup.py: a CI failure when missing
    missing("engine.runtime._stepper is not built", allow_module_level=True)


def _stepper():
    from engine.runtime import _stepper

    return _stepper


def _c_draws(rows, seen, params, seeds, stride=None):
    """Tokens and log-probabilities from the C sampler for rows (n, V), one slot per row."""
    n, vocab = rows.shape if stride != 0 else (len(seeds), rows.shape[-1])
    mask = b""
    if params.repetition_penalty != 1.0:
        mask = np.zeros((n, vocab), dtype=np.uint8)
        for j, s in enumerate(seen):
            mask[j, s] = 1
    states = pcg64_states(seeds)
    tok = np.zeros(n, dtype=np.int64)
    lp = np.zeros(n, dtype=np.float64)
    _stepper().sample_rows(np.ascontiguousarray(rows, dtype=np.float32), vocab, vocab if stride is None else stride,
                           0, n, mask, np.arange(n, dtype=np.int64), params.repetition_penalty, params.temperature,
                           params.top_k, params.top_p, params.min_p, states, tok, lp)
    return tok, lp, states


def _numpy_draws(rows, seen, params, seeds):
    rngs = [np.random.default_rng(s) for s in seeds]
    tok = sample_batch(rows, seen, params, rngs)
    return tok, rngs


PARAMS = [
    SamplingParams(),
    SamplingParams(temperature=0.8, top_k=5, top_p=0.5, repetition_penalty=1.3),
    SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.1, repetition_penalty=1.0),
    SamplingParams(temperature=1.0, top_k=1, top_p=1.0),
    SamplingParams(temperature=2.5, top_k=50, top_p=0.95, repetition_penalty=0.8),  # a penalty < 1 favours repeats
    SamplingParams(temperature=0.0, repetition_penalty=1.2),
]


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("vocab", [7, 66, 700, 5000, 20000])
def test_c_sampler_draws_what_numpy_draws(params, vocab):
    rng = np.random.default_rng(vocab)
    n = 12
    for step in range(6):
        rows = (rng.standard_normal((n, vocab)) * rng.choice([0.5, 3.0, 10.0])).astype(np.float32)
        if step % 2:
            rows = np.round(rows)  # many ties, at the k-th score too
        seen = [np.unique(rng.integers(0, vocab, size=int(rng.integers(0, 40)))) for _ in range(n)]
        seeds = [int(x) for x in rng.integers(0, 2**62, n)]
        want, rngs = _numpy_draws(rows, seen, params, seeds)
        got, lp, states = _c_draws(rows, seen, params, seeds)
        assert got.tolist() == want.tolist(), (step, params)
        np.testing.assert_allclose(lp, log_softmax_at(rows, got), rtol=1e-6, atol=1e-6)
        # one uniform per row and step (none when greedy), from the same PCG64 stream
        assert np.array_equal(states, _states_of(rngs))


@pytest.mark.parametrize("top_k", [1, 3, 50])
def test_the_kth_score_over_signed_zeros_infinities_and_extremes(top_k):
    """The k-th score is selected a byte of its bits at a time: rows mixing -0 and +0, -inf,
    very large and denormal scores and runs of equal scores draw what numpy draws."""
    rng = np.random.default_rng(top_k)
    specials = np.array([0.0, -0.0, -np.inf, 1e30, -1e30, 1e-45, -1e-45, 1.0, 1.0, 1.0, -2.5], dtype=np.float32)
    params = SamplingParams(temperature=0.9, top_k=top_k, top_p=1.0, repetition_penalty=1.1)
    for vocab in (64, 700, 3000):
        n = 8
        rows = rng.choice(specials, size=(n, vocab)).astype(np.float32)
        rows[::2] += (rng.standard_normal((n // 2, vocab)) * 1e-3).astype(np.float32) * (rows[::2] > -np.inf)
        rows[:, :3] = -np.inf
        seen = [np.unique(rng.integers(0, vocab, size=20)) for _ in range(n)]
        seeds = [int(x) for x in rng.integers(0, 2**62, n)]
        with np.errstate(all="ignore"):
            want, rngs = _numpy_draws(rows, seen, params, seeds)
        got, _, states = _c_draws(rows, seen, params, seeds)
        assert got.tolist() == want.tolist(), vocab
        assert np.array_equal(states, _states_of(rngs))


def _states_of(rngs) -> np.ndarray:
    out = np.zeros((len(rngs), 4), dtype=np.uint64)
    for i, g in enumerate(rngs):
        s = g.bit_generator.state["state"]
        out[i] = (s["state"] >> 64, s["state"] & (2**64 - 1), s["inc"] >> 64, s["inc"] & (2**64 - 1))
    return out


def test_pcg64_states_made_in_c_are_numpys():
    """The C seeding (SeedSequence's mixing, PCG64's set-seed) gives numpy's states for seeds of
    one and two 32-bit words, the edges included; seeds beyond 64 bits go to numpy."""
    import engine.runtime.draw as D

    rng = np.random.default_rng(7)
    seeds = [0, 1, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1] + [int(x) for x in rng.integers(0, 2**63, 500)]
    seeds += [int(x) for x in rng.integers(0, 2**32, 500)]
    out = np.zeros((len(seeds), 4), dtype=np.uint64)
    _stepper().seed_states(np.array(seeds, dtype=np.uint64), out)
    for row, sd in zip(out, seeds):
        st = np.random.PCG64(sd).state["state"]
        assert [int(x) for x in row] == [st["state"] >> 64, st["state"] & (2**64 - 1), st["inc"] >> 64,
                                         st["inc"] & (2**64 - 1)], sd
    big = D.pcg64_states([2**70 + 3])
    st = np.random.PCG64(2**70 + 3).state["state"]
    assert int(big[0, 1]) == st["state"] & (2**64 - 1)
    with pytest.raises(ValueError, match="out"):
        _stepper().seed_states(np.array([1, 2], dtype=np.uint64), np.zeros((1, 4), dtype=np.uint64))


def test_pcg64_states_are_numpys_generators():
    """The C sampler's uniform numbers are numpy's default_rng(seed).random(), in order."""
    seeds = [0, 1, 2**40 + 7, 2**63 - 1]
    vocab = 2
    rows = np.zeros((len(seeds), vocab), dtype=np.float32)  # two equally likely tokens
    params = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0)
    states = pcg64_states(seeds)
    rngs = [np.random.default_rng(s) for s in seeds]
    for _ in range(50):
        tok = np.zeros(len(seeds), dtype=np.int64)
        lp = np.zeros(len(seeds))
        _stepper().sample_rows(rows, vocab, vocab, 0, len(seeds), b"", np.arange(len(seeds), dtype=np.int64),
                               1.0, 1.0, 0, 1.0, 0.0, states, tok, lp)
        u = np.array([g.random() for g in rngs])
        assert tok.tolist() == (u >= 0.5).astype(int).tolist()
    assert np.array_equal(states, _states_of(rngs))


@pytest.mark.parametrize("vocab, at", [(40, (3, 17, 29)), (20_000, (3, 17, 19_990)),
                                       (128_256, (70_001, 5, 128_250)), (128_256, (9, 100_000, 40))])
def test_scores_that_temperature_merges_with_the_kth_are_kept(vocab, at):
    """Dividing by the temperature can round a score just under the k-th onto it; numpy then keeps
    both (a tie), and so must the C sampler, although that score was not in its top-k pool (first
    by a sampled threshold, then by the heap; the merged score near the end of the row, in a block
    the scan for it must not skip, or before the k-th)."""
    temp = np.float32(1.5)  # 1.9 / 1.5 stays in the binade [1, 2): the gaps shrink, the spacing does not
    grid = np.float32(1.9) + np.arange(200, dtype=np.float32) * np.float32(2.0**-23)
    kth = next(x for x in grid if np.nextafter(x, np.float32(-np.inf)) / temp == x / temp)
    below = np.nextafter(kth, np.float32(-np.inf))
    row = np.linspace(-5, -1, vocab).astype(np.float32)
    top, kpos, bpos = at
    row[[top, kpos]] = (np.float32(3.0), kth)  # top-2 is (3, kth); `below` merges with kth
    row[bpos] = below
    params = SamplingParams(temperature=float(temp), top_k=2, top_p=1.0, repetition_penalty=1.0)
    cand, _ = distribution(row, np.zeros(0, dtype=np.int64), params)
    assert sorted(cand.tolist()) == sorted(at)
    seeds = list(range(200))
    rows = np.tile(row, (len(seeds), 1))
    want, _ = _numpy_draws(rows, [np.zeros(0, dtype=np.int64)] * len(seeds), params, seeds)
    got, _, _ = _c_draws(rows, [np.zeros(0, dtype=np.int64)] * len(seeds), params, seeds)
    assert got.tolist() == want.tolist()
    assert bpos in got.tolist()


@pytest.mark.parametrize("simd", [True, False])
def test_a_merged_score_under_the_short_rows_threshold_is_kept(simd):
    """Rows of up to 16k tokens take their top-k from a pool at or above a threshold found on every
    15th score (here), then a sort by counting. With top-1 at a sampled position the threshold is
    the k-th score itself, and the score that division by the temperature merges with it lies
    under the threshold, between two sampled ones: the scan under the threshold must find it."""
    temp = np.float32(1.5)
    grid = np.float32(1.9) + np.arange(200, dtype=np.float32) * np.float32(2.0**-23)
    kth = next(x for x in grid if np.nextafter(x, np.float32(-np.inf)) / temp == x / temp)
    vocab = 4000
    row = np.linspace(-5, -1, vocab).astype(np.float32)
    row[0], row[7] = kth, np.nextafter(kth, np.float32(-np.inf))
    params = SamplingParams(temperature=float(temp), top_k=1, top_p=1.0, repetition_penalty=1.0)
    none = np.zeros(0, dtype=np.int64)
    cand, _ = distribution(row, none, params)
    assert sorted(cand.tolist()) == [0, 7]
    seeds = list(range(200))
    rows = np.tile(row, (len(seeds), 1))
    want, _ = _numpy_draws(rows, [none] * len(seeds), params, seeds)
    try:
        _stepper().simd(simd)
        got, _, _ = _c_draws(rows, [none] * len(seeds), params, seeds)
    finally:
        _stepper().simd(True)
    assert got.tolist() == want.tolist()
    assert set(got.tolist()) == {0, 7}


@pytest.mark.parametrize("temperature", [1e30, 1e39])
def test_extreme_temperatures_match_numpy(temperature):
    """At 1e39 the float32 temperature is infinite and every score divides to 0: all of them merge
    with the k-th, and the scan for merged scores must still look at the whole row (and not step
    down through two billion floats looking for where the merging ends)."""
    rng = np.random.default_rng(3)
    rows = (rng.standard_normal((4, 2000)) * 3).astype(np.float32)
    params = SamplingParams(temperature=temperature, top_k=5, top_p=0.9, repetition_penalty=1.0)
    seeds = [11, 12, 13, 14]
    none = [np.zeros(0, dtype=np.int64)] * 4
    want, _ = _numpy_draws(rows, none, params, seeds)
    got, _, _ = _c_draws(rows, none, params, seeds)
    assert got.tolist() == want.tolist()


def test_a_zero_stride_samples_every_row_from_the_first():
    rng = np.random.default_rng(5)
    row = (rng.standard_normal(300) * 3).astype(np.float32)
    seeds = list(range(9))
    params = SamplingParams()
    got, lp, _ = _c_draws(row[None, :], [np.array([1, 2])] * 9, params, seeds, stride=0)
    want, _ = _numpy_draws(np.tile(row, (9, 1)), [np.array([1, 2])] * 9, params, seeds)
    assert got.tolist() == want.tolist()
    np.testing.assert_allclose(lp, log_softmax_at(np.tile(row, (9, 1)), got), rtol=1e-6)


def test_log_sum_exp_of_rows():
    rng = np.random.default_rng(1)
    for vocab in (1, 7, 1000, 128_256):
        rows = (rng.standard_normal((3, vocab)) * 8).astype(np.float32)
        rows[1, : vocab // 2] = -np.inf
        out = np.zeros(3)
        _stepper().lse_rows(rows, vocab, 3, out)
        r = rows.astype(np.float64)
        want = r.max(axis=1) + np.log(np.exp(r - r.max(axis=1, keepdims=True)).sum(axis=1))
        np.testing.assert_allclose(out, want, rtol=1e-6)


def test_bad_arguments_are_errors_not_crashes():
    S = _stepper()
    rows = np.zeros((2, 10), dtype=np.float32)
    states = pcg64_states([1, 2])
    tok, lp = np.zeros(2, dtype=np.int64), np.zeros(2)
    slots = np.arange(2, dtype=np.int64)
    ok = (rows, 10, 10, 0, 2, b"", slots, 1.0, 1.0, 5, 0.9, 0.0, states, tok, lp)
    S.sample_rows(*ok)

    def call(**change):
        names = ["logits", "n_vocab", "stride", "lo", "hi", "seen", "slots", "penalty", "temperature", "top_k",
                 "top_p", "min_p", "states", "out_tok", "out_lp"]
        args = dict(zip(names, ok))
        args.update(change)
        S.sample_rows(*[args[k] for k in names])

    with pytest.raises(ValueError, match="logits"):
        call(logits=rows[:1])
    with pytest.raises(ValueError, match="slot"):
        call(slots=np.array([0, 5], dtype=np.int64))
    with pytest.raises(ValueError, match="seen"):
        call(seen=np.zeros(3, dtype=np.uint8), penalty=1.1)
    with pytest.raises(ValueError, match="parameters"):
        call(top_p=0.0)
    with pytest.raises(ValueError, match="parameters"):
        call(temperature=float("nan"))
    with pytest.raises(ValueError, match="out_tok"):
        call(out_tok=np.zeros(1, dtype=np.int64))
    with pytest.raises(ValueError):
        call(n_vocab=0)
    with pytest.raises(ValueError):
        call(lo=2, hi=1)
    with pytest.raises(ValueError):
        call(hi=2**62)  # sizes that would overflow
    with pytest.raises(ValueError):
        call(stride=11)
    with pytest.raises(TypeError):  # read-only output
        call(out_lp=bytes(16))
    with pytest.raises(ValueError, match="out"):
        S.lse_rows(rows, 10, 2, np.zeros(1))


def test_run_steps_closes_and_starts_samples_without_decoding_and_refuses_bad_arguments():
    """run_steps (a lone job's steps in C) draws what sample_rows draws and records the draws; a
    closed sample is copied out, its slot takes the next prepared sample (its first token drawn
    from the prompt's row with that sample's PCG64 state, its seen row reset to the prompt's),
    and a slot with no sample left is listed free; a step with nothing going returns before any
    llama_decode; bad arguments are errors, not crashes. The llama.cpp handles here are never
    called (no decode happens); the cell removal is libc's getpid, which ignores its arguments."""
    import ctypes

    S = _stepper()
    V, W, cap = 16, 3, 8
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(2, V)).astype(np.float32)
    prow = rng.normal(size=V).astype(np.float32)
    dummy = np.zeros(8, dtype=np.uint64)
    getpid = ctypes.cast(ctypes.CDLL(None).getpid, ctypes.c_void_p).value
    handles = np.array([1, 1, 1, dummy.ctypes.data, 0, 0, getpid, 1], dtype=np.uint64)

    def args(**change):
        a = dict(handles=handles, logits=rows, n_vocab=V, n_rows=2, seen=np.zeros((W, V), dtype=np.uint8),
                 slots=np.array([0, 2, 0], dtype=np.int64), penalty=1.2, temperature=1.0, top_k=5, top_p=0.9,
                 min_p=0.0, states=pcg64_states([1, 2, 3]), out_tok=np.zeros(W, dtype=np.int64),
                 out_lp=np.zeros(W), length=np.zeros(W, dtype=np.int64), toks=np.zeros((W, cap), dtype=np.int64),
                 lps=np.zeros((W, cap)), cap=cap, npos=np.ones(W, dtype=np.int64), seqs=np.zeros(W, dtype=np.int32),
                 ends=np.full(V, 2, dtype=np.uint8), max_new=cap, index=np.array([5, 6, 7], dtype=np.int64),
                 prompt_row=prow, prompt_seen=np.array([1, 2], dtype=np.int64), next_states=b"", first_index=8,
                 may_drop=True, done=np.zeros((6, 3), dtype=np.int64), done_toks=np.zeros((6, cap), dtype=np.int64),
                 done_lps=np.zeros((6, cap)), free_left=np.zeros(W, dtype=np.int64),
                 started=np.zeros(0, dtype=np.int64), max_steps=100, max_seconds=1.0)
        a.update(change)
        return a

    def run(a):
        return S.run_steps(*a.values())

    def reference(src, stride, slots, states, seen):
        tok, lp = np.zeros(len(slots), dtype=np.int64), np.zeros(len(slots))
        S.sample_rows(src, V, stride, 0, len(slots), seen, np.array(slots, dtype=np.int64), 1.2, 1.0, 5, 0.9, 0.0,
                      states, tok, lp)
        return tok, lp

    # every token ends a sample, nothing prepared: both close (copied out), both slots left free
    tok, lp = reference(rows, V, [0, 2], pcg64_states([1, 2, 3]), np.zeros((W, V), dtype=np.uint8))
    a = args()
    assert run(a) == (0, 0.0, 0, 0, 2, 2, 0, 2)
    assert a["done"][:2].tolist() == [[5, 1, 2], [7, 1, 2]] and a["free_left"][:2].tolist() == [0, 2]
    assert a["done_toks"][:2, 0].tolist() == tok.tolist() and a["done_lps"][:2, 0].tolist() == lp.tolist()
    # two samples prepared: each freed slot takes one (index 8, 9), draws its first token from the
    # prompt's row with its own state and a seen row reset to the prompt's; both end at once and
    # no third is prepared
    nst = pcg64_states([40, 41])
    a = args(next_states=nst, started=np.zeros(2, dtype=np.int64))
    assert run(a) == (0, 0.0, 0, 0, 4, 4, 2, 2)
    assert a["started"].tolist() == [0, 2] and a["index"].tolist() == [8, 6, 9]
    assert a["done"][:4, 0].tolist() == [5, 7, 8, 9] and a["free_left"][:2].tolist() == [0, 2]
    seen0 = np.zeros((W, V), dtype=np.uint8)
    seen0[:, [1, 2]] = 1
    st3 = np.zeros((W, 4), dtype=np.uint64)
    st3[[0, 2]] = nst
    first, _ = reference(prow, 0, [0, 2], st3, seen0)
    assert a["done_toks"][2:4, 0].tolist() == first.tolist()
    for r, s in ((2, 0), (3, 2)):
        want = np.zeros(V, dtype=np.uint8)
        want[[1, 2, a["done_toks"][r, 0]]] = 1
        assert a["seen"][s].tolist() == want.tolist()
    # no rows, two slots to start (a job's first samples): as the two freed slots above
    a = args(n_rows=0, next_states=nst, started=np.zeros(2, dtype=np.int64), done=np.zeros((6, 3), dtype=np.int64))
    assert S.run_steps(*a.values(), 1, np.array([0, 2], dtype=np.int64)) == (0, 0.0, 0, 0, 2, 2, 2, 2)
    assert a["started"].tolist() == [0, 2] and a["index"].tolist() == [8, 6, 9]
    assert a["done"][:2, 0].tolist() == [8, 9] and a["done_toks"][:2, 0].tolist() == first.tolist()
    for bad in ([0, 0], [3], [2, 0], [-1]):
        with pytest.raises(ValueError, match="start slot"):
            S.run_steps(*args(n_rows=0, next_states=nst, started=np.zeros(2, dtype=np.int64)).values(), 1,
                        np.array(bad, dtype=np.int64))
    with pytest.raises(ValueError, match="start slot"):  # a row's slot
        S.run_steps(*args(next_states=nst, started=np.zeros(2, dtype=np.int64)).values(), 1,
                    np.array([0], dtype=np.int64))
    # no ending token and no decode allowed: one step recorded, both going, in slot order
    a = args(ends=np.zeros(V, dtype=np.uint8), max_steps=0)
    assert run(a) == (0, 0.0, 0, 2, 0, 2, 0, 0)
    assert a["out_tok"][:2].tolist() == tok.tolist() and a["slots"][:2].tolist() == [0, 2]
    assert a["length"].tolist() == [1, 0, 1] and a["toks"][[0, 2], 0].tolist() == tok.tolist()
    # the draws of a step on 4 threads (where built with OpenMP; one otherwise): the same
    a = args(ends=np.zeros(V, dtype=np.uint8), max_steps=0)
    assert S.run_steps(*a.values(), 4) == (0, 0.0, 0, 2, 0, 2, 0, 0)
    assert a["out_tok"][:2].tolist() == tok.tolist() and a["out_lp"][:2].tolist() == lp.tolist()

    for change, match in [(dict(handles=np.array([0, 1, 1, 1, 0, 0, 0, 0], dtype=np.uint64)), "null"),
                          (dict(handles=handles[:7]), "handles"),
                          (dict(next_states=nst, started=np.zeros(2, dtype=np.int64),
                                handles=np.array([1, 1, 1, dummy.ctypes.data, 0, 0, 0, 0], dtype=np.uint64)), "null"),
                          (dict(slots=np.array([0, 3, 0], dtype=np.int64)), "slot"),
                          (dict(slots=np.array([2, 0, 0], dtype=np.int64)), "ascending"),
                          (dict(length=np.full(W, cap, dtype=np.int64)), "tokens"),
                          (dict(length=np.zeros(2, dtype=np.int64)), "length"),
                          (dict(index=np.zeros(2, dtype=np.int64)), "index"),
                          (dict(toks=np.zeros((W, cap - 1), dtype=np.int64)), "toks"),
                          (dict(seqs=np.zeros(W, dtype=np.int16)), "seqs"),
                          (dict(ends=np.ones(V - 1, dtype=np.uint8)), "ends"),
                          (dict(prompt_row=prow[:-1]), "prompt_row"),
                          (dict(prompt_seen=np.array([V], dtype=np.int64)), "prompt_seen"),
                          (dict(done=np.zeros((1, 3), dtype=np.int64)), "done"),
                          (dict(done_toks=np.zeros((6, cap - 1), dtype=np.int64)), "done_toks"),
                          (dict(next_states=nst), "started"),
                          (dict(logits=rows[:1]), "logits"),
                          (dict(max_new=cap + 1), "max_new"),
                          (dict(n_rows=0), "rows"),
                          (dict(first_index=-1), "first_index"),
                          (dict(top_p=0.0), "parameters"),
                          (dict(seen=np.zeros(3, dtype=np.uint8)), "seen")]:
        with pytest.raises(ValueError, match=match):
            run(args(**change))
    with pytest.raises(TypeError):  # read-only output
        run(args(toks=bytes(W * cap * 8)))
    with pytest.raises(ValueError, match="threads"):
        S.run_steps(*args().values(), 0)


@settings(max_examples=150, deadline=None)
@given(vocab=st.integers(1, 300), n=st.integers(1, 6), top_k=st.integers(0, 320),
       temperature=st.sampled_from([0.0, 0.05, 0.7, 1.2, 50.0]), top_p=st.floats(0.01, 1.0),
       min_p=st.sampled_from([0.0, 0.3, 0.99]), penalty=st.sampled_from([0.5, 1.0, 1.05, 4.0]),
       special=st.sampled_from(["none", "inf", "neginf", "nan", "huge", "equal"]), seed=st.integers(0, 2**32))
def test_fuzz_every_row_gets_a_token_of_the_vocabulary(vocab, n, top_k, temperature, top_p, min_p, penalty,
                                                        special, seed):
    rng = np.random.default_rng(seed)
    rows = (rng.standard_normal((n, vocab)) * 5).astype(np.float32)
    if special == "inf":
        rows[:, rng.integers(0, vocab)] = np.inf
    elif special == "neginf":
        rows[:, : max(1, vocab - 1)] = -np.inf
    elif special == "nan":
        rows[:, rng.integers(0, vocab)] = np.nan
    elif special == "huge":
        rows *= np.float32(1e37)
    elif special == "equal":
        rows[:] = 0.5
    params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                            repetition_penalty=penalty)
    seen = [np.unique(rng.integers(0, vocab, size=3)) for _ in range(n)]
    seeds = [int(x) for x in rng.integers(0, 2**62, n)]
    got, lp, _ = _c_draws(rows, seen, params, seeds)
    assert ((got >= 0) & (got < vocab)).all()
    if special in ("none", "equal"):
        want, _ = _numpy_draws(rows, seen, params, seeds)
        assert got.tolist() == want.tolist()
        np.testing.assert_allclose(lp, log_softmax_at(rows, got), rtol=1e-5, atol=1e-5)


def _both_simd_paths():
    """The portable and the AVX2 code of the extension, in turn; skipped where the CPU has no AVX2."""
    S = _stepper()
    if S.simd(True) != "avx2":
        pytest.skip("this CPU has no AVX2: only the portable code runs")
    return S


@pytest.mark.parametrize("vocab", [1, 7, 16, 33, 1000, 20_000, 128_256])
def test_avx2_and_portable_code_give_bit_identical_results(vocab):
    """The AVX2 log-sum-exp and block scan must give exactly what the portable C gives (same
    operations in the same order), so a seed gives the same samples and perplexities on every x86
    machine: tokens, log-probabilities and generator states compared bit for bit, with infinities,
    NaN, ties and penalties on both sides of 1."""
    S = _both_simd_paths()
    rng = np.random.default_rng(vocab)
    n = 8
    try:
        for step in range(4):
            rows = (rng.standard_normal((n, vocab)) * rng.choice([0.5, 3.0, 30.0])).astype(np.float32)
            if step == 1:
                rows = np.round(rows)
            if step == 2 and vocab > 2:
                rows[0, rng.integers(0, vocab, 3)] = np.nan
                rows[1, : vocab // 2] = -np.inf
                rows[2, rng.integers(0, vocab)] = np.inf
            mask = (rng.random((n, vocab)) < 0.01).astype(np.uint8)
            for params in PARAMS:
                out = []
                for simd in (False, True):
                    S.simd(simd)
                    lse = np.zeros(n)
                    S.lse_rows(rows, vocab, n, lse)
                    states = pcg64_states(list(range(n)))
                    tok = np.zeros(n, dtype=np.int64)
                    lp = np.zeros(n)
                    S.sample_rows(rows, vocab, vocab, 0, n, mask, np.arange(n, dtype=np.int64),
                                  params.repetition_penalty, params.temperature, params.top_k, params.top_p,
                                  params.min_p, states, tok, lp)
                    out.append((lse.tobytes(), tok.tolist(), lp.tobytes(), states.tobytes()))
                assert out[0] == out[1], (step, params)
    finally:
        S.simd(True)


def test_simd_reports_the_code_in_use():
    S = _stepper()
    assert S.simd(False) == "portable"
    assert S.simd() == "portable"
    assert S.simd(True) in ("avx2", "portable")
