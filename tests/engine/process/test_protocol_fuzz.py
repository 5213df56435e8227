"""Protocol fuzzer: the real engine process (no model) takes more than 10,000 malformed requests —
bad JSON, bytes that are not UTF-8, wrong types in every field of every request type, huge
numbers, deep nesting, NaN and infinities, unknown types and fields, a line over the length cap —
and floods of valid jobs against a queue of 4 while the worker is held by a slow load. It must
answer every bad line with exactly one error, end every job it was sent exactly once (accepted
and finished, or refused with a failed ``finished``), keep its memory bounded, and answer
``status`` at the end. Seeded (LOGOS_FUZZ_SEED); LOGOS_PROTOCOL_FUZZ_N sets the count."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.process.client import EngineClient

SEED = int(os.environ.get("LOGOS_FUZZ_SEED", "20261126"))
N_CASES = int(os.environ.get("LOGOS_PROTOCOL_FUZZ_N", "10000"))
MAX_QUEUE = 4

BAD_FOR = {  # raw JSON texts that are wrong for a field of that kind
    "int": ["true", '"7"', "1.5", "[]", "{}", "-5", str(2**70), "NaN", "Infinity", "-Infinity", "1e999",
            "9" * 5000, "false"],
    "str": ["1", "true", "[]", "{}", "NaN", '["a"]', "2.5"],
    "obj": ["1", '"x"', "[]", "true", "NaN", "[{}]"],
    "bool": ["1", '"yes"', "NaN", "[]", "{}", "0.0"],
    "id": ["true", "[]", "{}", "1.5", '""', json.dumps("i" * 300), str(2**64), "NaN", "-Infinity"],
}
FIELDS = {  # request type -> field -> kind (every field of every request type)
    "load_model": {"path": "str", "url": "str", "model": "str", "api_key": "str", "n_gpu_layers": "obj",
                   "n_ctx": "int", "n_threads": "int", "n_seq_max": "int"},
    "submit": {"task": "str", "inputs": "obj", "options": "obj", "n": "int", "seed": "int",
               "sampling": "obj", "project": "str", "prompt": "str", "grammar": "bool", "reference": "str"},
    "cancel": {"job": "obj"},
    "status": {}, "tasks": {}, "unload": {}, "shutdown": {},
}
BASE = {"load_model": {"path": "/nonexistent/m.gguf"}, "submit": {"task": "molecule"}, "cancel": {"job": "x"},
        "status": {}, "tasks": {}, "unload": {}, "shutdown": {}}
SAMPLING_BAD = ["NaN", "Infinity", "-Infinity", "1e999", '"hot"', "true", "[]", "{}", "-1", "1e300", "9" * 400]


def _obj(fields: dict) -> str:
    """A JSON object from already-encoded values (so NaN, 1e999 and 5000-digit numbers go in raw)."""
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}"


def _case(rng: random.Random, i: int) -> tuple[str, str | None]:
    """One malformed line and, when it is a submit with a usable id, that id (its job must end)."""
    kind = rng.randrange(10)
    rid = f"f{i}"
    if kind == 0:  # truncated valid request: never a complete JSON object
        t = rng.choice(list(BASE))
        line = json.dumps({"id": rid, "type": t, **BASE[t]})
        return line[:rng.randrange(1, len(line))], None
    if kind == 1:  # garbage bytes, some not UTF-8 (no newline; never only whitespace)
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b"#")
        return "X" + raw.decode("latin-1"), None
    if kind == 2:  # a wrong value in one field of one request type
        t = rng.choice([t for t in FIELDS if FIELDS[t]])
        field, fkind = rng.choice(list(FIELDS[t].items()))
        fields = {"id": json.dumps(rid), "type": json.dumps(t), **{k: json.dumps(v) for k, v in BASE[t].items()}}
        fields[field] = rng.choice(BAD_FOR[fkind] if fkind != "obj" or field != "job" else BAD_FOR["id"])
        if t == "load_model" and field == "n_gpu_layers":
            fields[field] = rng.choice(['"many"', "-2", "1.5", "[]", "NaN", "true"])
        return _obj(fields), rid if t == "submit" else None
    if kind == 3:  # a bad id on any request type
        t = rng.choice(list(BASE))
        fields = {"id": rng.choice(BAD_FOR["id"]), "type": json.dumps(t),
                  **{k: json.dumps(v) for k, v in BASE[t].items()}}
        return _obj(fields), None
    if kind == 4:  # bad sampling values and unknown sampling fields
        name = rng.choice(["temperature", "top_k", "top_p", "min_p", "repetition_penalty", "max_new_tokens",
                           "temprature", "seed"])
        sampling = _obj({name: rng.choice(SAMPLING_BAD) if not name.startswith(("temp", "seed")) or
                         name == "temperature" else "1"})
        return _obj({"id": json.dumps(rid), "type": '"submit"', "task": '"molecule"', "sampling": sampling}), rid
    if kind == 5:  # huge numbers anywhere
        t = rng.choice(["submit", "load_model"])
        field = rng.choice(["n", "seed"] if t == "submit" else ["n_ctx", "n_threads", "n_seq_max"])
        value = rng.choice(["9" * rng.randrange(20, 6000), "-" + "9" * 30, "1e400", "-1e400", "1" + "0" * 4400])
        fields = {"id": json.dumps(rid), "type": json.dumps(t), **{k: json.dumps(v) for k, v in BASE[t].items()},
                  field: value}
        return _obj(fields), rid if t == "submit" else None
    if kind == 6:  # deep nesting: whole lines, and inside options
        depth = rng.choice([5, 50, 999, 5000, 100_000])
        if rng.random() < 0.5:
            return "[" * depth + "]" * depth, None
        nested = '{"a":' * depth + "1" + "}" * depth
        line = _obj({"id": json.dumps(rid), "type": '"submit"', "task": '"molecule"', "options": nested})
        return line, rid if depth <= 50 else None  # deeper: the line is refused before its id is read
    if kind == 7:  # unknown and missing types
        t = rng.choice(["explode", "", "SUBMIT", "status ", "null", "1", "[]", "{}", "x" * 500, None])
        fields = {"id": json.dumps(rid)}
        if t is not None:
            fields["type"] = t if t in ("null", "1", "[]", "{}") else json.dumps(t)
        return _obj(fields), None
    if kind == 8:  # unknown fields on every request type (shutdown too: it must not run)
        t = rng.choice(list(BASE))
        fields = {"id": json.dumps(rid), "type": json.dumps(t), **{k: json.dumps(v) for k, v in BASE[t].items()},
                  rng.choice(["temprature", "x", "Path", "\u00e9t\u00e9", "a" * 200]): "1"}
        return _obj(fields), rid if t == "submit" else None
    # 9: NaN and infinities in the fields of jobs, options and inputs
    where = rng.choice(["n", "seed", "options", "inputs", "sampling"])
    value = rng.choice(["NaN", "Infinity", "-Infinity", "1e999"])
    inner = {"options": _obj({"cutoff": value}), "inputs": _obj({"file": value}),
             "sampling": _obj({"top_p": value})}.get(where, value)
    return _obj({"id": json.dumps(rid), "type": '"submit"', "task": '"molecule"', where: inner}), rid


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class _SlowServer(BaseHTTPRequestHandler):
    """A completions server on 127.0.0.1 that takes 2 s to refuse: it holds the engine's worker."""

    def do_GET(self):  # noqa: N802
        time.sleep(2.0)
        self.send_response(500)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"no")

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _SlowServer)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def test_protocol_fuzz(slow_server):
    rng = random.Random(SEED)
    env = dict(os.environ, LOGOS_ENGINE_MAX_QUEUE=str(MAX_QUEUE))
    client = EngineClient(env=env, auto_restart=False)
    client.start()
    events: list[dict] = []
    t0 = time.monotonic()
    try:
        pid = client.proc.pid
        for _ in range(50):  # warm up: the imports a bad line or a job makes
            client._send({"type": "submit", "task": "molecule", "n": 1, "sampling": {"temperature": 1}})
        sid = client.send("status")
        client.wait_for(lambda e: e.get("id") == sid, 60)
        while client.next_event(0.5) is not None:
            pass
        rss_before = _rss_kib(pid)

        lines, jobs_refused = [], []
        for i in range(N_CASES):
            line, job = _case(rng, i)
            assert "\n" not in line
            lines.append(line)
            if job is not None:
                jobs_refused.append(job)
        # one line over the 16 MiB cap, and a 1 MiB one under it
        lines.append('{"id":"big","type":"submit","task":"molecule","prompt":"' + "A" * (17 << 20) + '"}')
        lines.append("[" * (1 << 20))
        jobs_refused.append(None)  # the long line is answered without an id
        # floods of valid jobs while the worker is held by a 2 s load: 4 queued, the rest busy
        flood = [f"v{i}" for i in range(400)]
        client.load_model(url=slow_server)

        def writer():
            for j in range(0, len(lines), 200):
                client.proc.stdin.write("\n".join(lines[j:j + 200]) + "\n")
            client.proc.stdin.flush()
            for job in flood:
                client.proc.stdin.write(json.dumps({"id": job, "type": "submit", "task": "molecule"}) + "\n")
            client.proc.stdin.flush()
            client.proc.stdin.write(json.dumps({"id": "after", "type": "status"}) + "\n")
            client.proc.stdin.flush()

        w = threading.Thread(target=writer, daemon=True)
        w.start()
        finished: dict = {}
        while True:
            ev = client.next_event(120)
            assert ev is not None, "the engine stopped answering"
            events.append(ev)
            if ev.get("type") == "finished":
                finished.setdefault(ev["job"], []).append(ev["status"])
            if ev.get("type") == "status" and ev.get("id") == "after":
                break
        w.join(10)
        # every flooded job ends exactly once; jobs accepted before the status may still be queued
        deadline = time.monotonic() + 60
        while any(j not in finished for j in flood) and time.monotonic() < deadline:
            ev = client.next_event(5)
            if ev is not None:
                events.append(ev)
                if ev.get("type") == "finished":
                    finished.setdefault(ev["job"], []).append(ev["status"])
        st = client.status(30)
        rss_after = _rss_kib(pid)
        assert client.alive
    finally:
        client.close()
    elapsed = time.monotonic() - t0

    errors = [e for e in events if e.get("type") == "error"]
    fuzz_errors = [e for e in errors if not str(e.get("id", "")).startswith("v") and e.get("id") != "after"
                   and "cannot reach" not in e["message"] and "HTTP 500" not in e["message"]]
    accepted = {e["job"] for e in events if e.get("type") == "accepted"}
    busy = [e for e in errors if e["message"].startswith("busy:")]
    tracebacks = [e for e in errors if "Traceback" in e["message"] or "internal error" in e["message"]]
    print(f"\nprotocol fuzz: {len(lines)} malformed lines (seed {SEED}) + {len(flood)} flooded jobs in "
          f"{elapsed:.1f} s; {len(fuzz_errors)} error events for them, {len(tracebacks)} internal errors; "
          f"flood: {len(accepted & set(flood))} accepted, {len(busy)} busy; "
          f"RSS before {rss_before / 1024:.1f} MiB, after {rss_after / 1024:.1f} MiB "
          f"(+{(rss_after - rss_before) / 1024:.1f} MiB)")
    assert not tracebacks, tracebacks[:3]
    assert len(fuzz_errors) == len(lines), "every malformed line gets exactly one error event"
    assert any("request line too long" in e["message"] for e in fuzz_errors)
    for job in jobs_refused:
        if job is not None:
            assert finished.get(job) == ["failed"], (job, finished.get(job))
    # no job lost: each flooded job was accepted or refused as busy, and ended exactly once
    for job in flood:
        assert len(finished.get(job, [])) == 1, (job, finished.get(job))
    assert busy and len(busy) + len(accepted & set(flood)) == len(flood)
    assert {j for j in flood if finished[j] == ["failed"]} >= {e["id"] for e in busy}
    assert st["type"] == "status" and st["queue"] == [] and st["running"] is None
    assert rss_after - rss_before < 64 * 1024, "memory grew by more than 64 MiB"
