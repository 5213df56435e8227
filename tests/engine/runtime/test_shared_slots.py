"""Jobs queued on one model share one set of slots (engine.runtime.slots), on the demonstration
model: a job that comes while another runs joins its slots at the next step, each job's samples
are the very samples it draws alone, cancel and errors stay the job's own, and a job that cannot
share waits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from engine.runtime.llama import Cancelled, Runtime
from engine.runtime.sampling import SamplingParams

DEMO = Path(__file__).resolve().parents[3] / "resources" / "models" / "logos-demo-q8_0.gguf"
SLOTS = 8


@pytest.fixture(scope="module")
def rt():
    r = Runtime.load(DEMO, n_threads=2, n_seq_max=SLOTS + 1)
    yield r
    r.close()


def _jobs(rt):
    """Three jobs of different tasks and sampling (prompt, n, params, seed, stop ids, stop texts)."""
    mol_end = rt.token_id("<MoleculeE>")
    return {
        "molecules": ("<MoleculeS>", 40, SamplingParams(max_new_tokens=48), 3, [mol_end], []),
        "forward": ("<MoleculeS>CCO<MoleculeE><React><MoleculeS>", 14,
                    SamplingParams(max_new_tokens=40, temperature=0.7, top_k=20, top_p=0.9), 11, [mol_end], []),
        "penalty_text_stop": ("<MoleculeS>c1ccccc1", 9,
                              SamplingParams(max_new_tokens=32, repetition_penalty=1.3, min_p=0.05), 5, [],
                              ["<MoleculeE>"]),
    }


def _key(samples):
    return [(s.index, s.seed, s.tokens, s.text, s.stop, s.logprobs, s.ppl, s.ppl_output) for s in samples]


def _alone(rt, spec):
    prompt, n, params, seed, stop_ids, stop_texts = spec
    samples, stats = rt.generate(prompt, n, params, seed, stop_ids=stop_ids, stop_texts=stop_texts)
    assert stats.shared_jobs == 1
    return samples, stats


class _Runner:
    """One job in its own thread, with the times of its results."""

    def __init__(self, rt, spec, cancel=None, on_sample=None, **kwargs):
        self.rt, self.spec, self.kwargs = rt, spec, kwargs
        self.cancel = cancel or threading.Event()
        self.samples, self.times, self.progress = [], [], 0
        self.error = None
        self.stats = None
        self.extra = on_sample
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_sample(self, s):
        self.times.append(time.perf_counter())
        self.samples.append(s)
        if self.extra is not None:
            self.extra(s)

    def _on_progress(self, *a):
        self.progress += 1

    def _run(self):
        prompt, n, params, seed, stop_ids, stop_texts = self.spec
        try:
            self.stats = self.rt.stream(prompt, n, params, seed, stop_ids=stop_ids, stop_texts=stop_texts,
                                        cancel=self.cancel, on_sample=self._on_sample,
                                        on_progress=self._on_progress, **self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - checked by the test
            self.error = exc
        self.end = time.perf_counter()

    def start(self):
        self.thread.start()
        return self

    def join(self, timeout=300):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the job did not end"
        return self

    def sorted(self):
        return sorted(self.samples, key=lambda s: s.index)


def _wait_running(runner, timeout=60):
    """Until the job has reported progress (its slot loop runs)."""
    t0 = time.perf_counter()
    while runner.progress < 2:
        assert time.perf_counter() - t0 < timeout and runner.thread.is_alive(), runner.error
        time.sleep(0.005)


def test_jobs_that_come_while_one_runs_join_its_slots_and_draw_what_they_draw_alone(rt):
    specs = _jobs(rt)
    # enough samples that the first job still runs when the others come (alone, its steps run in C
    # and report progress every 50 ms: most of a 40-sample job)
    prompt, _, params, seed, stop_ids, stop_texts = specs["molecules"]
    specs["molecules"] = (prompt, 240, params, seed, stop_ids, stop_texts)
    alone = {name: _alone(rt, spec) for name, spec in specs.items()}
    first = _Runner(rt, specs["molecules"]).start()
    _wait_running(first)
    others = {name: _Runner(rt, specs[name]).start() for name in ("forward", "penalty_text_stop")}
    first.join()
    for r in others.values():
        r.join()
    runners = {"molecules": first, **others}
    for name, r in runners.items():
        assert r.error is None, (name, r.error)
        assert _key(r.sorted()) == _key(alone[name][0]), name  # same seeds: the same samples
        assert r.stats.tokens_generated == alone[name][1].tokens_generated, name
        assert r.stats.shared_jobs >= 2, (name, r.stats.shared_jobs)  # they did run together
        assert r.stats.max_batch == SLOTS
    # the jobs that came later did not wait for the first one's tail
    for name, r in others.items():
        assert r.times[0] < first.times[-1], name
        assert r.end < first.end, name  # fewer samples, fair share of the slots: they end first


def test_a_cancelled_job_leaves_the_slots_and_the_others_go_on(rt):
    specs = _jobs(rt)
    prompt, _, params, seed, stop_ids, stop_texts = specs["molecules"]
    big = (prompt, 96, params, seed, stop_ids, stop_texts)
    alone = _alone(rt, big)[0]
    cancel = threading.Event()
    first = _Runner(rt, big).start()
    _wait_running(first)
    doomed_spec = ("<MoleculeS>", 400, SamplingParams(max_new_tokens=48), 9, stop_ids, [])
    doomed = _Runner(rt, doomed_spec, cancel=cancel, on_sample=lambda s: cancel.set()).start()
    doomed.join(60)
    first.join()
    assert isinstance(doomed.error, Cancelled)
    assert 1 <= len(doomed.samples) < 400
    assert doomed.end - doomed.times[0] < 2.0  # left within a few steps
    assert doomed.end < first.times[-1]  # ... while the other job still ran in the slots
    assert first.error is None and first.stats.shared_jobs >= 2
    assert _key(first.sorted()) == _key(alone)


def test_a_job_that_fails_alone_fails_and_the_others_go_on(rt):
    specs = _jobs(rt)
    alone = {name: _alone(rt, specs[name])[0] for name in ("molecules", "forward")}
    first = _Runner(rt, specs["molecules"]).start()
    _wait_running(first)

    def boom(s):
        raise OSError("disk full (test)")

    bad_grammar = _Runner(rt, specs["penalty_text_stop"], grammar='root ::= "unclosed').start()
    failing = _Runner(rt, specs["forward"], on_sample=boom).start()
    good = _Runner(rt, specs["forward"]).start()
    for r in (first, bad_grammar, failing, good):
        r.join()
    assert isinstance(bad_grammar.error, ValueError), bad_grammar.error
    assert isinstance(failing.error, OSError) and len(failing.samples) == 1
    assert first.error is None and good.error is None
    assert _key(first.sorted()) == _key(alone["molecules"])
    assert _key(good.sorted()) == _key(alone["forward"])


def test_a_job_that_cannot_share_waits_for_the_slots_to_drain(rt):
    specs = _jobs(rt)
    prompt, n, params, seed, stop_ids, stop_texts = specs["forward"]
    # a longer sample than the running loop's streams hold: another context need, it waits
    long_spec = (prompt, 4, SamplingParams(max_new_tokens=600, temperature=0.7), seed, stop_ids, stop_texts)
    alone = _alone(rt, long_spec)[0]
    first = _Runner(rt, specs["molecules"]).start()
    _wait_running(first)
    later = _Runner(rt, long_spec).start()
    first.join()
    later.join()
    assert first.error is None and later.error is None
    assert first.stats.shared_jobs == 1 and later.stats.shared_jobs == 1
    assert later.times[0] > first.times[-1]  # it started after the first job's last sample
    assert _key(later.sorted()) == _key(alone)


def test_a_native_sampler_job_waits_and_a_grammar_job_shares(rt, tmp_path):
    from engine.process.jobs import resolve_grammar
    from engine.tasks.registry import get_task

    task = get_task("molecule")
    prompt = task.build_prompt({}, task.check_options({}))
    grammar = resolve_grammar(task.grammar(prompt), rt.token_id)
    g_spec = (prompt.text, 6, SamplingParams(max_new_tokens=40), 21, [], [])
    g_alone = rt.generate(prompt.text, 6, g_spec[2], 21, grammar=grammar)[0]
    specs = _jobs(rt)
    first = _Runner(rt, specs["molecules"]).start()
    _wait_running(first)
    gjob = _Runner(rt, g_spec, grammar=grammar).start()
    gjob.join()
    first.join()
    assert gjob.error is None and gjob.stats.shared_jobs >= 2
    assert _key(gjob.sorted()) == _key(g_alone)

    native_opts = rt.options.replace(sampler="native")
    n_spec = specs["forward"]
    old = rt.options
    try:
        rt.options = native_opts
        n_alone = _alone(rt, n_spec)[0]
        rt.options = old
        first = _Runner(rt, specs["molecules"]).start()
        _wait_running(first)
        rt.options = native_opts  # read by stream() when the job is made
        later = _Runner(rt, n_spec).start()
        time.sleep(0.3)
        rt.options = old
        first.join()
        later.join()
    finally:
        rt.options = old
    assert later.error is None and later.stats.shared_jobs == 1
    assert later.times[0] > first.times[-1]
    assert _key(later.sorted()) == _key(n_alone)


def test_without_sharing_a_job_waits_and_a_waiting_job_cancels_at_once(rt):
    from engine.runtime.options import RuntimeOptions

    assert RuntimeOptions.from_mapping({"LOGOS_SHARE_SLOTS": "0"}).share_slots is False
    assert RuntimeOptions.from_mapping({}).share_slots is True
    specs = _jobs(rt)
    alone = _alone(rt, specs["forward"])[0]
    prompt, _, params, seed, stop_ids, stop_texts = specs["molecules"]
    old = rt.options
    rt.options = old.replace(share_slots=False)
    try:
        first = _Runner(rt, (prompt, 200, params, seed, stop_ids, stop_texts)).start()
        _wait_running(first)
        cancel = threading.Event()
        waiting = _Runner(rt, specs["forward"], cancel=cancel).start()
        later = _Runner(rt, specs["forward"]).start()
        time.sleep(0.2)
        t0 = time.perf_counter()
        cancel.set()
        waiting.join(30)
        first.join()
        later.join()
    finally:
        rt.options = old
    assert isinstance(waiting.error, Cancelled) and not waiting.samples
    assert waiting.end - t0 < 1.0 and waiting.end < first.times[-1]  # not after the running job's end
    assert later.error is None and later.stats.shared_jobs == 1
    assert later.times[0] > first.times[-1]
    assert _key(later.sorted()) == _key(alone)
