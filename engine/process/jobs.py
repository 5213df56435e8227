"""One generation job from request to stored results: build the task's prompt, resolve its stop
tags to token ids, decode all samples in one batch, then parse, validate and score each sample as
it finishes, emit it, and (with a project) store it in its own committed transaction; nothing of
a finished sample is kept (a job of 10,000 samples needs the memory of one of 16).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable

from engine.grammar import tags as T
from engine.process.protocol import command_line, event
from engine.runtime.sampling import SamplingParams
from engine.tasks.registry import get_task
from engine.tasks.scoring import RunTracker, reference_set

Emit = Callable[[dict], None]
PROMPT_PROGRESS_MIN = 256  # prompts longer than this (tokens) report their evaluation


@lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    st = os.stat(path)
    return _sha256(str(Path(path).resolve()), st.st_size, st.st_mtime)


def resolve_grammar(gbnf: str, token_id: Callable[[str], int | None]) -> str:
    """Replace each bare tag in a task grammar by its token (``<[id]>``) when the tag is one token,
    else by the quoted text, so the grammar works for control-typed, ordinary and remote vocabularies."""
    for tag in sorted(T.ALL_TOKENS, key=len, reverse=True):
        if tag in gbnf:
            tid = token_id(tag)
            gbnf = gbnf.replace(tag, f"<[{tid}]>" if tid is not None else json.dumps(tag))
    return gbnf


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from engine import __version__

    out = {"logos": __version__}
    for pkg in ("llama-cpp-python", "rdkit"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


class ResultWriter:
    """Hands finished samples to ``handle`` (evaluate, store, emit) in a thread of its own, in
    order, through a queue of at most ``depth`` samples: the generation waits when the writer is
    that far behind, so memory stays bounded whatever the job's size. An error in ``handle`` is
    raised in the generation's thread at its next :meth:`put` (stopping the job) or by
    :meth:`close`; samples after it are dropped."""

    def __init__(self, handle: Callable, depth: int = 64) -> None:
        self._handle = handle
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._error: BaseException | None = None
        self._raised = False
        self._thread = threading.Thread(target=self._run, name="logos-results", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue  # after a failure: drain, so that put() never blocks
            try:
                self._handle(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the generation's thread
                self._error = exc

    def put(self, sample) -> None:
        if self._error is not None:
            self._raised = True
            raise self._error
        self._queue.put(sample)

    def close(self) -> None:
        """Wait until every sample put so far is handled; raise the writer's error if it has not
        been raised yet."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and not self._raised:
            self._raised = True
            raise self._error


def run_job(runtime, req: dict, emit: Emit, cancel: threading.Event) -> dict:
    """Run one submit request; emits started/progress/result events and returns the ``finished``
    event for the caller to send once the job is off its books (status "finished" or
    "cancelled"). Raises for errors before or during generation (the caller sends the error
    event and a failed ``finished``)."""
    from engine.runtime.llama import Cancelled

    job = req.get("id")
    task = get_task(req["task"])
    options = task.check_options(req.get("options"))
    prompt = task.build_prompt(req.get("inputs") or {}, options)
    if req.get("prompt"):
        prompt.text = str(req["prompt"])
    base = SamplingParams.from_dict(task.sampling)
    params = SamplingParams.from_dict(req.get("sampling"), base=base)
    n = int(req.get("n", 1))
    seed = int(req.get("seed", 0))

    stop_ids, stop_texts = [], []
    for tag in prompt.stop_tags:
        tid = runtime.token_id(tag)
        if tid is not None:
            stop_ids.append(tid)
        else:
            stop_texts.append(tag)
    grammar = None
    if req.get("grammar"):
        g = task.grammar(prompt)
        if g is None:
            raise ValueError(f"task {task.name} has no grammar for constrained decoding")
        grammar = resolve_grammar(g, runtime.token_id)

    reference = None
    if task.novelty:
        ref_path = options.get("reference") or req.get("reference")
        reference = reference_set(ref_path)
    tracker = RunTracker(reference)

    model_label = str(getattr(runtime, "path", None) or getattr(runtime, "url", ""))
    cmd = command_line(req, model=model_label)
    project = None
    run_id = None
    status = "finished"
    stats = None
    error = None
    if req.get("project"):
        from engine.store.project import Project

        project = Project.open(req["project"], create=True)
    # From here the project is closed on every path: a failing add_model/add_input/start_run, a
    # failing emit, a failed or cancelled generation (the run, once started, is finished too).
    try:
        if project is not None:
            model_id = None
            if getattr(runtime, "path", None):
                model_id = project.add_model(str(runtime.path), file_sha256(runtime.path))
            input_ids = [project.add_input(r.data, r.fmt, r.name) for r in prompt.inputs]
            run_params = {"sampling": params.as_dict(), "n": n, "options": options, "command": cmd,
                          "grammar": bool(grammar), "stop_ids": stop_ids, "stop_texts": stop_texts,
                          "model": model_label, "backend": runtime.describe().get("backend")}
            sampler_name = getattr(runtime, "sampler_name", None)
            if sampler_name is not None:
                run_params["sampler"] = sampler_name(grammar)
            run_id = project.start_run(task.name, prompt.text, run_params, seed, model_id=model_id,
                                       input_ids=input_ids, versions=versions())
        emit(event("started", job=job, task=task.name, prompt=prompt.text, command=cmd, n=n, seed=seed,
                   sampling=params.as_dict(), stop_ids=stop_ids, stop_texts=stop_texts, run_id=run_id))

        last = [0.0]
        t0 = time.perf_counter()

        def on_progress(done: int, total: int, tokens: int, seconds: float) -> None:
            now = time.perf_counter()
            if now - last[0] < 0.25 and done < total:
                return
            last[0] = now
            tps = tokens / seconds if seconds > 0 else 0.0
            # by finished samples when there are some; else an upper bound from the token budget
            etas = []
            if done:
                etas.append(seconds / done * (total - done))
            if tps > 0:
                etas.append(max(0.0, total * params.max_new_tokens - tokens) / tps)
            eta = min(etas) if etas else None
            emit(event("progress", job=job, stage="generate", done=done, total=total, tokens=tokens,
                       tokens_per_s=round(tps, 1), eta_s=round(eta, 1) if eta is not None else None,
                       elapsed_s=round(now - t0, 2)))

        def on_prompt(done_tokens: int, total_tokens: int) -> None:
            if total_tokens > PROMPT_PROGRESS_MIN:
                emit(event("progress", job=job, stage="prompt", done=0, total=n, prompt_done=done_tokens,
                           prompt_total=total_tokens, tokens=0, tokens_per_s=0.0, eta_s=None,
                           elapsed_s=round(time.perf_counter() - t0, 2)))

        def on_sample(sample) -> None:
            cand = task.evaluate(sample.text, prompt)
            scores = dict(cand.scores)
            scores.update(tracker.add(cand.key, cand.valid))
            scores["ppl_output"] = sample.ppl_output
            rid = None
            if project is not None:
                rid = project.add_result(run_id, cand.record, objects=cand.objects, smiles=cand.smiles,
                                         sequence=cand.sequence, valid=cand.valid, reasons=cand.reasons,
                                         scores=scores, ppl=sample.ppl)
            emit(event("result", job=job, index=sample.index, seed=sample.seed, record=cand.record,
                       objects=cand.objects, valid=cand.valid, reasons=cand.reasons, ppl=sample.ppl,
                       scores=scores, stop=sample.stop, n_tokens=sample.n_tokens, result_id=rid))

        # each sample is evaluated, stored and emitted as it finishes, then forgotten: memory does
        # not grow with n (the runtime keeps none either). That work runs in a writer thread, so
        # the store's commits overlap the decoding instead of pausing it.
        writer = ResultWriter(on_sample)
        try:
            stats = runtime.stream(prompt.text, n, params, seed, stop_ids=stop_ids,
                                   stop_count=prompt.stop_count, stop_texts=stop_texts,
                                   grammar=grammar, cancel=cancel, on_sample=writer.put,
                                   on_progress=on_progress, on_prompt=on_prompt)
        except Cancelled:
            status = "cancelled"
        finally:
            writer.close()  # every finished sample is stored and emitted before "finished"
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if project is not None:
            try:
                if run_id is not None:
                    project.finish_run(run_id, status="failed" if error else status, error=error)
            finally:
                project.close()
    return event("finished", job=job, status=status, summary=tracker.summary(),
                 stats=stats.as_dict() if stats is not None else None, run_id=run_id)


__all__ = ["run_job", "resolve_grammar", "file_sha256", "ResultWriter"]
