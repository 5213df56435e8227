"""Sampling order and parity with the reference pipeline's logits processors (transformers)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.runtime.sampling import REFERENCE_DEFAULTS, SamplingParams, distribution, sample_row, sample_seed
from tests.fixtures.required import require_module


def _hf_probs(logits: np.ndarray, seen: np.ndarray, p: SamplingParams) -> np.ndarray:
    torch = require_module("torch")
    from transformers.generation.logits_process import (
        LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
        TopPLogitsWarper,
    )

    procs = LogitsProcessorList([
        RepetitionPenaltyLogitsProcessor(p.repetition_penalty),
        TemperatureLogitsWarper(p.temperature),
        TopKLogitsWarper(p.top_k),
        TopPLogitsWarper(p.top_p),
    ])
    ids = torch.tensor(seen[None, :], dtype=torch.long)
    scores = procs(ids, torch.tensor(logits[None, :], dtype=torch.float32))
    return torch.softmax(scores, dim=-1)[0].double().numpy()


@pytest.mark.parametrize("case", range(6))
def test_distribution_matches_transformers_processors(case):
    rng = np.random.default_rng(case)
    vocab = 300
    logits = (rng.standard_normal(vocab) * (1 + case)).astype(np.float32)
    seen = np.unique(rng.integers(0, vocab, size=40))
    params = SamplingParams(temperature=[1.2, 0.7, 1.0][case % 3], top_k=[50, 10, 0][case % 3] or 50,
                            top_p=[0.85, 0.95, 0.5][case % 3], repetition_penalty=[1.05, 1.3, 1.0][case % 3])
    cand, probs = distribution(logits, seen, params)
    ours = np.zeros(vocab)
    ours[cand] = probs
    ref = _hf_probs(logits, seen, params)
    assert set(np.flatnonzero(ref > 0)) == set(cand.tolist())
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_reference_defaults_and_unknown_fields():
    p = SamplingParams.from_dict(None)
    assert (p.temperature, p.top_k, p.top_p, p.min_p, p.repetition_penalty) == (1.2, 50, 0.85, 0.0, 1.05)
    assert REFERENCE_DEFAULTS["min_p"] == 0.0
    with pytest.raises(ValueError, match="unknown sampling field.*top_q"):
        SamplingParams.from_dict({"top_q": 0.9})
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams.from_dict({"top_p": 1.5})
    base = SamplingParams.from_dict({"max_new_tokens": 64})
    assert SamplingParams.from_dict({"temperature": 0.5}, base=base).max_new_tokens == 64


def test_penalty_divides_positive_multiplies_negative():
    logits = np.array([2.0, -2.0, 1.0, 0.5], dtype=np.float32)
    p = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=2.0)
    cand, probs = distribution(logits, np.array([0, 1]), p)
    expect = np.exp(np.array([1.0, -4.0, 1.0, 0.5]))
    expect /= expect.sum()
    full = np.zeros(4)
    full[cand] = probs
    np.testing.assert_allclose(full, expect, rtol=1e-6)


def test_min_p_and_mask_and_greedy():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))
    p = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.2, repetition_penalty=1.0)
    cand, _ = distribution(logits, np.array([], dtype=np.int64), p)
    assert sorted(cand.tolist()) == [0, 1, 2]  # 0.05 < 0.2 * 0.5
    mask = np.array([False, True, True, True])
    cand, _ = distribution(logits, np.array([], dtype=np.int64), p, mask)
    assert 0 not in cand.tolist()
    g = SamplingParams(temperature=0.0)
    assert sample_row(logits, np.array([], dtype=np.int64), g, np.random.default_rng(0)) == 0


def test_seeded_draws_repeat_and_differ_between_samples():
    rng_logits = np.random.default_rng(1).standard_normal(500).astype(np.float32)
    p = SamplingParams()
    seen = np.array([], dtype=np.int64)
    a = [sample_row(rng_logits, seen, p, np.random.default_rng(sample_seed(7, i))) for i in range(20)]
    b = [sample_row(rng_logits, seen, p, np.random.default_rng(sample_seed(7, i))) for i in range(20)]
    assert a == b
    assert len(set(a)) > 1
    assert sample_seed(7, 0) != sample_seed(7, 1) != sample_seed(8, 0)


@pytest.mark.parametrize("params", [
    SamplingParams(),
    SamplingParams(temperature=0.8, top_k=5, top_p=0.5, repetition_penalty=1.3),
    SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.1, repetition_penalty=1.0),
    SamplingParams(temperature=0.0),
])
def test_batch_sampler_draws_what_the_row_sampler_draws(params):
    from engine.runtime.sampling import sample_batch

    rng = np.random.default_rng(3)
    n, vocab = 12, 700
    rows = (rng.standard_normal((n, vocab)) * 3).astype(np.float32)
    rows[0, :60] = rows[0, 0]  # a row full of ties at the top
    seen = [np.unique(rng.integers(0, vocab, size=int(rng.integers(0, 50)))) for _ in range(n)]
    masks = [None] * n
    masks[2] = np.zeros(vocab, dtype=bool)
    masks[2][[5, 9, 11]] = True
    for step in range(5):
        a = sample_batch(rows, seen, params, [np.random.default_rng(sample_seed(step, j)) for j in range(n)], masks)
        b = [sample_row(rows[j], seen[j], params, np.random.default_rng(sample_seed(step, j)), masks[j])
             for j in range(n)]
        assert a.tolist() == b
        assert a[2] in (5, 9, 11)


@pytest.mark.parametrize("field,value", [
    ("temperature", float("nan")), ("temperature", float("inf")), ("repetition_penalty", float("nan")),
    ("repetition_penalty", float("inf")), ("top_p", float("nan")), ("min_p", float("nan")),
    ("temperature", 1e300), ("repetition_penalty", 1e300),
])
def test_non_finite_or_huge_sampling_values_are_refused(field, value):
    """A NaN temperature or penalty fails every comparison, so it used to pass ``check`` and the
    sampler drew from a NaN distribution."""
    with pytest.raises(ValueError, match=field):
        SamplingParams(**{field: value}).check()
    with pytest.raises(ValueError, match=field):
        SamplingParams.from_dict({field: value})
    with pytest.raises(ValueError, match=field):
        SamplingParams.from_dict({field: str(value)})


@pytest.mark.parametrize("data,words", [
    ({"top_k": True}, "must be a number"), ({"top_k": 2.5}, "whole number"), ({"max_new_tokens": [3]}, "number"),
    ({"temperature": {"a": 1}}, "number"), ({"max_new_tokens": 10**30}, "max_new_tokens must be <="),
])
def test_sampling_types_are_checked(data, words):
    with pytest.raises(ValueError, match=words):
        SamplingParams.from_dict(data)
    assert SamplingParams.from_dict({"top_k": 10.0, "temperature": "0.7"}) == SamplingParams(top_k=10, temperature=0.7)
