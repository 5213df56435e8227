"""Every field of every request type checked for type and range, NaN and infinities refused at
parse time, the line cap and the bounded queue of the engine process (in-process, no model)."""

from __future__ import annotations

import io
import json

import pytest

from engine.process.protocol import ProtocolError, parse_request
from engine.process.server import EngineServer, LineTooLong, read_lines


def _req(**fields) -> str:
    return json.dumps({"id": "r1", **fields})


@pytest.mark.parametrize("line,words", [
    # NaN and infinities: Python's json accepts them; the protocol does not
    ('{"id": 1, "type": "submit", "task": "molecule", "sampling": {"temperature": NaN}}', "NaN"),
    ('{"id": 1, "type": "submit", "task": "molecule", "sampling": {"top_p": Infinity}}', "Infinity"),
    ('{"id": 1, "type": "submit", "task": "molecule", "sampling": {"temperature": -Infinity}}', "-Infinity"),
    ('{"id": 1, "type": "submit", "task": "molecule", "sampling": {"temperature": 1e999}}', "sampling.temperature is 1e999, not a finite"),
    ('{"id": 1, "type": "submit", "task": "molecule", "options": {"cutoff": NaN}}', "options.cutoff is NaN"),
    ('{"id": NaN, "type": "status"}', "NaN"),
    # huge numbers and deep nesting
    ('{"id": 1, "type": "submit", "task": "molecule", "n": ' + "9" * 5000 + "}", "n is a number of 5000 digits"),
    ('{"id": 1, "type": "submit", "task": "molecule", "seed": 18446744073709551616}', "seed must be"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"id": 1, "type": "submit", "task": "molecule", "options": {"a": [[[[[1]]]]]}}', "nested too deeply"),
    # ids and types
    ('{"id": [1], "type": "status"}', "id must be"),
    ('{"id": true, "type": "status"}', "id must be"),
    ('{"id": "' + "x" * 300 + '", "type": "status"}', "id must be"),
    ('{"id": 1, "type": ["status"]}', "unknown request type a list"),
    ('{"id": 1}', "missing field type"),
    # load_model
    (_req(type="load_model", path=7), "path must be a string"),
    (_req(type="load_model", path="m.gguf", n_ctx="big"), "n_ctx must be an integer"),
    (_req(type="load_model", path="m.gguf", n_ctx=0), "n_ctx must be an integer"),
    (_req(type="load_model", path="m.gguf", n_threads=1.5), "n_threads must be an integer"),
    (_req(type="load_model", path="m.gguf", n_seq_max=10**9), "n_seq_max must be an integer"),
    (_req(type="load_model", path="m.gguf", n_gpu_layers="many"), "n_gpu_layers must be"),
    (_req(type="load_model", path="m.gguf", n_gpu_layers=-2), "n_gpu_layers must be"),
    (_req(type="load_model", url="http://127.0.0.1:1/v1", api_key=5), "api_key must be a string"),
    (_req(type="load_model", path="a\u0000b"), "NUL"),
    # submit
    (_req(type="submit", task=3), "task must be a string"),
    (_req(type="submit", task="molecule", n=True), "n must be an integer"),
    (_req(type="submit", task="molecule", n=2.0), "n must be an integer"),
    (_req(type="submit", task="molecule", inputs={"file": 1}), "inputs.file must be a string"),
    (_req(type="submit", task="molecule", inputs={"url": "x"}), "unknown field(s) inputs.url"),
    (_req(type="submit", task="molecule", inputs=[]), "inputs must be an object"),
    (_req(type="submit", task="molecule", options="x"), "options must be an object"),
    (_req(type="submit", task="molecule", sampling={"temperature": "hot"}), "must be a number"),
    (_req(type="submit", task="molecule", sampling={"temperature": True}), "must be a number"),
    (_req(type="submit", task="molecule", sampling={"top_k": [1]}), "must be a number"),
    (_req(type="submit", task="molecule", sampling={"top_q": 1}), "unknown sampling field(s): top_q"),
    (_req(type="submit", task="molecule", sampling={"max_new_tokens": 10**12}), "max_new_tokens must be"),
    (_req(type="submit", task="molecule", project=["a"]), "project must be a string"),
    (_req(type="submit", task="molecule", prompt=1), "prompt must be a string"),
    (_req(type="submit", task="molecule", grammar="yes"), "grammar must be true or false"),
    (_req(type="submit", task="molecule", reference={}), "reference must be a string"),
    # cancel, and fields of requests that take none
    (_req(type="cancel", job={"a": 1}), "job must be a job id"),
    (_req(type="status", verbose=True), "status: unknown field(s) verbose"),
    (_req(type="shutdown", now=1), "shutdown: unknown field(s) now"),
])
def test_every_field_is_checked(line, words):
    with pytest.raises(ProtocolError) as err:
        parse_request(line)
    assert words in str(err.value)
    assert len(str(err.value)) < 400  # one line, never the whole request echoed


def test_valid_fields_still_parse():
    req = parse_request(_req(type="load_model", path="m.gguf", n_gpu_layers="auto", n_ctx=2048, n_threads=2,
                             n_seq_max=64))
    assert req["n_ctx"] == 2048
    assert parse_request(_req(type="load_model", path="m.gguf", n_gpu_layers=-1))["n_gpu_layers"] == -1
    req = parse_request(_req(type="submit", task="ligand", inputs={"file": "c.pdb"}, n=8, seed=2**63 - 1,
                             options={"ligand": "XK2", "cutoff": 5.0, "residues": ["A:1", "A:2"]},
                             sampling={"temperature": 0, "top_k": 50, "max_new_tokens": 24},
                             project="p.logos", prompt="<MoleculeS>", grammar=True))
    assert req["n"] == 8


def _server(**kw):
    out = io.StringIO()
    return EngineServer(out, **kw), out


def _events(out):
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_full_queue_answers_busy_and_loses_no_job():
    server, out = _server(max_queue_size=3)  # no worker started: nothing leaves the queue
    for i in range(5):
        server.handle_line(json.dumps({"id": f"j{i}", "type": "submit", "task": "molecule"}))
    server.handle_line(json.dumps({"id": "L", "type": "load_model", "path": "m.gguf"}))
    events = _events(out)
    accepted = [e["job"] for e in events if e["type"] == "accepted"]
    assert accepted == ["j0", "j1", "j2"]
    busy = [e for e in events if e["type"] == "error"]
    assert [e.get("id") for e in busy] == ["j3", "j4", "L"]
    assert all(e["message"].startswith("busy: 3 requests are already waiting") for e in busy)
    failed = {e["job"]: e["status"] for e in events if e["type"] == "finished"}
    assert failed == {"j3": "failed", "j4": "failed"}  # a client waiting on them is answered
    assert server.queue.qsize() == 3
    # cancelling a queued job answers it at once; the status request is never queued
    server.handle_line(json.dumps({"id": "c", "type": "cancel", "job": "j1"}))
    server.handle_line(json.dumps({"id": "s", "type": "status"}))
    status = _events(out)[-1]
    assert status["type"] == "status" and status["queue"] == ["j0", "j2"]


def test_a_refused_submit_ends_its_job_but_not_a_live_one():
    server, out = _server()
    server.handle_line(json.dumps({"id": "a", "type": "submit", "task": "molecule"}))
    server.handle_line('{"id": "a", "type": "submit", "task": "molecule", "n": NaN}')
    server.handle_line('{"id": "b", "type": "submit", "task": "molecule", "sampling": {"temperature": NaN}}')
    events = _events(out)
    assert [e["type"] for e in events] == ["accepted", "error", "error", "finished"]
    assert events[1].get("job") is None  # job "a" is queued: its id is not ended by a bad copy
    assert events[3] == {"type": "finished", "job": "b", "status": "failed", "error": events[2]["message"],
                         "summary": None, "stats": None}


def test_long_lines_are_dropped_without_being_held():
    data = b'{"id": 1, "type": "status"}\n' + b"x" * 5000 + b"\n" + b"y" * 3000 + b'\n{"id": 2}\n' + b"z" * 9000
    lines = list(read_lines(io.BufferedReader(io.BytesIO(data), buffer_size=256), cap=1000))
    assert lines[0] == b'{"id": 1, "type": "status"}'
    assert isinstance(lines[1], LineTooLong) and lines[1].size == 5000
    assert isinstance(lines[2], LineTooLong) and lines[2].size == 3000
    assert lines[3] == b'{"id": 2}'
    assert isinstance(lines[4], LineTooLong) and lines[4].size == 9000
    assert len(lines) == 5


def test_the_server_reports_a_long_line_and_goes_on():
    server, out = _server(max_line_bytes=100)
    stream = io.BufferedReader(io.BytesIO(b"[" * 500 + b'\n{"id": "s", "type": "status"}\n'))
    server._read(stream)  # ends with shutdown (stdin closed)
    events = _events(out)
    assert events[0]["type"] == "error" and "request line too long (500 bytes; at most 100" in events[0]["message"]
    assert events[1]["type"] == "status" and events[1]["id"] == "s"
