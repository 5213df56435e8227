"""The engine process protocol: newline-delimited JSON over stdin (requests) and stdout (events).

Requests carry ``{"id": ..., "type": ...}`` and the fields below; a field not listed is an error
(named in the error event), so a typo never passes silently. Events carry ``"type"`` and, where
they answer a request, its ``"id"``; job events carry ``"job"`` (the id of the submit request).

Requests
  load_model  {path | url, n_gpu_layers?, n_ctx?, n_threads?, n_seq_max?, model?}
              (``url``: an OpenAI-compatible completions server, e.g. http://127.0.0.1:8000/v1)
  submit      {task, inputs?, options?, n?, seed?, sampling?, project?, prompt?, grammar?}
              inputs: {"file": path} or {"text": pasted structure}; prompt: an edited prompt text
              that replaces the task's; grammar: true to constrain decoding with the task's GBNF
  cancel      {job}
  status      {}
  tasks       {}            (the task schemas, for building panels)
  unload      {}
  shutdown    {}

Events
  hello        {protocol, version, pid, backend}
  model_loaded {id, path, backend, n_gpu_layers, plan, architecture, n_vocab, n_ctx}
  load_progress {id, fraction}
  accepted     {id, job, position}            (queued)
  started      {job, task, prompt, command, n, seed, sampling, run_id?}
  progress     {job, stage: prompt|generate, done, total, tokens, tokens_per_s, eta_s,
                prompt_done?, prompt_total?}  (eta_s: by finished samples, or an upper bound
                from the token budget before the first one finishes)
  result       {job, index, seed, record, objects, valid, reasons, ppl, scores, stop, n_tokens, result_id?}
  finished     {job, status: finished|cancelled|failed, error?, summary?, stats?}
  status       {id, model, queue, running, protocol}
  tasks        {id, tasks}
  error        {id?, job?, message}
  bye          {}
"""

from __future__ import annotations

import json
import math
import shlex

PROTOCOL_VERSION = 1

# type -> (required fields, optional fields)
REQUESTS: dict[str, tuple[frozenset, frozenset]] = {
    "load_model": (frozenset(), frozenset({"path", "url", "model", "n_gpu_layers", "n_ctx", "n_threads",
                                           "n_seq_max", "api_key"})),
    "submit": (frozenset({"task"}), frozenset({"inputs", "options", "n", "seed", "sampling", "project",
                                               "prompt", "grammar", "reference"})),
    "cancel": (frozenset({"job"}), frozenset()),
    "status": (frozenset(), frozenset()),
    "tasks": (frozenset(), frozenset()),
    "unload": (frozenset(), frozenset()),
    "shutdown": (frozenset(), frozenset()),
}
EVENTS = ("hello", "model_loaded", "load_progress", "accepted", "started", "progress", "result",
          "finished", "status", "tasks", "error", "bye", "unloaded")
MAX_N = 1024


class ProtocolError(ValueError):
    """A request that cannot be accepted; the message is sent back in an error event."""

    def __init__(self, message: str, request_id=None):
        super().__init__(message)
        self.request_id = request_id


def parse_request(line: str) -> dict:
    """One request line → dict, checked: JSON object, known type, required and known fields."""
    try:
        req = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON ({exc.msg} at column {exc.colno}): {line[:80]!r}") from None
    if not isinstance(req, dict):
        raise ProtocolError(f"a request must be a JSON object, got {type(req).__name__}")
    rid = req.get("id")
    kind = req.get("type")
    if kind not in REQUESTS:
        raise ProtocolError(f"unknown request type {kind!r} (known: {', '.join(REQUESTS)})", rid)
    required, optional = REQUESTS[kind]
    fields = set(req) - {"id", "type"}
    missing = sorted(required - fields)
    if missing:
        raise ProtocolError(f"{kind}: missing field(s) {', '.join(missing)}", rid)
    unknown = sorted(fields - required - optional)
    if unknown:
        raise ProtocolError(f"{kind}: unknown field(s) {', '.join(unknown)} "
                            f"(allowed: {', '.join(sorted(required | optional))})", rid)
    if kind == "load_model" and not (req.get("path") or req.get("url")):
        raise ProtocolError("load_model: give path (a GGUF file) or url (a completions server)", rid)
    if kind == "submit":
        n = req.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_N:
            raise ProtocolError(f"submit: n must be an integer 1..{MAX_N}, got {n!r}", rid)
        seed = req.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ProtocolError(f"submit: seed must be a non-negative integer, got {seed!r}", rid)
        for key in ("inputs", "options", "sampling"):
            if req.get(key) is not None and not isinstance(req[key], dict):
                raise ProtocolError(f"submit: {key} must be an object", rid)
    return req


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def dumps(event: dict) -> str:
    """One event as one JSON line (NaN and infinity become null: strict JSON for every reader)."""
    return json.dumps(_clean(event), separators=(",", ":"), ensure_ascii=False)


def event(kind: str, **fields) -> dict:
    return {"type": kind, **fields}


def command_line(req: dict, model: str | None = None) -> str:
    """The ``logos generate`` command equivalent to a submit request (logged with every run)."""
    parts = ["logos", "generate", "--task", str(req["task"])]
    inputs = req.get("inputs") or {}
    if inputs.get("file"):
        parts += ["--input", str(inputs["file"])]
    opts = dict(req.get("options") or {})
    if opts.get("ligand"):
        parts += ["--ligand", str(opts.pop("ligand"))]
    parts += ["-n", str(req.get("n", 1)), "--seed", str(req.get("seed", 0))]
    if model:
        parts += ["--model", model]
    for key, value in (req.get("sampling") or {}).items():
        parts += [f"--{key.replace('_', '-')}", str(value)]
    for key, value in opts.items():
        if value is not None:
            if isinstance(value, (list, tuple)):
                value = ",".join(map(str, value))
            parts += ["--option", f"{key}={value}"]
    if req.get("project"):
        parts += ["--project", str(req["project"])]
    if req.get("grammar"):
        parts += ["--grammar"]
    if req.get("prompt"):
        parts += ["--prompt", req["prompt"]]
    return shlex.join(parts)
