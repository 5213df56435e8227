"""Tuning knobs from the environment: a bad value never stops the engine."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("raw,expected", [(None, 7), ("12", 12), ("", 7), ("junk", 7), ("1e5", 7), ("\x00\xff", 7)])
def test_env_tuning_knobs_fall_back_to_the_default_on_bad_values(monkeypatch, raw, expected):
    from engine.env import env_int

    if raw is None:
        monkeypatch.delenv("LOGOS_TEST_KNOB", raising=False)
    else:
        monkeypatch.setenv("LOGOS_TEST_KNOB", raw.replace("\x00", ""))
    assert env_int("LOGOS_TEST_KNOB", 7) == expected
