"""What size and training time would reach a goal the demonstration model misses.

The issue asks, where a goal is out of reach within the training budget, for a learning curve that
says what size and time would reach it. ``training.curve`` follows one run's checkpoints; those
points sit on one learning-rate schedule, so a checkpoint halfway through a run is not what a run
of that length would have given (its learning rate had not come down). This module uses finished
runs only: each ``logos train demo`` run at a given size and number of steps is one point, scored by
the same card measurements (the Q8_0 GGUF through the engine's task path).

For each model size with runs at two or more token counts it fits the error (100 % minus the
figure) as a power of the tokens seen, ``error = a * tokens ** -b`` (least squares in log-log),
and prints where the fitted line reaches the goal: tokens, and training minutes at that size's
measured tokens/s (of its bfloat16 runs where it has any; the speed of the machine that ran them),
and what the two-hour budget buys. A size with a single run borrows the exponent of the fitted
sizes; it says so. With three or more points it also prints each point's distance from the line
fitted without it (a leave-one-out check of the power law) and the line through the two runs with
the most tokens, which says more where the curve bends.

    python -m training.projection [OUT ...] [--runs FILE] [--goal NAME=VALUE ...] [--budget 120]

OUT is a ``logos train demo`` work folder (its ``demo.json``); FILE is a JSON list of runs recorded
before (``docs/demo-runs.json``: runs whose folders are gone, with the section of
docs/benchmarks.md that measured them). A projection is an estimate from few points, not a
measurement: the printout says how many points each line has.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

# the figures the card measures that the issue sets goals on and the demonstration model misses;
# (task, figure name as the card writes it) -> goal in %
GOALS = {
    ("molecule", "MOSES validity at T = 1"): 95.0,
    ("retro", "pass the retrosynthesis check"): 90.0,
}
DEFAULT_RUNS = Path(__file__).resolve().parents[1] / "docs" / "demo-runs.json"


class ProjectionError(ValueError):
    """A run that cannot be read, with the file and the reason."""


def run_from_demo(out: Path) -> dict:
    """One finished ``logos train demo`` run as a point: size, tokens, speed and the card's figures."""
    path = Path(out) / "demo.json" if Path(out).is_dir() else Path(out)
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProjectionError(f"{path}: not a readable demo.json ({exc})") from None
    try:
        model = summary["settings"]["train"]["model"]
        card = summary["card"]
    except (KeyError, TypeError):
        raise ProjectionError(f"{path}: no training settings or no measured card (was the run evaluated?)") from None
    figures = {}
    for task, entry in (card.get("tasks") or {}).items():
        for fig in entry.get("figures", []):
            figures[f"{task}/{fig['name']}"] = fig["value"]
    train = summary["settings"]["train"]
    return {"label": f"{path.parent.name}", "layers": model["num_hidden_layers"],
            "parameters": summary.get("n_params"), "tokens": summary["tokens_seen"],
            "tokens_per_s": summary.get("tokens_per_s"), "precision": summary.get("precision"),
            "windows": f"{train.get('batch_size')}x{train.get('block_size')}",
            "train_minutes": (summary.get("train_seconds") or 0) / 60, "figures": figures,
            "source": str(path)}


def load_runs(path: Path) -> list[dict]:
    """Runs recorded in a JSON list (each: label, layers, tokens, tokens_per_s, figures, source)."""
    try:
        runs = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ProjectionError(f"{path}: not a readable JSON list of runs ({exc})") from None
    if not isinstance(runs, list):
        raise ProjectionError(f"{path}: expected a JSON list of runs, found {type(runs).__name__}")
    for i, run in enumerate(runs):
        missing = [k for k in ("label", "layers", "tokens", "figures") if k not in run]
        if missing:
            raise ProjectionError(f"{path}: run {i + 1} lacks {', '.join(missing)}")
        if not run["tokens"] or run["tokens"] <= 0:
            raise ProjectionError(f"{path}: run {i + 1} ({run['label']}): tokens must be positive")
    return runs


def fit_power(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares of log(error) on log(tokens): returns (a, b) of error = a * tokens ** -b.
    Needs two distinct token counts; errors must be positive."""
    xs = [math.log(t) for t, _ in points]
    ys = [math.log(e) for _, e in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("all points at the same tokens")
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return math.exp(my - slope * mx), -slope


def tokens_for(a: float, b: float, error: float) -> float | None:
    """Tokens where a * tokens ** -b falls to ``error``; None when the error does not fall."""
    if b <= 0:
        return None
    return (a / error) ** (1 / b)


def project(runs: list[dict], figure: str, goal: float, budget_min: float = 120.0) -> dict:
    """For one figure (``task/name``) and its goal: per size, the fitted line, the tokens and
    minutes to the goal, and the figure the budget buys."""
    by_size: dict[int, list[dict]] = {}
    for run in runs:
        if figure in run["figures"] and run["figures"][figure] is not None:
            by_size.setdefault(int(run["layers"]), []).append(run)
    sizes = []
    fitted_b = []
    for layers in sorted(by_size):
        rs = sorted(by_size[layers], key=lambda r: r["tokens"])
        # a figure at or above 100 % has no error left to fit: clamp to a tenth of a point
        pts = [(r["tokens"], max(100.0 - r["figures"][figure], 0.1)) for r in rs]
        # the speed of the size's bfloat16 runs where there are any (the recipe's precision since
        # 6 December), else of all its runs
        timed = [r for r in rs if r.get("tokens_per_s")]
        rates = sorted(r["tokens_per_s"] for r in ([r for r in timed if r.get("precision") == "bfloat16"] or timed))
        row = {"layers": layers, "points": [(r["tokens"], r["figures"][figure], r["label"]) for r in rs],
               "tokens_per_s": rates[len(rates) // 2] if rates else None,
               "parameters": next((r.get("parameters") for r in rs if r.get("parameters")), None)}
        if len({t for t, _ in pts}) >= 2:
            a, b = fit_power(pts)
            row.update(a=a, b=b, fitted=True)
            fitted_b.append(b)
            if len(pts) >= 3:  # leave one out: each point against the line through the others
                loo = []
                for i, (t, e) in enumerate(pts):
                    rest = pts[:i] + pts[i + 1:]
                    if len({x for x, _ in rest}) < 2:
                        continue
                    a2, b2 = fit_power(rest)
                    loo.append((t, 100.0 - e, 100.0 - a2 * t ** -b2))
                row["leave_one_out"] = loo
                # the line through the runs at the two largest token counts: where the curve bends,
                # the local exponent says more about the next doubling than the fit through all runs
                top = sorted({t for t, _ in pts})[-2:]
                a3, b3 = fit_power([p for p in pts if p[0] in top])
                row["last_two"] = {"a": a3, "b": b3, "tokens_to_goal": tokens_for(a3, b3, 100.0 - goal)}
        sizes.append(row)
    mean_b = sum(fitted_b) / len(fitted_b) if fitted_b else None
    for row in sizes:
        if not row.get("fitted"):
            if mean_b is None:
                continue
            t, value, _ = row["points"][-1]
            row.update(b=mean_b, a=max(100.0 - value, 0.1) * t ** mean_b, fitted=False)
        need = tokens_for(row["a"], row["b"], 100.0 - goal)
        row["tokens_to_goal"] = need
        rate = row["tokens_per_s"]
        row["minutes_to_goal"] = need / rate / 60 if need and rate else None
        if rate:
            budget_tokens = rate * 60 * budget_min
            row["budget_tokens"] = budget_tokens
            row["at_budget"] = 100.0 - row["a"] * budget_tokens ** -row["b"]
    return {"figure": figure, "goal": goal, "budget_min": budget_min, "sizes": sizes}


def _m(tokens: float | None) -> str:
    return "-" if tokens is None else f"{tokens / 1e6:,.1f} M"


def _when(tokens: float | None, rate: float | None) -> str:
    if tokens is None:
        return "never on that line (the error does not fall)"
    if not rate:
        return "time unknown"
    minutes = tokens / rate / 60
    return f"{minutes:,.0f} min ({minutes / 60:.1f} h) of training at that size's speed"


def report(result: dict) -> str:
    lines = [f"{result['figure']} (goal >= {result['goal']:g} %), error = a * tokens^-b per size:"]
    for row in result["sizes"]:
        pts = ", ".join(f"{v:.1f} % at {_m(t)} ({label})" for t, v, label in row["points"])
        if "b" not in row:
            lines.append(f"  {row['layers']} layers: {pts}; no fitted size to borrow an exponent from")
            continue
        how = (f"fitted on {len(row['points'])} runs" if row["fitted"]
               else "one run; exponent borrowed from the fitted sizes")
        rate = f"{row['tokens_per_s']:,.0f} tokens/s" if row["tokens_per_s"] else "speed unknown"
        lines.append(f"  {row['layers']} layers ({how}; b = {row['b']:.3f}; {rate}): {pts}")
        for t, measured, predicted in row.get("leave_one_out", []):
            lines.append(f"      line without the {_m(t)} run predicts {predicted:.1f} % there, measured {measured:.1f} %")
        if row["tokens_to_goal"] is None:
            lines.append("      the error does not fall with tokens: no projection")
            continue
        lines.append(f"      goal at {_m(row['tokens_to_goal'])} tokens: {_when(row['tokens_to_goal'], row['tokens_per_s'])}")
        last = row.get("last_two")
        if last:
            lines.append(f"      the line through the two runs with the most tokens (b = {last['b']:.3f}): goal at "
                         f"{_m(last['tokens_to_goal'])} tokens: {_when(last['tokens_to_goal'], row['tokens_per_s'])}")
        if "at_budget" in row:
            lines.append(f"      {result['budget_min']:g} min buy {_m(row['budget_tokens'])} tokens: "
                         f"{row['at_budget']:.1f} % projected")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.projection", description=__doc__.split("\n\n")[0])
    ap.add_argument("outs", nargs="*", type=Path, metavar="OUT", help="finished logos train demo folders")
    ap.add_argument("--runs", type=Path, default=None,
                    help=f"recorded runs (JSON list; default {DEFAULT_RUNS.relative_to(DEFAULT_RUNS.parents[1])})")
    ap.add_argument("--no-recorded", action="store_true", help="only the OUT folders, not the recorded runs")
    ap.add_argument("--goal", action="append", metavar="TASK/FIGURE=VALUE", default=None,
                    help="a figure and its goal in %% (default: the goals the model misses)")
    ap.add_argument("--budget", type=float, default=120.0, help="training minutes the recipe may take")
    ap.add_argument("--json", type=Path, help="also write the projections here")
    args = ap.parse_args(argv)
    try:
        runs = [] if args.no_recorded else load_runs(args.runs or DEFAULT_RUNS)
        runs += [run_from_demo(o) for o in args.outs]
        goals = {f"{t}/{n}": v for (t, n), v in GOALS.items()}
        if args.goal:
            goals = {}
            for g in args.goal:
                name, sep, value = g.rpartition("=")
                if not sep or "/" not in name:
                    raise ProjectionError(f"--goal {g!r}: expected TASK/FIGURE=VALUE, e.g. 'retro/top-1 exact (greedy)=80'")
                try:
                    goals[name] = float(value)
                except ValueError:
                    raise ProjectionError(f"--goal {g!r}: {value!r} is not a number") from None
                if not 0 < goals[name] < 100:  # an error of 0 % is never reached on a power law
                    raise ProjectionError(f"--goal {g!r}: a goal in % must lie between 0 and 100, not {value}")
    except ProjectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not runs:
        print("error: no runs: give OUT folders or a --runs file", file=sys.stderr)
        return 2
    results = []
    for figure, goal in goals.items():
        res = project(runs, figure, goal, args.budget)
        if not res["sizes"]:
            print(f"{figure}: no run measured it")
            continue
        print(report(res))
        results.append(res)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
