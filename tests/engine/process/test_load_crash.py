"""A model file that crashes the engine process inside llama.cpp while it loads (a real native
abort: two tokens with the same text make llama.cpp's vocabulary loader fail a GGML_ASSERT, which
our GGUF check does not look for). The load is answered with an error naming the file and how the
process died, the engine is restarted once without a model, and the load is never sent again."""

from __future__ import annotations

import shutil
import time

import pytest

from engine.process.client import EngineClient, EngineError, exit_reason
from tests.fixtures.required import require_module


def _duplicate_token_gguf(src, dest):
    """A copy of ``src`` whose token 2 has the text of token 3 (same length, edited in place)."""
    gguf = require_module("gguf")
    shutil.copy(src, dest)
    reader = gguf.GGUFReader(str(dest), "r+")
    tokens = reader.fields["tokenizer.ggml.tokens"]
    a, b = (bytes(tokens.parts[tokens.data[i]]) for i in (2, 3))
    assert len(a) == len(b) and a != b
    tokens.parts[tokens.data[2]][:] = list(b)
    del reader
    return dest


def test_a_load_that_crashes_the_engine_is_answered_and_not_replayed(tmp_path, tiny_llama_gguf):
    require_module("llama_cpp")
    crashing = _duplicate_token_gguf(tiny_llama_gguf, tmp_path / "two-same-tokens.gguf")
    seen = []
    c = EngineClient(on_event=seen.append, max_restarts=3)
    c.start()
    try:
        c.load_model_wait(str(tiny_llama_gguf), n_ctx=512, n_threads=1)
        first_pid = c.proc.pid
        t0 = time.monotonic()
        with pytest.raises(EngineError) as err:
            c.load_model_wait(str(crashing), n_ctx=512, n_threads=1, timeout=120)
        elapsed = time.monotonic() - t0
        message = str(err.value)
        assert message.startswith(f"{crashing}: the engine process crashed while loading it (killed by SIGABRT")
        assert "GGML_ASSERT" in message  # llama.cpp's own words for why
        assert message.endswith("the engine was restarted without a model and the file was not loaded again")
        assert "\n" not in message and "Traceback" not in message
        # restarted once, with no model, and the crashing load was not sent to the new process
        assert c.restarts == 1 and c.alive and c.proc.pid != first_pid
        time.sleep(1.0)  # a replayed load would crash the new process within this time
        st = c.status(timeout=30)
        assert st["model"] is None and c.restarts == 1 and c.alive
        kinds = [e["type"] for e in seen]
        assert kinds.count("engine_exited") == 1 and kinds.count("engine_restarted") == 1
        assert kinds.index("engine_restarted") < max(i for i, e in enumerate(seen) if e["type"] == "error")
        # the engine works: the good model loads and generates
        c.load_model_wait(str(tiny_llama_gguf), n_ctx=512, n_threads=1)
        job = c.submit("molecule", n=1, seed=1, sampling={"max_new_tokens": 4})
        assert list(c.iter_job(job, timeout=120))[-1]["status"] == "finished"
        # a later crash during a job restarts with the model that loaded, not the crashing file
        c.proc.kill()
        c.wait_for(lambda e: e["type"] == "model_loaded", 60)
        assert c.status(timeout=30)["model"]["path"] == str(tiny_llama_gguf) and c.restarts == 2
        print(f"\ncrashing load answered in {elapsed:.1f} s: {message[:160]}")
    finally:
        c.close()


def test_exit_reason_names_the_signal_or_code():
    assert exit_reason(-6) == "killed by SIGABRT (signal 6)"
    assert exit_reason(-11, "x.cpp:1: GGML_ASSERT(a) failed") == "killed by SIGSEGV (signal 11): x.cpp:1: GGML_ASSERT(a) failed"
    assert exit_reason(3) == "exit code 3"
