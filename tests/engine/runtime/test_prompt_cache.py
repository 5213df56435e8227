"""A job whose prompt the slots still hold from the job before starts from those cells
(RuntimeOptions.prompt_cache, engine.runtime.slots.KeptPrompts): no prompt decode, no copy. On
the demonstration model (Q8_0: llama.cpp's results do not depend on the batch there) every job
must draw exactly what it draws with the cache off, whatever ran before it, and the kept cells
must be dropped as soon as anything else changes them."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.runtime.llama import Cancelled, Runtime, RuntimeOptions
from engine.runtime.sampling import SamplingParams

DEMO = Path(__file__).resolve().parents[3] / "resources" / "models" / "logos-demo-q8_0.gguf"
POCKET = "<ProteinS>MKTAYIAKQRQISFVKSHFSRQ<ProteinE><MoleculeS>"


@pytest.fixture(scope="module")
def rt():
    r = Runtime.load(DEMO, n_ctx=4096, n_threads=2, n_seq_max=9)
    yield r
    r.close()


def _job(rt, prompt, n, seed, *, cache=True, streams=True, score=True, max_new=40, fused=True, **kw):
    rt.options = RuntimeOptions(prompt_cache=cache, kv_streams=streams, fused_steps=fused)
    return rt.generate(prompt, n, SamplingParams(max_new_tokens=max_new), seed=seed, score_prompt=score,
                       stop_ids=[rt.token_id("<MoleculeE>")], **kw)


def _key(samples):
    return [(s.index, s.seed, s.tokens, s.stop, s.logprobs, s.ppl, s.ppl_output) for s in samples]


@pytest.mark.parametrize("n,streams,fused", [(8, True, True), (20, True, True), (1, True, True), (6, False, True),
                                             (20, False, True), (8, True, False), (1, True, False),
                                             (20, False, False)])
def test_a_repeated_prompt_starts_from_the_kept_cells_and_draws_what_it_draws_without_them(rt, n, streams, fused):
    """One KV stream per slot, more samples than slots (refilled), a single stream, the unified
    cache, steps in C and in Python: the second job of the same prompt reuses the cells, and its
    samples (tokens, log-probabilities, perplexities with the prompt's) are those of the same job
    with the cache off, after a job of another prompt."""
    _job(rt, "<MoleculeS>C", 3, 0, cache=False, streams=streams)  # other cells in the context
    off, st_off = _job(rt, POCKET, n, 7, cache=False, streams=streams, fused=fused)
    assert not st_off.prompt_reused and st_off.prompt_s > 0
    first, st1 = _job(rt, POCKET, n, 6, streams=streams, fused=fused)
    assert not st1.prompt_reused  # the cells of the job before hold the same prompt, but the option was off then
    again, st2 = _job(rt, POCKET, n, 7, streams=streams, fused=fused)
    assert st2.prompt_reused and st2.prompt_s == 0.0
    assert _key(again) == _key(off)
    assert len({tuple(s.tokens) for s in again}) > 1 or n == 1
    if n > 8:
        assert st2.refills > 0
    assert (st2.steps_in_c > 0) == fused
    third, st3 = _job(rt, POCKET, n, 6, streams=streams, fused=fused)  # kept again by the job that reused them
    assert st3.prompt_reused and _key(third) == _key(first)


def test_fewer_and_more_slots_of_the_same_unified_cache_reuse_the_prompt(rt):
    """In the unified cache the slot count follows the job: a job of 3 after one of 8 drops the
    other sequences' cells (they are everyone's room); a job of 8 after one of 3 copies the prompt
    into the sequences that do not hold it."""
    want = {n: _key(_job(rt, POCKET, n, 40 + n, cache=False, streams=False)[0]) for n in (3, 8)}
    _job(rt, POCKET, 8, 1, streams=False)
    small, st = _job(rt, POCKET, 3, 43, streams=False)
    assert st.prompt_reused and _key(small) == want[3]
    big, st = _job(rt, POCKET, 8, 48, streams=False)
    assert st.prompt_reused and _key(big) == want[8]


def test_sequences_a_job_does_not_use_give_their_cells_back():
    """In a unified cache every sequence's cells take the one budget: a job of 2 long samples after
    a job of 8 short ones needs the cells the 6 sequences it does not use held."""
    r = Runtime.load(DEMO, n_ctx=1024, n_threads=2, n_seq_max=9)
    try:
        _job(r, POCKET, 8, 1, streams=False)
        r.options = RuntimeOptions(kv_streams=False)
        n_prompt = len(r.tokenize(POCKET))
        long, st = r.generate(POCKET, 2, SamplingParams(max_new_tokens=(1024 - n_prompt) // 2), seed=2,
                              stop_ids=[], ignore_eos=True)
        assert st.prompt_reused and st.max_batch == 2
        assert [len(s.tokens) for s in long] == [st.max_new_tokens] * 2 and n_prompt + 2 * st.max_new_tokens > 900
    finally:
        r.close()


def test_the_kept_prompt_is_dropped_when_anything_changes_the_cells(rt):
    want = _key(_job(rt, POCKET, 8, 3, cache=False)[0])
    _job(rt, POCKET, 8, 1)
    # another prompt: evaluated; the one before it is no longer held
    _, st = _job(rt, "<MoleculeS>CC", 8, 1)
    assert not st.prompt_reused
    got, st = _job(rt, POCKET, 8, 3)
    assert not st.prompt_reused and _key(got) == want
    # a decode between the jobs (here the perplexity pass, in the loop's thread)
    rt.token_logprobs(rt.tokenize(POCKET))
    got, st = _job(rt, POCKET, 8, 3)
    assert not st.prompt_reused and _key(got) == want
    # another KV layout (a single stream needs no per-sequence streams): another context
    _job(rt, POCKET, 1, 9)
    got, st = _job(rt, POCKET, 8, 3)
    assert not st.prompt_reused and _key(got) == want
    # the prompt kept without its log-probabilities cannot serve a job that asks for them...
    _job(rt, POCKET, 8, 1, score=False)
    got, st = _job(rt, POCKET, 8, 3)
    assert not st.prompt_reused and _key(got) == want
    # ...the other way round it can (the tokens are the same; the perplexity leaves the prompt out)
    plain, st = _job(rt, POCKET, 8, 3, score=False)
    assert st.prompt_reused and [s.tokens for s in plain] == [w[2] for w in want]
    # the option off: evaluated
    _, st = _job(rt, POCKET, 8, 3, cache=False)
    assert not st.prompt_reused


def test_after_a_cancelled_job_the_next_one_draws_what_it_draws_alone(rt):
    """A job cancelled half-way (llama.cpp's abort flag stops its decode) leaves no kept cells that
    could be half-written; the next job of the same prompt draws its own samples."""
    want = _key(_job(rt, POCKET, 8, 5, cache=False, max_new=120)[0])
    _job(rt, POCKET, 8, 4, max_new=120)
    cancel = threading.Event()
    seen = []

    def on_sample(s):
        seen.append(s)
        cancel.set()

    with pytest.raises(Cancelled):
        _job(rt, POCKET, 200, 4, max_new=120, cancel=cancel, on_sample=on_sample)
    got, st = _job(rt, POCKET, 8, 5, max_new=120)
    assert _key(got) == want


def test_the_environment_turns_the_cache_off():
    assert RuntimeOptions.from_mapping({"LOGOS_PROMPT_CACHE": "0"}).prompt_cache is False
    assert RuntimeOptions.from_mapping({}).prompt_cache is True
