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

Limits: a request line holds at most 16 MiB (``LOGOS_ENGINE_MAX_LINE``; a longer one is read to its
end, dropped and answered with an error); at most 64 requests wait for the worker
(``LOGOS_ENGINE_MAX_QUEUE``; one more is answered "busy", a job with a failed ``finished``); every
field of every request is checked for type and range; NaN, infinities and numbers of more than 40
digits are refused with the field named; a refused submit whose id is readable ends with a failed
``finished`` so that no client waits on it.

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
  status       {id, model, queue, running, running_jobs, protocol}  (running: the first of running_jobs)
  tasks        {id, tasks}
  error        {id?, job?, message}
  bye          {}
"""

from __future__ import annotations

import json
import math
import os
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
MAX_N = 10_000  # samples in one job (their results are streamed: memory does not grow with n)

# Bounds on what one request may hold. The line cap is checked by the server's reader before any
# parsing (LOGOS_ENGINE_MAX_LINE bytes); the others here.
DEFAULT_MAX_LINE = 16 * 1024 * 1024
MAX_ID = 256  # characters of a string id
MAX_INT = 2**63 - 1  # ids, seeds
MAX_PATH = 4096
MAX_TEXT = 8 * 1024 * 1024  # pasted structures, edited prompts
MAX_SHORT = 1024  # task, model names, option values
MAX_DEPTH = 4  # nesting of options' values (an object of lists)
MAX_ITEMS = 4096  # keys of an object, items of a list, inside options
MAX_LAYERS = 100_000
MAX_CTX = 1 << 24
MAX_THREADS = 4096
MAX_SEQ = 4096


def max_line() -> int:
    """The longest request line the engine reads (bytes, newline excluded)."""
    try:
        value = int(os.environ.get("LOGOS_ENGINE_MAX_LINE", DEFAULT_MAX_LINE))
    except ValueError:
        return DEFAULT_MAX_LINE
    return value if value > 0 else DEFAULT_MAX_LINE


class ProtocolError(ValueError):
    """A request that cannot be accepted; the message is sent back in an error event."""

    def __init__(self, message: str, request_id=None, kind: str | None = None):
        super().__init__(message)
        self.request_id = request_id
        self.kind = kind  # the request's type, when it was a known one


class _NonFinite:
    """NaN, Infinity, -Infinity or an overflowing number in a request, kept as a marker while
    parsing so the error can name its field (and the request's id) instead of failing the line."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text[:40]

    def __repr__(self) -> str:
        return self.text


def _float(text: str):
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)  # 1e999


def _parse_int(text: str):
    # more digits than any field takes: kept as a marker (Python refuses over 4,300 digits anyway)
    return int(text) if len(text) <= 40 else _NonFinite(f"a number of {len(text.lstrip('-'))} digits")


def _loads(line: str):
    return json.loads(line, parse_constant=_NonFinite, parse_float=_float, parse_int=_parse_int)


def _find_non_finite(value) -> tuple[str, str] | None:
    """(field path, text) of the first non-finite number in a parsed request, or None."""
    stack = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, _NonFinite):
            return path or "the request", item.text
        if isinstance(item, dict):
            stack.extend((f"{path}.{str(k)[:40]}" if path else str(k)[:40], v) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(item))
    return None


def _valid_id(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -MAX_INT <= value <= MAX_INT
    return isinstance(value, str) and 0 < len(value) <= MAX_ID


def _what(value) -> str:
    if isinstance(value, _NonFinite):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return f"a string of {len(value)} characters" if len(value) > 60 else f"{value!r}"
    return {"dict": "an object", "list": "a list"}.get(type(value).__name__, type(value).__name__)


def _int(kind, key, value, lo, hi, rid):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProtocolError(f"{kind}: {key} must be an integer {lo}..{hi}, got {_what(value)}", rid)


def _str(kind, key, value, limit, rid, *, empty=False):
    if not isinstance(value, str):
        raise ProtocolError(f"{kind}: {key} must be a string, got {_what(value)}", rid)
    if not value and not empty:
        raise ProtocolError(f"{kind}: {key} must not be empty", rid)
    if len(value) > limit:
        raise ProtocolError(f"{kind}: {key} is too long ({len(value)} characters; at most {limit})", rid)
    if "\x00" in value:
        raise ProtocolError(f"{kind}: {key} holds a NUL character", rid)


def _plain(kind, key, value, rid, depth=0):
    """A value inside ``options``: strings, finite numbers, booleans, null, lists and objects of
    those, at most MAX_DEPTH deep and MAX_ITEMS wide."""
    if value is None or isinstance(value, (bool, int)):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise ProtocolError(f"{kind}: {key} is out of range", rid)
        return
    if isinstance(value, float):
        return  # finite: the parser refuses NaN and infinities
    if isinstance(value, str):
        _str(kind, key, value, MAX_TEXT, rid, empty=True)
        return
    if depth >= MAX_DEPTH:
        raise ProtocolError(f"{kind}: {key} is nested too deeply (at most {MAX_DEPTH} levels)", rid)
    if len(value) > MAX_ITEMS:
        raise ProtocolError(f"{kind}: {key} has too many items ({len(value)}; at most {MAX_ITEMS})", rid)
    if isinstance(value, dict):
        for k, v in value.items():
            _plain(kind, f"{key}.{k[:40]}", v, rid, depth + 1)
    else:
        for i, v in enumerate(value):
            _plain(kind, f"{key}[{i}]", v, rid, depth + 1)


def _object(kind, key, value, rid) -> dict:
    if not isinstance(value, dict):
        raise ProtocolError(f"{kind}: {key} must be an object, got {_what(value)}", rid)
    return value


def _check_load_model(req: dict, rid) -> None:
    kind = "load_model"
    if not (req.get("path") or req.get("url")):
        raise ProtocolError("load_model: give path (a GGUF file) or url (a completions server)", rid)
    for key, limit in (("path", MAX_PATH), ("url", MAX_PATH), ("model", MAX_SHORT), ("api_key", MAX_SHORT)):
        if req.get(key) is not None:
            _str(kind, key, req[key], limit, rid)
    layers = req.get("n_gpu_layers")
    if layers is not None and layers != "auto":
        if isinstance(layers, str) and layers.lstrip("-").isdigit() and len(layers) < 8:
            layers = int(layers)
            req["n_gpu_layers"] = layers
        if isinstance(layers, str):
            raise ProtocolError(f"load_model: n_gpu_layers must be \"auto\" or an integer -1..{MAX_LAYERS}, "
                                f"got {_what(layers)}", rid)
        _int(kind, "n_gpu_layers", layers, -1, MAX_LAYERS, rid)
    for key, lo, hi in (("n_ctx", 1, MAX_CTX), ("n_threads", 1, MAX_THREADS), ("n_seq_max", 1, MAX_SEQ)):
        if req.get(key) is not None:
            _int(kind, key, req[key], lo, hi, rid)


def _check_submit(req: dict, rid) -> None:
    from engine.runtime.sampling import SamplingParams

    kind = "submit"
    _str(kind, "task", req["task"], MAX_SHORT, rid)
    n = req.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise ProtocolError(f"submit: n must be an integer 1..{MAX_N}, got {_what(n)}", rid)
    seed = req.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_INT:
        raise ProtocolError(f"submit: seed must be a non-negative integer up to 2^63-1, got {_what(seed)}", rid)
    if req.get("inputs") is not None:
        inputs = _object(kind, "inputs", req["inputs"], rid)
        unknown = sorted(set(inputs) - {"file", "text"})
        if unknown:
            raise ProtocolError(f"submit: unknown field(s) inputs.{', inputs.'.join(k[:40] for k in unknown)} "
                                "(allowed: file, text)", rid)
        if inputs.get("file") is not None:
            _str(kind, "inputs.file", inputs["file"], MAX_PATH, rid, empty=True)
        if inputs.get("text") is not None:
            _str(kind, "inputs.text", inputs["text"], MAX_TEXT, rid, empty=True)
    if req.get("options") is not None:
        _plain(kind, "options", _object(kind, "options", req["options"], rid), rid)
    if req.get("sampling") is not None:
        try:
            SamplingParams.from_dict(_object(kind, "sampling", req["sampling"], rid))
        except ValueError as exc:
            if isinstance(exc, ProtocolError):
                raise
            raise ProtocolError(f"submit: sampling: {exc}", rid) from None
    for key, limit in (("project", MAX_PATH), ("reference", MAX_PATH), ("prompt", MAX_TEXT)):
        if req.get(key) is not None:
            _str(kind, key, req[key], limit, rid, empty=key == "prompt")
    if req.get("grammar") is not None and not isinstance(req["grammar"], bool):
        raise ProtocolError(f"submit: grammar must be true or false, got {_what(req['grammar'])}", rid)


def parse_request(line: str | bytes) -> dict:
    """One request line → dict, checked: JSON object (no NaN or infinity), known type, required
    and known fields (unknown ones named), and every field's type and range."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    try:
        req = _loads(line)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON ({exc.msg} at column {exc.colno}): {line[:80]!r}") from None
    except RecursionError:
        raise ProtocolError("not accepted: the JSON is nested too deeply") from None
    except ValueError as exc:  # NaN, Infinity, 1e999, integers of more than 4300 digits
        raise ProtocolError(f"not accepted: {str(exc)[:200]}") from None
    bad = _find_non_finite(req)
    if not isinstance(req, dict):
        raise ProtocolError(f"a request must be a JSON object, got {_what(req)}")
    rid = req.get("id")
    if rid is not None and not _valid_id(rid):
        raise ProtocolError(f"id must be a string of 1..{MAX_ID} characters or an integer, got {_what(rid)}")
    kind = req.get("type")
    if "type" not in req:
        raise ProtocolError(f"missing field type (known types: {', '.join(REQUESTS)})", rid)
    if bad is not None:
        where, text = bad
        raise ProtocolError(f"{kind if isinstance(kind, str) else 'request'}: {where} is {text}, not a "
                            "finite number in range (NaN, infinities and huge numbers are not accepted)", rid,
                            kind if kind in REQUESTS else None)
    if not isinstance(kind, str) or kind not in REQUESTS:
        shown = repr(kind) if isinstance(kind, str) and len(kind) <= 60 else _what(kind)
        raise ProtocolError(f"unknown request type {shown} (known: {', '.join(REQUESTS)})", rid)
    try:
        _check_fields(req, kind, rid)
    except ProtocolError as exc:
        exc.kind = kind
        raise
    return req


def _check_fields(req: dict, kind: str, rid) -> None:
    required, optional = REQUESTS[kind]
    fields = set(req) - {"id", "type"}
    missing = sorted(required - fields)
    if missing:
        raise ProtocolError(f"{kind}: missing field(s) {', '.join(missing)}", rid)
    unknown = sorted(fields - required - optional)
    if unknown:
        names = ", ".join(repr(u[:40]) if not u.isidentifier() else u for u in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise ProtocolError(f"{kind}: unknown field(s) {names}{more} "
                            f"(allowed: {', '.join(sorted(required | optional)) or 'none'})", rid)
    if kind == "load_model":
        _check_load_model(req, rid)
    elif kind == "submit":
        _check_submit(req, rid)
    elif kind == "cancel" and not _valid_id(req["job"]):
        raise ProtocolError(f"cancel: job must be a job id (a string or an integer), got {_what(req['job'])}", rid)


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
