"""training.projection: power-law fits of finished runs, tokens and minutes to a goal, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from training import projection as P

ROOT = Path(__file__).resolve().parents[2]
T1 = "molecule/MOSES validity at T = 1"
CHECK = "retro/pass the retrosynthesis check"


def _run(label, layers, tokens, value, rate=1000.0, figure=CHECK, precision="bfloat16"):
    return {"label": label, "layers": layers, "tokens": tokens, "tokens_per_s": rate, "precision": precision,
            "figures": {figure: value}}


def _law(tokens, a=40.0, b=0.5):
    return 100.0 - a * (tokens / 1e7) ** -b


def test_fit_recovers_an_exact_power_law_and_the_tokens_to_the_goal():
    runs = [_run(f"r{t}", 4, t, _law(t)) for t in (1e7, 2e7, 4e7)]
    res = P.project(runs, CHECK, 90.0, budget_min=60)
    (row,) = res["sizes"]
    assert row["fitted"] and row["b"] == pytest.approx(0.5, rel=1e-9)
    # 40 * (t / 1e7) ** -0.5 = 10  ->  t = 16e7
    assert row["tokens_to_goal"] == pytest.approx(16e7, rel=1e-9)
    assert row["minutes_to_goal"] == pytest.approx(16e7 / 1000 / 60, rel=1e-9)
    assert row["at_budget"] == pytest.approx(_law(1000 * 3600), rel=1e-9)
    # on an exact law each left-out point is predicted exactly
    assert len(row["leave_one_out"]) == 3
    for _, measured, predicted in row["leave_one_out"]:
        assert predicted == pytest.approx(measured, abs=1e-9)


def test_leave_one_out_shows_a_point_off_the_line():
    runs = [_run("a", 4, 1e7, _law(1e7)), _run("b", 4, 2e7, _law(2e7)), _run("c", 4, 4e7, _law(4e7) - 5)]
    row = P.project(runs, CHECK, 90.0)["sizes"][0]
    off = {t: (m, p) for t, m, p in row["leave_one_out"]}
    measured, predicted = off[4e7]
    assert predicted == pytest.approx(_law(4e7), abs=1e-9) and measured == pytest.approx(_law(4e7) - 5)


def test_a_size_with_one_run_borrows_the_fitted_exponent_and_says_so():
    runs = [_run("a", 4, 1e7, _law(1e7)), _run("b", 4, 4e7, _law(4e7)),
            _run("big", 8, 1e7, _law(1e7, a=20.0), rate=500.0)]
    res = P.project(runs, CHECK, 90.0)
    big = next(r for r in res["sizes"] if r["layers"] == 8)
    assert not big["fitted"] and big["b"] == pytest.approx(0.5)
    # 20 * (t / 1e7) ** -0.5 = 10  ->  t = 4e7
    assert big["tokens_to_goal"] == pytest.approx(4e7, rel=1e-9)
    assert big["minutes_to_goal"] == pytest.approx(4e7 / 500 / 60, rel=1e-9)
    text = P.report(res)
    assert "8 layers (one run; exponent borrowed" in text and "4 layers (fitted on 2 runs" in text


def test_an_error_that_does_not_fall_gets_no_projection():
    runs = [_run("a", 4, 1e7, 80.0), _run("b", 4, 2e7, 75.0)]
    row = P.project(runs, CHECK, 90.0)["sizes"][0]
    assert row["b"] < 0 and row["tokens_to_goal"] is None and row["minutes_to_goal"] is None
    assert "does not fall with tokens" in P.report(P.project(runs, CHECK, 90.0))


def test_the_speed_is_the_bfloat16_runs_where_there_are_any():
    runs = [_run("f32", 4, 1e7, _law(1e7), rate=600.0, precision="float32"),
            _run("bf16", 4, 2e7, _law(2e7), rate=900.0)]
    assert P.project(runs, CHECK, 90.0)["sizes"][0]["tokens_per_s"] == 900.0


def test_run_from_demo_reads_the_card_a_demo_run_wrote(tmp_path):
    card = json.loads((ROOT / "resources" / "models" / "logos-demo-card.json").read_text())
    summary = {"settings": {"train": {"batch_size": 32, "block_size": 128,
                                      "model": {"num_hidden_layers": 4}}},
               "tokens_seen": 12_288_000, "tokens_per_s": 7400.0, "train_seconds": 1660.0,
               "precision": "bfloat16", "n_params": 3_930_000, "card": card}
    (tmp_path / "demo.json").write_text(json.dumps(summary))
    run = P.run_from_demo(tmp_path)
    assert run["layers"] == 4 and run["tokens"] == 12_288_000 and run["windows"] == "32x128"
    assert run["figures"][T1] == 88.0 and run["figures"][CHECK] == pytest.approx(77.03, abs=0.01)


def test_the_recorded_runs_hold_the_goals_figures():
    runs = P.load_runs(P.DEFAULT_RUNS)
    assert {r["layers"] for r in runs} >= {4, 8}
    for run in runs:
        assert T1 in run["figures"] and CHECK in run["figures"] and run["source"]


def test_cli_prints_each_goal_and_writes_json(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert P.main(["--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "MOSES validity at T = 1 (goal >= 95 %)" in text and "retrosynthesis check (goal >= 90 %)" in text
    saved = json.loads(out.read_text())
    assert [r["figure"] for r in saved] == [T1, CHECK]
    assert all(math.isfinite(s["b"]) for r in saved for s in r["sizes"])


@pytest.mark.parametrize("content, expect", [
    ("{not json", "not a readable JSON list"),
    ('{"a": 1}', "expected a JSON list of runs"),
    ('[{"label": "x", "layers": 4}]', "run 1 lacks tokens, figures"),
    ('[{"label": "x", "layers": 4, "tokens": 0, "figures": {}}]', "tokens must be positive"),
])
def test_a_bad_runs_file_is_one_line_naming_the_file(tmp_path, capsys, content, expect):
    bad = tmp_path / "runs.json"
    bad.write_text(content)
    assert P.main(["--runs", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and expect in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_goal_and_missing_demo_are_refused(tmp_path, capsys):
    assert P.main(["--goal", "no-equals-sign"]) == 2
    assert "expected TASK/FIGURE=VALUE" in capsys.readouterr().err
    assert P.main(["--goal", "retro/top-1 exact (greedy)=high"]) == 2
    assert "'high' is not a number" in capsys.readouterr().err
    assert P.main(["--goal", "retro/pass the retrosynthesis check=100"]) == 2
    assert "must lie between 0 and 100" in capsys.readouterr().err
    assert P.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "demo.json") in err and "not a readable demo.json" in err
    (tmp_path / "demo.json").write_text('{"settings": {}}')
    assert P.main([str(tmp_path)]) == 2
    assert "no measured card" in capsys.readouterr().err


def test_a_figure_no_run_measured_is_said(capsys):
    assert P.main(["--goal", "antibody/anything=50"]) == 0
    assert "antibody/anything: no run measured it" in capsys.readouterr().out


def test_where_the_curve_bends_the_last_two_runs_give_their_own_line():
    # the exponent falls from 1.0 to 0.5 over the last doubling: the line through the last two runs
    # reaches the goal later than the fit through all three
    runs = [_run("a", 4, 1e7, 60.0), _run("b", 4, 2e7, 80.0), _run("c", 4, 4e7, 100 - 20 / 2 ** 0.5)]
    row = P.project(runs, CHECK, 90.0)["sizes"][0]
    last = row["last_two"]
    assert last["b"] == pytest.approx(0.5, rel=1e-9)
    # 20 * (t / 2e7) ** -0.5 = 10  ->  t = 8e7
    assert last["tokens_to_goal"] == pytest.approx(8e7, rel=1e-9)
    assert last["tokens_to_goal"] > row["tokens_to_goal"]
    assert "the line through the two runs with the most tokens (b = 0.500)" in P.report(P.project(runs, CHECK, 90.0))


def test_two_runs_at_the_same_tokens_are_both_points_and_never_a_zero_span_line():
    runs = [_run("a", 4, 1e7, _law(1e7)), _run("b", 4, 4e7, _law(4e7)), _run("b again", 4, 4e7, _law(4e7))]
    row = P.project(runs, CHECK, 90.0)["sizes"][0]
    assert row["b"] == pytest.approx(0.5, rel=1e-9) and row["last_two"]["b"] == pytest.approx(0.5, rel=1e-9)
    # one size measured at a single token count by two runs borrows the other size's exponent
    runs += [_run("c", 8, 1e7, _law(1e7, a=20.0)), _run("c again", 8, 1e7, _law(1e7, a=20.0))]
    big = next(r for r in P.project(runs, CHECK, 90.0)["sizes"] if r["layers"] == 8)
    assert not big["fitted"] and big["tokens_to_goal"] == pytest.approx(4e7, rel=1e-9)
