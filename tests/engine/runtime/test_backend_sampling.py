"""llama.cpp's backend sampling (engine.runtime.backend_sampling) on the CPU backend, on the bundled
demonstration model, against the host sampler.

The comparison is by distribution: the backend's draws come from llama.cpp's mt19937, the host
sampler's from PCG64, so the tokens differ seed for seed. Each run draws 10,000 tokens on the
backend (50 slots x 50 samples x 4 tokens after the first, every sample restarted in its slot
with its own seed, its penalty history the prompt and its own tokens). For every draw the exact
reference distribution (engine.runtime.sampling.distribution: penalty, temperature, top-k,
top-p, on the raw logits of that very decode) is added to the expected counts; the observed
counts must pass a chi-square test at p = 1e-6, and the number of draws that repeat a token the
sample drew before (not in the prompt) its expectation within 5 standard deviations: the
marginal counts hardly see the penalty of a sample's own tokens, this count does. Seeds are fixed:
the test is deterministic. The compiled host sampler passes the same test on the same harness;
chains in a wrong order, without the penalty, or that never accept the drawn tokens fail it. The raw logits of every decode reach the host through one extra
output of a sequence without a backend sampler (llama.cpp then copies the logits of the whole
batch), so each backend log-probability is checked against log_softmax(raw)[token] to 1e-4.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.runtime import backend_sampling as bs
from engine.runtime import drawers, native
from engine.runtime.draw import LogosDrawer
from engine.runtime.drawers import DrawerSetup, HostWork
from engine.runtime.sampling import SamplingParams, distribution, sample_seed

MODEL = Path(__file__).resolve().parents[3] / "resources" / "models" / "logos-demo-q8_0.gguf"
PROMPT = "<ProteinS>MKTAYIAKQRQISFVKSHFSRQ"
WIDTH = 50  # slots
SAMPLES_PER_SLOT = 50
STEPS = 4  # backend draws per sample (after its first token, drawn from the prompt row)
P_FAIL = 1e-6
Z_FAIL = 5.0  # the repeat count's bound in standard deviations (two-sided p 6e-7)
REFERENCE = SamplingParams()  # temperature 1.2, top-k 50, top-p 0.85, repetition penalty 1.05
# a stronger penalty and a higher temperature: what a missing or misplaced sampler changes shows
# clearly (at the reference settings a missing penalty gives chi2 215 against a bound of 145, but
# temperature after top-p only 110 against 148)
STRONG = SamplingParams(repetition_penalty=1.5, temperature=2.0)


class Handles:
    def __init__(self) -> None:
        from engine.runtime._internals import LlamaContext, LlamaModel
        from engine.runtime.native import AbortFlag

        self.ll = ll = native._llama()
        native._backend_init(ll)
        self.model = LlamaModel.load(ll, MODEL, 0, lambda _f: True)
        assert self.model is not None, native.recent_log(5)
        self.ctx = LlamaContext(self.model, AbortFlag(ll), WIDTH + 1)
        self.ctx.open(4096, WIDTH + 1, True, WIDTH + 1, 1)
        self.n_vocab = self.model.n_vocab
        self.prompt = self.model.tokenize(PROMPT, True, True)
        self.host = HostWork(1, 1 << 40, self.n_vocab)

    def close(self) -> None:
        self.ctx.free()
        self.model.close()


@pytest.fixture(scope="module")
def h():
    if not MODEL.is_file():
        pytest.fail(f"the demonstration model is missing: {MODEL}")
    handles = Handles()
    yield handles
    handles.close()


def _setup(h: Handles, params: SamplingParams, seed: int, seqs: list[int], row: np.ndarray) -> DrawerSetup:
    return DrawerSetup(params=params, seeds=[sample_seed(seed, i) for i in range(len(seqs))],
                       prompt_seen=np.unique(np.array(h.prompt, dtype=np.int64)), prompt_row=row.copy(),
                       lse_prompt=float(h.host.lse(row[None, :])[0]), n_vocab=h.n_vocab, host=h.host,
                       context=h.ctx, model=h.model, window=h.ctx.n_ctx_seq, extra={"seqs": list(seqs)})


def _prompt_row(h: Handles) -> np.ndarray:
    ctx, p = h.ctx, h.prompt
    ctx.clear()
    ctx.decode(p, list(range(len(p))), [0] * len(p), [0] * (len(p) - 1) + [1])
    row = ctx.logits_last().copy()
    for s in range(1, WIDTH + 1):
        ctx.seq_cp(0, s)
    return row


def run(h: Handles, make, params: SamplingParams, seed: int = 7) -> dict:
    """Drive a drawer as a job does (restarts, first tokens from the prompt row, one decode per
    step for every slot) and collect its draws, the expected counts and the log-probability error."""
    ctx, W, n_prompt = h.ctx, WIDTH, len(h.prompt)
    row = _prompt_row(h)
    seqs = list(range(1, W + 1))
    drawer = make(_setup(h, params, seed, seqs, row))
    counts = np.zeros(h.n_vocab)
    expected = np.zeros(h.n_vocab)
    lp_err = 0.0
    repeats = [0.0, 0.0, 0.0]  # drawn again (a token the sample drew before, not in the prompt): observed, expected, variance
    prompt_seen = np.unique(np.array(h.prompt, dtype=np.int64))
    live = np.arange(W)
    index = W
    try:
        for rnd in range(SAMPLES_PER_SLOT):
            if rnd:
                for s in range(W):
                    ctx.seq_rm(seqs[s], n_prompt)
                    drawer.restart(s, sample_seed(seed, index))
                    index += 1
            tok, lp = drawer.draw(None, live)
            lp_err = max(lp_err, float(np.abs(lp - (row[tok] - h.host.lse(row[None, :])[0])).max()))
            seen = [set(prompt_seen.tolist()) | {int(t)} for t in tok]
            for step in range(STEPS):
                # one more output in sequence 0 (no sampler): llama.cpp copies the raw logits
                ctx.decode(list(tok) + [h.prompt[-1]], [n_prompt + step] * W + [n_prompt], seqs + [0], True)
                ctx.seq_rm(0, n_prompt)
                rows = ctx.logits(W + 1)[:W].copy()
                tok, lp = drawer.draw(rows, live)
                ref = rows[np.arange(W), tok].astype(np.float64) - h.host.lse(rows)
                lp_err = max(lp_err, float(np.abs(lp - ref).max()))
                for j in range(W):
                    cand, probs = distribution(rows[j], np.array(sorted(seen[j]), dtype=np.int64), params)
                    expected[cand] += probs
                    counts[tok[j]] += 1
                    own = seen[j].difference(prompt_seen.tolist())
                    p_again = float(probs[np.isin(cand, list(own))].sum()) if own else 0.0
                    repeats[0] += int(tok[j]) in own
                    repeats[1] += p_again
                    repeats[2] += p_again * (1 - p_again)
                    seen[j].add(int(tok[j]))
    finally:
        drawer.close()
        for s in seqs:
            ctx.seq_rm(s)
    return {"counts": counts, "expected": expected, "lp_err": lp_err,
            "repeat_z": (repeats[0] - repeats[1]) / max(repeats[2], 1e-9) ** 0.5}


def chi_square(counts: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """(statistic, bound at P_FAIL): tokens expected at least 5 times are their own bins, the
    rest (tokens the reference never draws included) one bin."""
    from scipy.stats import chi2

    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], max(expected[~big].sum(), 1e-9))
    stat = float(((obs - exp) ** 2 / exp).sum())
    return stat, float(chi2.isf(P_FAIL, len(obs) - 1))


def backend(order=bs.DEFAULT_ORDER):
    return lambda setup: bs.BackendDrawer(setup, order=order)


def test_the_reference_chain_runs_whole_on_the_cpu_backend(h):
    _prompt_row(h)
    ctx_ptr = bs.ctypes.cast(h.ctx.ptr, bs.ctypes.c_void_p).value
    sup = bs.probe(h.ll, ctx_ptr, 1, REFERENCE, h.n_vocab, h.ctx.n_ctx_seq)
    assert sup.ok, sup.why
    assert sup.names == ["logos-raw", "+penalties", "+temp", "+top-k", "+top-p", "+dist", "logos-logp"]
    assert "penalties, temp, top-k, top-p, dist" in sup.text()
    # a grammar sampler has no backend implementation: llama.cpp refuses it in its own words
    nat = bs.natives(h.ll)
    g = bs.ctypes.cast(h.ll.llama_sampler_init_grammar(h.model.vocab, b'root ::= "A"', b"root"),
                       bs.ctypes.c_void_p).value
    assert not nat.set_sampler(ctx_ptr, 1, g)
    nat.sampler_free(g)
    assert any("sampler 'grammar' for seq_id = 1, cannot be offloaded to the backend" in ln
               for ln in native.recent_log(5)), native.recent_log(5)
    setup = _setup(h, REFERENCE, 1, list(range(1, WIDTH + 1)), np.zeros(h.n_vocab, dtype=np.float32))
    assert drawers.usable("backend", setup)
    setup.grammar = 'root ::= "A"'
    assert not drawers.usable("backend", setup)


def test_penalties_stay_on_the_host_with_several_outputs_per_sequence(h):
    """llama.cpp's penalty sampler runs on the backend only with one output per sequence and
    step; a context made for more (speculative decoding) cannot run the reference chain there:
    the probe says which sampler and the drawer is not offered."""
    ll = h.ll
    cp = ll.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = 512, 8, 8, 2
    cp.n_outputs_max_per_seq = 2
    ptr = ll.llama_init_from_model(h.model.ptr, cp)
    assert ptr
    try:
        ctx_ptr = bs.ctypes.cast(ptr, bs.ctypes.c_void_p).value
        sup = bs.probe(ll, ctx_ptr, 1, REFERENCE, h.n_vocab, 256)
        assert not sup.ok
        assert sup.names[1] == "-penalties"  # and so nothing after it runs on the backend
        assert "penalties" in sup.why and "compiled sampler draws" in sup.text()
        no_penalty = bs.probe(ll, ctx_ptr, 1, SamplingParams(repetition_penalty=1.0), h.n_vocab, 256)
        assert no_penalty.ok, no_penalty.why  # without a penalty the rest of the chain still runs there
    finally:
        ll.llama_free(ptr)


@pytest.mark.parametrize("params", [REFERENCE, STRONG], ids=["reference", "penalty-1.5"])
def test_backend_draws_have_the_host_samplers_distribution_and_perplexity(h, params):
    got = run(h, backend(), params)
    assert got["counts"].sum() == WIDTH * SAMPLES_PER_SLOT * STEPS >= 10_000
    stat, bound = chi_square(got["counts"], got["expected"])
    assert stat < bound, f"backend draws off the reference distribution: chi2 {stat:.1f} >= {bound:.1f}"
    assert abs(got["repeat_z"]) < Z_FAIL, f"backend repeats a sample's own tokens off the reference: z {got['repeat_z']:.1f}"
    assert got["lp_err"] < 1e-4, got["lp_err"]
    # the compiled host sampler on the same harness passes the same test
    host = run(h, LogosDrawer, params)
    hstat, hbound = chi_square(host["counts"], host["expected"])
    assert hstat < hbound, f"host draws: chi2 {hstat:.1f} >= {hbound:.1f}"
    assert abs(host["repeat_z"]) < Z_FAIL
    assert host["lp_err"] < 1e-4


WRONG = {
    "top-p before top-k": ("penalties", "temp", "top-p", "top-k", "dist"),
    "no penalty": ("temp", "top-k", "top-p", "dist"),
    "temperature after top-p": ("penalties", "top-k", "top-p", "temp", "dist"),
}


class _Forgetful:
    """The bound functions, except that accepting a token does nothing."""

    def __init__(self, nat) -> None:
        self._nat = nat

    def __getattr__(self, name):
        return (lambda *_a: None) if name == "sampler_accept" else getattr(self._nat, name)


def forgetful(setup):
    """A drawer whose chains never accept the drawn tokens: the penalty forgets each sample's
    own tokens (its history stays the prompt)."""
    d = bs.BackendDrawer(setup)
    d.nat = _Forgetful(d.nat)
    return d


@pytest.mark.parametrize("name", [*WRONG, "drawn tokens not accepted"])
def test_a_wrong_chain_fails_the_same_test(h, name):
    got = run(h, backend(WRONG[name]) if name in WRONG else forgetful, STRONG)
    stat, bound = chi_square(got["counts"], got["expected"])
    z = got["repeat_z"]
    assert stat > bound or abs(z) > Z_FAIL, (f"{name}: chi2 {stat:.1f} < {bound:.1f} and z {z:.1f}: "
                                             "the test would not see this mistake")
    assert got["lp_err"] < 1e-4  # the log-probability is the model's own, whatever the chain


def test_backend_drawer_restarts_give_each_seed_its_own_stream(h):
    """Two runs with the same seeds give the same tokens; another seed gives others."""
    a = run_tokens(h, 3)
    assert a == run_tokens(h, 3)
    assert a != run_tokens(h, 4)


def run_tokens(h: Handles, seed: int) -> list[int]:
    """Tokens of 4 samples of 7 tokens each (the first drawn from the prompt row)."""
    ctx, n_prompt, W = h.ctx, len(h.prompt), 4
    row = _prompt_row(h)
    seqs = list(range(1, W + 1))
    d = bs.BackendDrawer(_setup(h, REFERENCE, seed, seqs, row))
    out: list[int] = []
    try:
        live = np.arange(W)
        tok, _ = d.draw(None, live)
        out += tok.tolist()
        for step in range(6):
            ctx.decode(list(tok), [n_prompt + step] * W, seqs, True)
            tok, _ = d.draw(np.empty((W, 0), np.float32), live)  # rows are not read
            out += tok.tolist()
    finally:
        d.close()
        for s in seqs:
            ctx.seq_rm(s)
    return out


def test_runtime_with_sampler_backend_draws_in_the_graph_and_keeps_the_perplexity():
    """The opt-in through RuntimeOptions (LOGOS_SAMPLER=backend at the edge): a job's samples
    are drawn by the backend drawer, their perplexities equal a separate scoring pass, the same
    seed gives the same samples, and the default stays the compiled sampler."""
    from engine.runtime.llama import Runtime
    from engine.runtime.options import RuntimeOptions

    assert RuntimeOptions().sampler == "logos"
    assert RuntimeOptions.from_mapping({"LOGOS_SAMPLER": "backend"}).sampler == "backend"
    rt = Runtime.load(MODEL, n_ctx=2048, n_threads=1, n_seq_max=9, options=RuntimeOptions(sampler="backend"))
    try:
        prompt = "<ProteinS>MK"
        params = SamplingParams(max_new_tokens=24)
        samples, stats = rt.generate(prompt, 12, params, seed=5)  # 12 samples in 8 slots: refills
        assert stats.sampler == "llama.cpp backend sampler" and not stats.notes, (stats.sampler, stats.notes)
        assert len(samples) == 12
        ptoks = rt.tokenize(prompt)
        # a separate pass decodes prompt and sample in one batch, the job decoded them a token a
        # step beside other slots: llama.cpp's CPU kernels round differently. With the demonstration
        # model of 2026-12-05 the compiled host sampler's perplexities are 1.1e-3 from that pass at
        # worst and the backend's 1.4e-3; same tokens give the same perplexity to 1e-4 (greedy below)
        for s in samples:
            lp = rt.token_logprobs(ptoks + s.tokens)
            assert s.ppl == pytest.approx(float(np.exp(-np.mean(lp))), rel=3e-3)
            assert s.ppl_output == pytest.approx(float(np.exp(-np.mean(lp[len(ptoks) - 1:]))), rel=3e-3)
        again, _ = rt.generate(prompt, 12, params, seed=5)
        assert [s.tokens for s in again] == [s.tokens for s in samples]
        # greedy (temperature 0): penalty then argmax in the graph give the compiled sampler's tokens
        host = Runtime.load(MODEL, n_ctx=2048, n_threads=1, n_seq_max=9)
        try:
            for p in (SamplingParams(temperature=0, max_new_tokens=30),
                      SamplingParams(temperature=0, repetition_penalty=1.3, max_new_tokens=30)):
                g_backend, st = rt.generate(prompt, 3, p, seed=1)
                g_host, _ = host.generate(prompt, 3, p, seed=1)
                assert st.sampler == "llama.cpp backend sampler"
                assert [s.tokens for s in g_backend] == [s.tokens for s in g_host]
                assert [s.ppl for s in g_backend] == pytest.approx([s.ppl for s in g_host], rel=1e-4)
        finally:
            host.close()
        # a grammar job is not the backend's: the grammar drawer serves it, nothing to note
        _, gstats = rt.generate("<MoleculeS>", 2, SamplingParams(max_new_tokens=4), seed=1,
                                grammar='root ::= "C" "C"*')
        assert gstats.sampler != "llama.cpp backend sampler"
    finally:
        rt.close()
