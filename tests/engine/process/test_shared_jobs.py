"""Jobs submitted together to a real engine process share the model's slots: the second job's
results come while the first still runs, each job's results are those it gives alone (same seeds),
a bad request between them gets its error and the others go on, and cancelling one leaves the
other's results untouched."""

from __future__ import annotations

import pytest

from engine.process.client import EngineClient

SLOTS = 8
MOLECULE = dict(task="molecule", n=48, seed=4, sampling={"max_new_tokens": 48})
FORWARD = dict(task="forward", options={"smiles": "CCO.CC(=O)O"}, n=16, seed=9,
               sampling={"max_new_tokens": 40, "temperature": 0.8, "top_k": 30})


@pytest.fixture(scope="module")
def engine():
    from engine import paths

    c = EngineClient()
    c.start()
    c.load_model_wait(str(paths.bundled_models()[0]), n_threads=2, n_seq_max=SLOTS + 1)
    yield c
    c.close()


def _results(events):
    out = {}
    for ev in events:
        if ev["type"] == "result":
            out[ev["index"]] = (ev["seed"], ev["record"], ev["ppl"], ev["stop"], ev["n_tokens"], ev["valid"])
    return out


def _alone(engine, spec):
    job = engine.submit(**spec)
    events = list(engine.iter_job(job, timeout=300))
    assert events[-1]["status"] == "finished", events[-1]
    return _results(events), events[-1]


def _together(engine, jobs: dict, between=None):
    """Submit the jobs back to back (``between``: a request sent after the first), then
    collect every event in arrival order until each has finished."""
    ids = {}
    for i, (name, spec) in enumerate(jobs.items()):
        ids[engine.submit(**spec)] = name
        if i == 0 and between is not None:
            engine._send(dict(between))
    order, per_job, others = [], {name: [] for name in jobs}, []
    open_jobs = set(ids)
    for ev in engine.events(timeout=300):
        job = ev.get("job")
        if job in ids:
            per_job[ids[job]].append(ev)
            order.append((ids[job], ev["type"]))
            if ev["type"] == "finished":
                open_jobs.discard(job)
                if not open_jobs:
                    break
        else:
            others.append(ev)
    assert not open_jobs, f"jobs not finished: {open_jobs}"
    return per_job, order, others


def test_two_jobs_submitted_together_share_the_slots_and_give_their_own_results(engine):
    alone_mol, fin_mol = _alone(engine, MOLECULE)
    alone_fwd, fin_fwd = _alone(engine, FORWARD)
    assert fin_mol["stats"]["shared_jobs"] == 1 and fin_fwd["stats"]["shared_jobs"] == 1
    bad = {"type": "submit", "id": "bad-1", "task": "no-such-task", "n": 2}
    per_job, order, others = _together(engine, {"mol": MOLECULE, "fwd": FORWARD}, between=bad)
    assert _results(per_job["mol"]) == alone_mol  # the same records, perplexities, stops
    assert _results(per_job["fwd"]) == alone_fwd
    fin = {name: evs[-1] for name, evs in per_job.items()}
    assert fin["mol"]["status"] == fin["fwd"]["status"] == "finished"
    assert fin["mol"]["stats"]["shared_jobs"] == 2 and fin["fwd"]["stats"]["shared_jobs"] == 2
    # the second job's first result came while the first job was still running
    first_fwd = order.index(("fwd", "result"))
    assert first_fwd < order.index(("mol", "finished"))
    # the bad request in between got its error and its failed end; the two jobs went on
    assert any(e["type"] == "error" and e.get("id") == "bad-1" for e in others)
    assert any(e["type"] == "finished" and e.get("job") == "bad-1" and e["status"] == "failed" for e in others)


def test_status_lists_the_running_jobs_and_cancel_stays_with_its_job(engine):
    alone_fwd, _ = _alone(engine, FORWARD)
    big = dict(MOLECULE, n=10000, seed=1)
    j_big = engine.submit(**big)
    j_fwd = engine.submit(**FORWARD)
    engine.wait_for(lambda e: e.get("job") == j_fwd and e["type"] == "result", 120)
    st = engine.status()
    assert j_big in st["running_jobs"] and st["running"] == st["running_jobs"][0]
    engine.cancel(j_big)
    fwd_events, big_end = [], None
    for ev in engine.events(timeout=120):
        if ev.get("job") == j_fwd:
            fwd_events.append(ev)
        if ev.get("job") == j_big and ev["type"] == "finished":
            big_end = ev
        if big_end is not None and any(e["type"] == "finished" for e in fwd_events):
            break
    assert big_end["status"] == "cancelled"
    assert fwd_events[-1]["type"] == "finished" and fwd_events[-1]["status"] == "finished"
    # the results before wait_for were dropped by it: the rest are the ones given alone
    got = _results(fwd_events)
    assert got and all(alone_fwd[i] == v for i, v in got.items())
    assert engine.status()["running_jobs"] == []


def test_a_load_waits_for_the_jobs_sent_before_it(engine):
    from engine import paths

    job = engine.submit(**dict(MOLECULE, n=300))
    rid = engine.load_model(str(paths.bundled_models()[0]), n_threads=2, n_seq_max=SLOTS + 1)
    order = []
    for ev in engine.events(timeout=300):
        if ev.get("job") == job and ev["type"] == "finished":
            order.append("finished")
        if ev.get("id") == rid and ev["type"] in ("model_loaded", "error"):
            order.append(ev["type"])
        if len(order) == 2:
            break
    assert order == ["finished", "model_loaded"]
