"""The engine process for real: `python -m engine engine --stdio` driven by EngineClient with a
tiny real GGUF. No part of the engine is mocked."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from engine.process.client import EngineClient, EngineError


@pytest.fixture
def client():
    c = EngineClient()
    c.start()
    yield c
    c.close()


def _job_events(client, job, timeout=120):
    return list(client.iter_job(job, timeout=timeout))


def test_hello_load_submit_results(client, tiny_llama_gguf):
    assert client.hello["protocol"] == 1 and client.hello["backend"]["available"]
    ev = client.load_model_wait(str(tiny_llama_gguf), n_ctx=2048, n_threads=1)
    assert ev["backend"] == "CPU" and ev["plan"]["reasons"] and ev["n_ctx"] == 2048
    job = client.submit("molecule", n=4, seed=7, sampling={"max_new_tokens": 24})
    events = _job_events(client, job)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "accepted" and "started" in kinds and kinds[-1] == "finished"
    results = [e for e in events if e["type"] == "result"]
    assert sorted(r["index"] for r in results) == [0, 1, 2, 3]
    for r in results:
        assert r["record"].startswith("<MoleculeS>")
        assert set(r) >= {"record", "objects", "valid", "reasons", "ppl", "scores"}
        assert r["valid"] == (not r["reasons"])
        assert r["ppl"] > 1
    started = next(e for e in events if e["type"] == "started")
    assert started["command"].startswith("logos generate --task molecule") and started["stop_ids"]
    fin = events[-1]
    assert fin["status"] == "finished" and fin["summary"]["samples"] == 4
    # same seed, same samples
    again = [e for e in _job_events(client, client.submit("molecule", n=4, seed=7,
                                                          sampling={"max_new_tokens": 24}))
             if e["type"] == "result"]
    assert sorted((r["index"], r["record"]) for r in again) == sorted((r["index"], r["record"]) for r in results)
    # constrained decoding: the task's GBNF grammar makes every record well formed and closed
    job = client.submit("molecule", n=3, seed=3, sampling={"max_new_tokens": 320}, grammar=True)
    events = _job_events(client, job)
    constrained = [e for e in events if e["type"] == "result"]
    assert len(constrained) == 3, events[-1]
    for r in constrained:
        assert r["stop"] == "stop_token" and r["record"].endswith("<MoleculeE>")
        assert r["record"].count("<MoleculeE>") == 1 and "<" not in r["record"][len("<MoleculeS>"):-len("<MoleculeE>")]


def test_bad_requests_get_errors_and_the_engine_stays_up(client, tmp_path, tiny_llama_gguf):
    client.proc.stdin.write("this is not json\n")
    client.proc.stdin.flush()
    ev = client.wait_for(lambda e: e["type"] == "error", 10)
    assert "not JSON" in ev["message"]
    rid = client.send("submit", task="molecule", temprature=2)
    ev = client.wait_for(lambda e: e.get("id") == rid, 10)
    assert ev["type"] == "error" and "unknown field(s) temprature" in ev["message"]
    with pytest.raises(EngineError, match="nothing.gguf: file not found"):
        client.load_model_wait(str(tmp_path / "nothing.gguf"))
    half = tmp_path / "half.gguf"
    half.write_bytes(tiny_llama_gguf.read_bytes()[:50_000])
    with pytest.raises(EngineError, match="half.gguf: (tensor data incomplete|the file ends inside its header)"):
        client.load_model_wait(str(half))
    # a job before any model: clear error, failed finish
    job = client.submit("molecule", n=1)
    events = _job_events(client, job, 30)
    assert any(e["type"] == "error" and "no model loaded" in e["message"] for e in events)
    assert events[-1]["status"] == "failed"
    client.load_model_wait(str(tiny_llama_gguf), n_ctx=1024, n_threads=1)
    job = client.submit("ligand", inputs={"file": str(tmp_path / "none.pdb")})
    events = _job_events(client, job, 30)
    assert any("none.pdb: no such file" in e.get("message", "") for e in events)
    job = client.submit("molecule", sampling={"top_q": 1})
    events = _job_events(client, job, 30)
    assert any("unknown sampling field(s): top_q" in e.get("message", "") for e in events)
    st = client.status()
    assert st["model"]["path"] == str(tiny_llama_gguf) and st["running"] is None


def test_a_failed_load_keeps_the_loaded_model(client, tmp_path, tiny_llama_gguf):
    client.load_model_wait(str(tiny_llama_gguf), n_ctx=1024, n_threads=1)
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(EngineError, match=r"broken.gguf.*\(the model loaded before, .*stays loaded\)"):
        client.load_model_wait(str(bad))
    st = client.status()
    assert st["model"]["path"] == str(tiny_llama_gguf)
    job = client.submit("molecule", n=2, seed=3, sampling={"max_new_tokens": 8})
    events = _job_events(client, job, 60)
    assert events[-1]["status"] == "finished" and sum(e["type"] == "result" for e in events) == 2


def test_cancel_takes_effect_within_a_second(client, tiny_llama_gguf):
    client.load_model_wait(str(tiny_llama_gguf), n_ctx=8192, n_threads=1)
    job = client.submit("molecule", n=10000, seed=1, sampling={"max_new_tokens": 4})
    # a second job: queued, or in the first one's slots (its samples fit their KV streams once cut
    # to the model's training length), or running first while the first waits (each job has its
    # own thread in the engine process, so either may reach the runtime first); enough samples
    # that neither has finished when both are cancelled
    queued = client.submit("molecule", n=2000, seed=1, sampling={"max_new_tokens": 4000})
    client.wait_for(lambda e: e["type"] == "progress" and e["job"] in (job, queued), 60)
    t0 = time.monotonic()
    client.cancel(queued)
    client.cancel(job)
    seen = {}
    while len(seen) < 2:
        ev = client.wait_for(lambda e: e["type"] == "finished", 10)
        seen[ev["job"]] = (ev["status"], time.monotonic() - t0)
    assert seen[job][0] == "cancelled" and seen[queued][0] == "cancelled"
    assert max(t for _, t in seen.values()) < 1.0
    assert client.status()["running"] is None


def test_project_stores_every_sample(client, tmp_path, tiny_llama_gguf):
    from engine.store.project import Project

    client.load_model_wait(str(tiny_llama_gguf), n_ctx=2048, n_threads=1)
    proj = tmp_path / "p.logos"
    job = client.submit("retro", options={"smiles": "CC(=O)Oc1ccccc1C(=O)O"}, n=3, seed=2,
                        sampling={"max_new_tokens": 16}, project=str(proj))
    events = _job_events(client, job)
    results = [e for e in events if e["type"] == "result"]
    assert len(results) == 3 and all(r["result_id"] for r in results)
    with Project.open(proj) as p:
        page = p.query_results()
        assert page.total == 3
        run = p.runs()[0]
        assert run.task == "retro" and run.status == "finished" and run.seed == 2
        assert run.prompt == "<MoleculeS>CC(=O)Oc1ccccc1C(=O)O<MoleculeE><ReverseReact>"
        assert run.params["sampler"] == "compiled"  # which draws: the llama.cpp chain would draw others


def test_crash_restart_reloads_the_model(tiny_llama_gguf):
    seen = []
    c = EngineClient(on_event=seen.append)
    c.start()
    try:
        c.load_model_wait(str(tiny_llama_gguf), n_ctx=1024, n_threads=1)
        job = c.submit("molecule", n=2, sampling={"max_new_tokens": 4000})
        c.wait_for(lambda e: e["type"] == "started", 30)
        old = c.proc.pid
        os.kill(old, signal.SIGKILL)
        c.wait_for(lambda e: e["type"] == "engine_exited", 10)
        c.wait_for(lambda e: e["type"] == "model_loaded", 60)
        assert c.proc.pid != old
        assert any(e["type"] == "finished" and e["job"] == job and e["status"] == "failed" for e in seen)
        assert any(e["type"] == "engine_restarted" for e in seen)
        assert c.status()["model"]["path"] == str(tiny_llama_gguf)
    finally:
        c.close()


@pytest.mark.slow
def test_generate_cli_json_lines_same_seed_same_output(tmp_path, tiny_llama_gguf):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "engine", "generate", "--task", "molecule", "-n", "3", "--seed", "4",
           "--model", str(tiny_llama_gguf), "--max-new-tokens", "20", "--threads", "1", "--json", "-q"]
    a = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert a.returncode == 0, a.stderr
    lines = [json.loads(line) for line in a.stdout.splitlines()]
    assert len(lines) == 3
    for r in lines:
        assert {"record", "objects", "valid", "reasons", "ppl", "scores"} <= set(r)
    b = subprocess.run(cmd + ["--project", str(tmp_path / "cli.logos")], capture_output=True, text=True,
                       timeout=120)
    assert b.returncode == 0, b.stderr
    lines_b = [json.loads(line) for line in b.stdout.splitlines()]
    assert sorted(x["record"] for x in lines_b) == sorted(x["record"] for x in lines)
    assert all(x["result_id"] for x in lines_b)
    bad = subprocess.run(cmd[:-2] + ["--input", str(tmp_path / "x.pdb"), "--task", "ligand"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "x.pdb: no such file" in bad.stderr


def test_qwen3_model_binding_site_job(client, tiny_qwen3_gguf, test_data):
    ev = client.load_model_wait(str(tiny_qwen3_gguf), n_ctx=4096, n_threads=1)
    assert ev["architecture"] == "qwen3"
    job = client.submit("binding-site", inputs={"file": str(test_data / "structures" / "1hvr.pdb")},
                        options={"chain": "A"}, n=2, seed=1, sampling={"max_new_tokens": 40})
    events = _job_events(client, job)
    started = next(e for e in events if e["type"] == "started")
    assert started["prompt"].startswith("<ProteinS>PQVTLWQRPLVTIKIGGQLKEALLDTGADDTVLE")
    assert started["prompt"].endswith("<ProteinE><Search><ProteinS>")
    results = [e for e in events if e["type"] == "result"]
    assert len(results) == 2 and events[-1]["status"] == "finished"
    for r in results:  # a random model rarely reproduces the sequence: the reasons say so
        assert r["valid"] or r["reasons"]


def test_generate_cli_says_what_the_model_card_says_of_the_task():
    """`logos generate` on the demonstration model: one stderr line with its card's entry for the
    task, a warning where the model was not trained for it (the GUI shows the same line)."""
    import subprocess
    import sys

    from engine import paths

    demo = str(paths.bundled_models()[0])
    base = [sys.executable, "-m", "engine", "generate", "-n", "1", "--seed", "1", "--json", "--model", demo]
    mol = subprocess.run(base + ["--task", "molecule"], capture_output=True, text=True, timeout=180)
    site = subprocess.run(base + ["--task", "binding-site", "--sequence",
                                  "PQITLWQRPLVTIKIGGQLKEALLDTGADDTVLEEMSLPGRWKPKMIGGIGGFIKVRQYDQILIEICGHKAIGTVLVGPTPVNIIGRNLLTQIGCTLNF"],
                          capture_output=True, text=True, timeout=180)
    assert mol.returncode == 0 and site.returncode == 0, mol.stderr + site.stderr
    assert "\nmodel card for molecule: trained: MOSES validity" in mol.stderr
    assert "warning" not in mol.stderr
    assert "\nwarning: model card for binding-site: seen in training but not learnt" in site.stderr
    assert "expect invalid output" in site.stderr


def test_a_task_run_again_starts_from_the_prompt_the_engine_has_read(client, tiny_llama_gguf):
    """Run, then Run again (other seed, other sampling): the second job's prompt is the first's, so
    the engine starts from its cells (RuntimeOptions.prompt_cache); its stats say so."""
    client.load_model_wait(str(tiny_llama_gguf), n_ctx=2048, n_threads=1)

    def run(**kw):
        events = _job_events(client, client.submit("molecule", n=4, **kw))
        assert events[-1]["status"] == "finished", events[-1]
        return events[-1]["stats"]

    assert not run(seed=1, sampling={"max_new_tokens": 24})["prompt_reused"]
    assert run(seed=2, sampling={"max_new_tokens": 24, "temperature": 0.8})["prompt_reused"]
