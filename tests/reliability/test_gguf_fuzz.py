"""The structure-aware GGUF fuzzer (tests/reliability/gguf_fuzz.py) over the four paths that read a
model file a user brings: the reader (every case, in-process), ``logos models info/import`` (a
sample in-process, a few as real processes), the engine process's ``load_model`` (a sample with
the real tensor data; the engine must answer the next request) and the GUI's import (a sample; a
message box, the window stays up). Counts are printed (cases, tracebacks, crashes).

Budget: ``LOGOS_GGUF_FUZZ_N`` cases at least (default 1,000; all the structural cases are made
whatever the number), ``LOGOS_GGUF_FUZZ_SAMPLE`` cases for each of the slower paths (default
100; the engine also gets every case the reader accepts: those are the ones llama.cpp reads).
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.required import require_module
from tests.reliability import gguf_fuzz
from tests.reliability.conftest import record

N_CASES = int(os.environ.get("LOGOS_GGUF_FUZZ_N", "1000"))
SAMPLE = int(os.environ.get("LOGOS_GGUF_FUZZ_SAMPLE", "100"))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seed_bytes(tiny_llama_gguf) -> bytes:
    return Path(tiny_llama_gguf).read_bytes()


@pytest.fixture(scope="module")
def fuzz_cases(seed_bytes) -> list[gguf_fuzz.Case]:
    return gguf_fuzz.cases(seed_bytes, N_CASES)


def _sample(cases, k, salt):
    """A sample over every family (the rare families are never left out)."""
    rng = random.Random(salt)
    by = collections.defaultdict(list)
    for c in cases:
        by[c.family].append(c)
    picked = [rng.choice(v) for v in by.values()]
    rest = [c for c in cases if c not in picked]
    return picked + rng.sample(rest, max(0, k - len(picked)))


def _one_line_naming(msg: str, path: Path) -> bool:
    return path.name in msg and "Traceback" not in msg and len(msg.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------- the reader
def test_reader_fuzz_no_tracebacks(fuzz_cases, tmp_path):
    from engine.modelfiles.errors import ModelFileError
    from engine.modelfiles.gguf_info import inspect_gguf
    from engine.runtime.gguf_facts import read_facts

    assert len(fuzz_cases) >= 1000
    counts = collections.Counter()
    problems = []
    for i, case in enumerate(fuzz_cases):
        path = gguf_fuzz.write_case(tmp_path, i, case)
        for label, fn in (("inspect", lambda: inspect_gguf(path, with_hash=False)), ("facts", lambda: read_facts(path))):
            try:
                fn()
                counts["accepted"] += 1
            except ModelFileError as exc:
                counts["refused"] += 1
                if not _one_line_naming(str(exc), path):
                    problems.append(f"{case.name} ({label}): unclear message {str(exc)[:200]!r}")
                elif exc.offset is None and "tensor data incomplete" not in str(exc) and "not a GGUF" not in str(exc) \
                        and "only" not in str(exc) and "missing" not in str(exc):
                    problems.append(f"{case.name} ({label}): no offset in {str(exc)[:200]!r}")
            except BaseException as exc:  # noqa: BLE001 - a traceback for the user: the defect counted
                counts["tracebacks"] += 1
                problems.append(f"{case.name} ({label}): {type(exc).__name__}: {str(exc)[:200]}")
        path.unlink()
    figures = {"cases": len(fuzz_cases), "tracebacks": counts["tracebacks"], "crashes": 0,
               "refused": counts["refused"], "accepted": counts["accepted"]}
    print(f"\nGGUF fuzz, reader: {figures}")
    record("GGUF fuzz: reader (inspect_gguf + read_facts)", figures)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:30])


# ------------------------------------------------------------------------------------- named cases
def _alignment_file(tmp_path, seed_bytes, name, vtype, payload) -> Path:
    lay = gguf_fuzz.walk(seed_bytes)
    chunks = [c for c, k in zip(lay.kv_chunks, lay.kv_keys) if k != "general.alignment"]
    blob = gguf_fuzz.rebuild(seed_bytes, lay, chunks + [gguf_fuzz.kv("general.alignment", vtype, payload)])
    path = tmp_path / name
    path.write_bytes(blob)
    return path


def _extra_key_file(tmp_path, seed_bytes, name, key, vtype, payload) -> Path:
    lay = gguf_fuzz.walk(seed_bytes)
    blob = gguf_fuzz.rebuild(seed_bytes, lay, lay.kv_chunks + [gguf_fuzz.kv(key, vtype, payload)])
    path = tmp_path / name
    path.write_bytes(blob)
    return path


ISSUE_CASES = [
    # (file name, how to build, field named in the message)
    ("align-zero.gguf", ("align", 4, (0).to_bytes(4, "little")), "general.alignment"),
    ("align-three.gguf", ("align", 4, (3).to_bytes(4, "little")), "general.alignment"),
    ("align-string.gguf", ("align", 8, gguf_fuzz.gstr("32")), "general.alignment"),
    ("nested-5000.gguf", ("key", 9, gguf_fuzz.nested_array(5000)), "fuzz.key"),
    ("array-2e33.gguf", ("key", 9, (4).to_bytes(4, "little") + (2**33).to_bytes(8, "little")), "fuzz.key"),
    ("array-2e61.gguf", ("key", 9, (8).to_bytes(4, "little") + (2**61).to_bytes(8, "little")), "fuzz.key"),
]


def _build(tmp_path, seed_bytes, name, how) -> Path:
    kind, vtype, payload = how
    if kind == "align":
        return _alignment_file(tmp_path, seed_bytes, name, vtype, payload)
    return _extra_key_file(tmp_path, seed_bytes, name, "fuzz.key", vtype, payload)


@pytest.mark.parametrize("name, how, field", ISSUE_CASES, ids=[c[0] for c in ISSUE_CASES])
def test_reader_names_file_offset_and_field(tmp_path, seed_bytes, name, how, field):
    from engine.modelfiles.errors import ModelFileError
    from engine.modelfiles.gguf_info import inspect_gguf

    import tracemalloc

    path = _build(tmp_path, seed_bytes, name, how)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as err:
            inspect_gguf(path, with_hash=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(err.value)
    assert str(path) in msg and field in msg and "at byte" in msg and err.value.offset is not None, msg
    assert len(msg.splitlines()) == 1
    assert peak < 32 << 20, f"{peak:,} bytes allocated to refuse it"  # nothing sized by the file's claims


@pytest.mark.parametrize("name, how, field", ISSUE_CASES[:4], ids=[c[0] for c in ISSUE_CASES[:4]])
@pytest.mark.parametrize("action", ["info", "import"])
def test_cli_exit_1_with_one_line(tmp_path, seed_bytes, name, how, field, action):
    from engine.cli import main

    path = _build(tmp_path, seed_bytes, name, how)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["models", action, str(path)])
    msg = err.getvalue()
    assert rc == 1, (rc, msg, out.getvalue())
    assert _one_line_naming(msg, path) and field in msg, msg
    from engine.models.registry import Registry

    assert Registry().list() == []  # nothing registered, nothing copied in
    assert not list(Registry().files.glob("*")) if Registry().files.exists() else True


def test_cli_check_refuses_a_bad_gguf_before_the_reference(tmp_path, seed_bytes, tiny_llama_hf):
    from engine.cli import main

    path = _build(tmp_path, seed_bytes, "align-zero.gguf", ISSUE_CASES[0][1])
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main(["models", "check", str(path), "--hf", str(tiny_llama_hf), "--quants", ""])
    assert rc == 1 and _one_line_naming(err.getvalue(), path) and "general.alignment" in err.getvalue(), err.getvalue()


def test_engine_names_file_offset_and_field(tmp_path, seed_bytes, tiny_llama_gguf):
    """The issue's cases through the engine process: an error event naming the file, the offset and
    the field (one line); the engine keeps its loaded model and answers the next request."""
    require_module("llama_cpp")
    from engine.process.client import EngineClient, EngineError

    with EngineClient(auto_restart=False) as client:
        client.load_model_wait(str(tiny_llama_gguf), n_ctx=256, n_threads=1, timeout=120)
        for name, how, field in ISSUE_CASES:
            path = _build(tmp_path, seed_bytes, name, how)
            with pytest.raises(EngineError) as err:
                client.load_model_wait(str(path), n_ctx=256, n_threads=1, timeout=120)
            msg = str(err.value)
            assert _one_line_naming(msg, path) and field in msg and "at byte" in msg, msg
            assert "stays loaded" in msg, msg
            assert client.status(timeout=30)["type"] == "status"
        assert client.restarts == 0


@pytest.mark.parametrize("case_name, field", [
    ("alignment-u32=1", "tensor"),                          # ggml: "buffer pointer must be aligned"
    ("field-ttype-rope_freqs.weight-@17890=9", "rope_freqs.weight"),  # ggml: rope factors must be F32
])
def test_reader_refuses_what_aborts_ggml(fuzz_cases, tmp_path, case_name, field):
    """Files the fuzzer found that passed the check and then aborted the engine process inside
    ggml (GGML_ASSERT): refused by the check, naming the tensor."""
    from engine.modelfiles.errors import ModelFileError
    from engine.modelfiles.gguf_info import inspect_gguf

    case = next(c for c in fuzz_cases if c.name == case_name)
    path = gguf_fuzz.write_case(tmp_path, 0, case)
    with pytest.raises(ModelFileError) as err:
        inspect_gguf(path, with_hash=False)
    assert field in str(err.value) and err.value.offset is not None, str(err.value)


# ------------------------------------------------------------------------------------- the CLI
def test_cli_fuzz_sample(fuzz_cases, tmp_path):
    """A sample through ``logos models info`` and ``import`` in-process, and a few as real processes
    (exit code 1 or 0, one line on stderr, never a traceback)."""
    from engine.cli import main

    sample = _sample(fuzz_cases, max(SAMPLE * 3, 60), "cli")
    counts = collections.Counter()
    problems = []
    for i, case in enumerate(sample):
        path = gguf_fuzz.write_case(tmp_path, i, case)
        for action in (["models", "info", "--no-hash", str(path)], ["models", "import", "--reference", str(path)]):
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = main(action)
                except BaseException as exc:  # noqa: BLE001
                    counts["tracebacks"] += 1
                    problems.append(f"{case.name} {action[1]}: {type(exc).__name__}: {exc}")
                    continue
            counts[f"exit {rc}"] += 1
            if rc not in (0, 1) or (rc == 1 and not _one_line_naming(err.getvalue(), path)):
                problems.append(f"{case.name} {action[1]}: exit {rc}: {err.getvalue()[:300]!r}")
    procs = _sample(fuzz_cases, 6, "cli-proc")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for i, case in enumerate(procs):
        path = gguf_fuzz.write_case(tmp_path, 10_000 + i, case)
        proc = subprocess.run([sys.executable, "-m", "engine.cli", "models", "info", "--no-hash", str(path)],
                              capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
        counts[f"process exit {proc.returncode}"] += 1
        if proc.returncode not in (0, 1) or "Traceback" in proc.stderr:
            counts["tracebacks" if "Traceback" in proc.stderr else "crashes"] += 1
            problems.append(f"{case.name} (process): exit {proc.returncode}: {proc.stderr[-500:]!r}")
    figures = {"cases": len(sample) + len(procs), "tracebacks": counts["tracebacks"], "crashes": counts["crashes"],
               **{k: v for k, v in counts.items() if k.startswith(("exit", "process"))}}
    print(f"\nGGUF fuzz, CLI: {figures}")
    record("GGUF fuzz: logos models info/import", figures)
    assert not problems, "\n".join(problems[:30])


# ------------------------------------------------------------------------------------- the engine
def test_engine_fuzz_sample(fuzz_cases, seed_bytes, tiny_llama_gguf, tmp_path):
    """Every case our check accepts (those reach llama.cpp) and a sample of the others, with the
    real tensor data, through the engine process: each refused with an error event naming the file
    (or loaded, and then a job runs to its end); the client (the engine's parent) never fails, and
    the engine answers ``status`` after every case and generates with the good model at the end."""
    require_module("llama_cpp")
    from engine.modelfiles.errors import ModelFileError
    from engine.process.client import EngineClient, EngineError
    from engine.runtime.gguf_facts import read_facts

    accepted, rest = [], []
    for i, case in enumerate(fuzz_cases):
        path = gguf_fuzz.write_case(tmp_path, i, case)
        try:
            read_facts(path)
            accepted.append(case)
        except ModelFileError:
            rest.append(case)
        path.unlink()
    sample = accepted + _sample(rest, SAMPLE, "engine")
    counts = collections.Counter()
    problems = []
    client = EngineClient(auto_restart=True)
    client.start()
    try:
        for i, case in enumerate(sample):
            path = gguf_fuzz.write_full(tmp_path, i, case, seed_bytes)
            restarts = client.restarts
            try:
                client.load_model_wait(str(path), n_ctx=256, n_threads=1, timeout=60)
                counts["loaded"] += 1
                # a damaged model that loads generates, or fails its job cleanly
                job = client.submit("molecule", n=1, seed=1, sampling={"max_new_tokens": 4})
                kinds = [e["type"] for e in client.iter_job(job, timeout=120)]
                if not kinds or kinds[-1] != "finished":
                    problems.append(f"{case.name}: loaded, then the job ended with {kinds[-3:]}")
            except EngineError as exc:
                msg = str(exc)
                counts["refused"] += 1
                if "Traceback" in msg:
                    counts["tracebacks"] += 1
                if client.restarts > restarts or not client.alive:
                    # llama.cpp aborted the engine process: contained there (the client survives),
                    # but the request must still be answered with an error event
                    counts["engine crashes (child, contained)"] += 1
                    problems.append(f"{case.name}: the engine process died loading it ({msg[:120]})")
                    client.close()
                    client = EngineClient(auto_restart=True)  # a fresh engine without that load to replay
                    client.start()
                elif not _one_line_naming(msg, path):
                    problems.append(f"{case.name}: unclear message {msg[:300]!r}")
            st = client.status(timeout=60)  # the next request is answered
            if st.get("type") != "status":
                problems.append(f"{case.name}: status answered {st!r}")
            path.unlink()
        client.load_model_wait(str(tiny_llama_gguf), n_ctx=512, n_threads=1, timeout=120)
        job = client.submit("molecule", n=1, seed=1, sampling={"max_new_tokens": 8})
        events = list(client.iter_job(job, timeout=120))
        assert events[-1]["type"] == "finished" and events[-1]["status"] == "finished", events[-1]
    finally:
        client.close()
    figures = {"cases": len(sample), "accepted by the check": len(accepted), "tracebacks": counts["tracebacks"],
               "crashes (parent)": 0, "refused": counts["refused"], "loaded": counts["loaded"],
               "engine crashes (child, contained)": counts["engine crashes (child, contained)"]}
    print(f"\nGGUF fuzz, engine process: {figures}")
    record("GGUF fuzz: engine load_model", figures)
    assert not problems, "\n".join(problems[:30])
    assert counts["tracebacks"] == 0
