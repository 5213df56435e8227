"""Corrupt, truncated and wrong-architecture GGUF files (tests/reliability/gguf_corpus.py, made from
the tiny real GGUF our converter writes): a clear error naming the file from the model check
(``logos models info``), from the engine process (a crash inside llama.cpp stays in that process:
the client restarts it) and from the GUI (the window stays up, the next good model loads)."""

from __future__ import annotations

import collections
import contextlib
import io
import os

import pytest

from tests.fixtures.required import missing
from tests.reliability import gguf_corpus
from tests.reliability.conftest import record


def _llama_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


@pytest.fixture(scope="module")
def bad_ggufs(tiny_llama_gguf, tiny_llama_hf, tmp_path_factory):
    shards = sorted(tiny_llama_hf.glob("*.safetensors"))
    cases = gguf_corpus.corpus(tiny_llama_gguf, shards[0] if shards else None)
    return gguf_corpus.write(tmp_path_factory.mktemp("bad-gguf"), cases)


def test_model_check_refuses_each_bad_file_with_its_name(bad_ggufs):
    from engine.cli import main

    outcomes = collections.Counter()
    problems = []
    for case, path in bad_ggufs:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(["models", "info", str(path)])
            except SystemExit as exc:
                rc = exc.code
            except Exception as exc:  # noqa: BLE001 - a traceback for the user: a defect
                problems.append(f"{case.name}: {type(exc).__name__}: {exc}")
                continue
        msg = err.getvalue()
        if rc == 0:
            outcomes["accepted"] += 1
            if case.expect == "error" and not case.name.startswith(("wrong-arch", "bad-tensor-type")):
                problems.append(f"{case.name} ({case.why}): accepted by the check")
        else:
            outcomes["rejected"] += 1
            if path.name not in msg or "Traceback" in msg:
                problems.append(f"{case.name} ({case.why}): message does not name the file: {msg.strip()!r}")
    record("GGUF check (logos models info)", {"files": len(bad_ggufs), **outcomes})
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_engine_refuses_bad_models_and_stays_usable(bad_ggufs, tiny_llama_gguf):
    if not _llama_available():
        missing("llama_cpp is not installed")
    from engine.process.client import EngineClient, EngineError

    outcomes = collections.Counter()
    problems = []
    with EngineClient(auto_restart=True) as client:
        for case, path in bad_ggufs:
            try:
                client.load_model_wait(str(path), n_ctx=256, n_threads=1, timeout=120)
                outcome = "loaded"
            except EngineError as exc:
                msg = str(exc)
                outcome = "refused"
                if path.name not in msg or "Traceback" in msg:
                    problems.append(f"{case.name}: unclear message {msg!r}")
            if not client.alive or client.restarts:
                outcome = "engine crashed (contained, restarted)"
            outcomes[outcome] += 1
            if outcome == "loaded" and case.expect == "error":
                problems.append(f"{case.name} ({case.why}): loaded")
            if outcome == "loaded":  # a damaged model that loads must still generate or fail cleanly
                job = client.submit("molecule", n=1, seed=1, sampling={"max_new_tokens": 8})
                kinds = [e["type"] for e in client.iter_job(job, timeout=120)]
                assert kinds[-1] == "finished", kinds
            if not client.alive:
                client.restart()
        # the next good model loads and generates
        client.load_model_wait(str(tiny_llama_gguf), n_ctx=512, n_threads=1)
        job = client.submit("molecule", n=2, seed=3, sampling={"max_new_tokens": 16})
        events = list(client.iter_job(job, timeout=180))
        assert events[-1]["status"] == "finished"
        assert sum(e["type"] == "result" for e in events) == 2
    record("GGUF load in the engine process", {"files": len(bad_ggufs), **outcomes})
    assert not problems, "\n".join(problems)


@pytest.mark.gui
@pytest.mark.slow
def test_gui_stays_up_when_a_bad_model_is_loaded(qtbot, bad_ggufs, tiny_llama_gguf):
    if not _llama_available():
        missing("llama_cpp is not installed")
    os.environ.setdefault("LIBGL_ALWAYS_SOFTWARE", "1")
    from logos_desktop.engine_bridge import EngineBridge

    bridge = EngineBridge()
    failures: list[tuple[str, str]] = []
    loaded: list[dict] = []
    bridge.modelLoadFailed.connect(lambda p, why: failures.append((p, why)))
    bridge.modelLoaded.connect(lambda ev: loaded.append(ev))
    bridge.start()
    qtbot.waitUntil(lambda: bridge.ready, timeout=120_000)
    chosen = [(c, p) for c, p in bad_ggufs if c.expect == "error"][::3]
    for case, path in chosen:
        n = len(failures)
        bridge.load_model(str(path), n_ctx=256, n_threads=1)
        qtbot.waitUntil(lambda: len(failures) > n, timeout=120_000)
        assert failures[-1][0] == str(path)
        assert path.name in failures[-1][1] or "GGUF" in failures[-1][1], failures[-1]
        qtbot.waitUntil(lambda: bridge.ready, timeout=120_000)
    bridge.load_model(str(tiny_llama_gguf), n_ctx=512, n_threads=1)
    qtbot.waitUntil(lambda: bool(loaded), timeout=120_000)
    record("GGUF load from the GUI", {"bad_files": len(chosen), "refused_with_message": len(chosen),
                                      "good_model_loaded_after": bool(loaded)})
    bridge.stop()
