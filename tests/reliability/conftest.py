"""Shared fixtures of the reliability tests: the seeded fuzz corpus, the bounded worker pool and
the report of measured figures.

Budget: ``LOGOS_FUZZ_N`` cases (default 1,000: the CI budget, ~100 per reader), ``LOGOS_FUZZ_SEED``
(default 20261126), ``LOGOS_FUZZ_TIMEOUT`` seconds per case (default 60; a case over it is a hang),
``LOGOS_FUZZ_WORKERS`` processes (default 2). ``LOGOS_RELIABILITY_REPORT=FILE`` writes every figure
as JSON; a short table is printed at the end of the run either way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.reliability import mutations

_REPORT: dict = {}


def record(section: str, figures: dict) -> None:
    """Add measured figures to the run's report (printed at the end, JSON if asked)."""
    _REPORT.setdefault(section, {}).update(figures)


@pytest.fixture(scope="session")
def fuzz_corpus(tmp_path_factory):
    """[(Case, Path)] written once per session."""
    cases = mutations.corpus()
    folder = tmp_path_factory.mktemp("fuzz-corpus")
    paths = mutations.write_corpus(folder, cases)
    return [(c, paths[c.id]) for c in cases]


@pytest.fixture(scope="session")
def fuzz_pool():
    from tests.reliability.pool import WorkerPool

    timeout = float(os.environ.get("LOGOS_FUZZ_TIMEOUT", "60"))
    workers = int(os.environ.get("LOGOS_FUZZ_WORKERS", "2"))
    pool = WorkerPool(workers=workers, timeout=timeout)
    seeds = [mutations.DATA / s for files in mutations.SEEDS.values() for s in files]
    warm = pool.warm_up(seeds)
    bad = [(str(s), a) for s, a in zip(seeds * len(pool.workers), warm) if a["outcome"] != "loaded"]
    if bad:
        pool.close()
        pytest.fail(f"seed files must load cleanly before they are mutated: {bad}")
    yield pool
    pool.close()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _REPORT:
        return
    tr = terminalreporter
    tr.section("reliability figures")
    for section, figures in _REPORT.items():
        tr.write_line(f"{section}: {json.dumps(figures, sort_keys=True, default=str)}")
    out = os.environ.get("LOGOS_RELIABILITY_REPORT")
    if out:
        Path(out).write_text(json.dumps(_REPORT, indent=1, sort_keys=True, default=str))
        tr.write_line(f"written to {out}")
