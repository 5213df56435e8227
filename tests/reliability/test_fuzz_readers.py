"""Fuzzing every structure reader and ``logos encode`` with seeded mutations of real files.

Each case runs in a worker process with a time bound (tests/reliability/pool.py): a crash or a hang
cannot take pytest down and is counted as what it is. A case passes when the file either loads
(and every object gives a summary and an atom table with finite coordinates, which is what the 3D
view draws) or is rejected with a message that names the file. Anything else (another exception,
a traceback, a crash, a hang, NaN coordinates accepted) is a defect listed by case id; rebuild a
case with ``python -m tests.reliability.mutations OUT N`` and the same ``LOGOS_FUZZ_SEED``.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys

import pytest

from tests.fixtures.required import missing
from tests.reliability import mutations
from tests.reliability.conftest import record

BAD = ("error", "crash", "hang")


def _tally(pairs) -> dict:
    table: dict = collections.defaultdict(collections.Counter)
    for case, ans in pairs:
        table[case.reader][ans["outcome"]] += 1
    return {r: dict(c) for r, c in table.items()}


def _defects(pairs) -> list[str]:
    out = []
    for case, ans in pairs:
        outcome = ans["outcome"]
        if outcome in BAD:
            why = ans.get("message", "")
            tail = (ans.get("traceback") or ans.get("stderr_tail") or "").strip().splitlines()[-1:]
            out.append(f"{case.id} ({case.seed_file}): {outcome}: {why} {' '.join(tail)}")
        elif outcome == "loaded" and ans.get("nonfinite"):
            out.append(f"{case.id} ({case.seed_file}): loaded with {ans['nonfinite']} atom(s) at NaN/infinite "
                       "coordinates and no message")
        elif outcome == "rejected" and not (ans.get("message") and ans.get("path_in_message")):
            out.append(f"{case.id}: rejected without a message naming the file: {ans.get('message')!r}")
    return out


def test_corpus_is_seeded_reproducible_and_covers_every_reader_and_kind():
    a = mutations.corpus(60, seed=7)
    b = mutations.corpus(60, seed=7)
    c = mutations.corpus(60, seed=8)
    assert [x.data for x in a] == [x.data for x in b]
    assert [x.data for x in a] != [x.data for x in c]
    full = mutations.corpus()
    assert len(full) >= min(mutations.budget(), mutations.DEFAULT_N)
    assert {x.reader for x in full} == set(mutations.READERS)
    assert {x.kind for x in full} == set(mutations.KINDS)
    seeds = {x.seed_file for x in full}
    assert seeds == {s for files in mutations.SEEDS.values() for s in files}
    # mutations change the bytes (wrong_extension keeps them and changes the name)
    changed = sum(1 for x in full if x.data != (mutations.DATA / x.seed_file).read_bytes())
    assert changed >= 0.85 * len(full)


@pytest.mark.slow
def test_every_reader_survives_the_mutations(fuzz_corpus, fuzz_pool):
    answers = fuzz_pool.run([{"path": str(p), "mode": "read"} for _, p in fuzz_corpus])
    pairs = list(zip((c for c, _ in fuzz_corpus), answers))
    tally = _tally(pairs)
    seconds = sorted(a.get("seconds", 0) for a in answers)
    record("fuzz read_file + atom_table", {
        "cases": len(pairs), "per_reader": tally,
        "outcomes": dict(collections.Counter(a["outcome"] for a in answers)),
        "slowest_s": seconds[-1] if seconds else 0, "median_s": seconds[len(seconds) // 2] if seconds else 0,
        "worker_restarts": fuzz_pool.restarts,
    })
    assert len(pairs) >= min(mutations.budget(), mutations.DEFAULT_N)
    defects = _defects(pairs)
    assert not defects, f"{len(defects)} of {len(pairs)} cases failed:\n" + "\n".join(defects[:40])


def _encode_available() -> bool:
    from engine.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return "encode" in sub.choices


@pytest.mark.slow
def test_logos_encode_survives_the_mutations(fuzz_corpus, fuzz_pool):
    if not _encode_available():
        missing("`logos encode` (engine/cli/codec.py) is not in this build")
    answers = fuzz_pool.run([{"path": str(p), "mode": "encode"} for _, p in fuzz_corpus])
    pairs = list(zip((c for c, _ in fuzz_corpus), answers))
    record("fuzz logos encode", {
        "cases": len(pairs), "per_reader": _tally(pairs),
        "outcomes": dict(collections.Counter(a["outcome"] for a in answers)),
    })
    defects = _defects(pairs)
    assert not defects, f"{len(defects)} of {len(pairs)} cases failed:\n" + "\n".join(defects[:40])


@pytest.mark.slow
def test_logos_encode_as_a_command_prints_one_message_and_no_traceback(fuzz_corpus, tmp_path):
    """A sample run as real ``logos encode`` processes: exit code, stderr, no traceback."""
    if not _encode_available():
        missing("`logos encode` (engine/cli/codec.py) is not in this build")
    by_reader: dict = {}
    for case, path in fuzz_corpus:
        if case.kind in ("truncate", "nan_number", "empty", "damaged_gzip", "wrong_extension"):
            by_reader.setdefault((case.reader, case.kind), (case, path))
    sample = list(by_reader.values())[:25]
    codes = collections.Counter()
    for case, path in sample:
        proc = subprocess.run([sys.executable, "-m", "engine", "encode", str(path)], capture_output=True,
                              text=True, timeout=120, env=dict(os.environ))
        codes[proc.returncode] += 1
        assert "Traceback" not in proc.stderr, f"{case.id}: traceback\n{proc.stderr[-2000:]}"
        if proc.returncode == 0:
            assert proc.stdout.strip(), f"{case.id}: exit 0 and nothing printed"
        else:
            assert proc.returncode == 2, f"{case.id}: exit {proc.returncode}: {proc.stderr[-500:]}"
            assert path.name in proc.stderr, f"{case.id}: the message does not name the file: {proc.stderr!r}"
    record("logos encode processes", {"cases": len(sample), "exit_codes": dict(codes)})
