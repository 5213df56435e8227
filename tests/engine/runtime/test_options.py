"""RuntimeOptions: the runtime's settings are passed in; the environment is read at the edge only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from engine.runtime.options import RuntimeOptions

RUNTIME = Path(__file__).resolve().parents[3] / "engine" / "runtime"


def test_options_from_an_environment_and_bad_values_keep_the_defaults():
    env = {"LOGOS_SAMPLER": "native", "LOGOS_REFILL": "0", "LOGOS_KV_STREAMS": "0",
           "LOGOS_PARALLEL_HOST_WORK": "4096", "LOGOS_THREADS": "3", "LOGOS_LLAMA_LOG": "1",
           "LOGOS_FUSED_STEPS": "0", "LOGOS_THREADED_DRAWS": "0"}
    o = RuntimeOptions.from_mapping(env)
    assert o == RuntimeOptions(sampler="native", refill=False, kv_streams=False, parallel_host_work=4096,
                               n_threads=3, llama_log=True, fused_steps=False, threaded_draws=False)
    assert RuntimeOptions.from_mapping({}) == RuntimeOptions()
    bad = RuntimeOptions.from_mapping({"LOGOS_PARALLEL_HOST_WORK": "lots", "LOGOS_THREADS": "-2", "LOGOS_REFILL": "1"})
    assert bad == RuntimeOptions()
    with pytest.raises(Exception):
        RuntimeOptions().sampler = "numpy"  # frozen: a changed setting is a new options object
    assert RuntimeOptions().replace(refill=False).refill is False


def test_nothing_under_engine_runtime_reads_the_environment():
    """os.environ, os.getenv and engine.env's readers appear nowhere in engine/runtime's code."""
    found = []
    for path in sorted(RUNTIME.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
                found.append(f"{path.name}:{node.lineno} os.{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module == "engine.env":
                found.append(f"{path.name}:{node.lineno} imports engine.env")
            if isinstance(node, ast.Name) and node.id in ("environ", "getenv", "env_int"):
                found.append(f"{path.name}:{node.lineno} {node.id}")
    assert not found, found


def test_an_unknown_sampler_falls_back_to_the_default_and_says_so(tiny_gguf):
    """A mistyped LOGOS_SAMPLER never stops a job: the default drawer draws (the same samples as
    asked for by name), and the job's notes name the known ones."""
    from engine.runtime.drawers import registered
    from engine.runtime.llama import Runtime

    assert {"logos", "numpy", "native", "grammar"} <= set(registered())
    rt = Runtime.load(tiny_gguf("llama", "special"), n_ctx=512, n_threads=1,
                      options=RuntimeOptions(sampler="fastest"))
    try:
        assert rt.plan.n_seq_max == 17  # the planner's CPU choice when no count is asked for
        odd, st_odd = rt.generate("<MoleculeS>", 3, seed=1)
        note = [n for n in st_odd.notes if n.startswith("sampler 'fastest' is unknown (known: ")]
        assert note and all(name in note[0] for name in ("logos", "numpy", "native")), st_odd.notes
        rt.options = rt.options.replace(sampler="logos")
        samples, stats = rt.generate("<MoleculeS>", 3, seed=1)
        assert [s.tokens for s in samples] == [s.tokens for s in odd] and stats.sampler == st_odd.sampler
        assert not any("sampler" in n for n in stats.notes)
    finally:
        rt.close()
