"""Protocol: requests are checked (unknown fields named), events are strict JSON lines."""

from __future__ import annotations

import json

import pytest

from engine.process.protocol import ProtocolError, command_line, dumps, parse_request


def test_valid_requests_parse():
    assert parse_request('{"id": 1, "type": "status"}')["type"] == "status"
    req = parse_request(json.dumps({"id": "j1", "type": "submit", "task": "molecule", "n": 4, "seed": 3,
                                    "sampling": {"temperature": 1.0}}))
    assert req["n"] == 4


@pytest.mark.parametrize("line,words", [
    ("not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    ('{"id": 1, "type": "explode"}', "unknown request type 'explode'"),
    ('{"id": 1, "type": "submit"}', "missing field(s) task"),
    ('{"id": 1, "type": "submit", "task": "molecule", "temprature": 1}', "unknown field(s) temprature"),
    ('{"id": 1, "type": "submit", "task": "molecule", "n": 0}', "n must be an integer"),
    ('{"id": 1, "type": "submit", "task": "molecule", "seed": -1}', "seed must be"),
    ('{"id": 1, "type": "load_model"}', "give path"),
    ('{"id": 1, "type": "cancel"}', "missing field(s) job"),
])
def test_bad_requests_are_named(line, words):
    with pytest.raises(ProtocolError) as err:
        parse_request(line)
    assert words in str(err.value)


def test_events_are_strict_json():
    line = dumps({"type": "result", "ppl": float("nan"), "scores": {"x": float("inf")}})
    assert json.loads(line) == {"type": "result", "ppl": None, "scores": {"x": None}}
    assert "\n" not in dumps({"type": "result", "record": "a\nb"})


def test_command_line_reproduces_the_request():
    cmd = command_line({"task": "ligand", "inputs": {"file": "my complex.pdb"}, "n": 8, "seed": 2,
                        "options": {"ligand": "XK2", "cutoff": 5.0}, "sampling": {"top_p": 0.9}},
                       model="m.gguf")
    assert cmd == ("logos generate --task ligand --input 'my complex.pdb' --ligand XK2 -n 8 --seed 2 "
                   "--model m.gguf --top-p 0.9 --option cutoff=5.0")
