"""The slots of a loaded model, shared by the jobs queued on it.

Every job (:class:`engine.runtime.job.JobState`) goes through one queue per runtime
(:class:`SlotScheduler`); one thread runs the slot loop (:class:`SlotLoop`), and each caller of
:meth:`engine.runtime.llama.Runtime.stream` waits for its own job only (its results, progress and
cancel stay its own; its callbacks run in the loop's thread).

How jobs share the slots:

- the first job of a loop chooses the KV layout (:meth:`Runtime._layout`) and its slot count W;
  its prompt goes to sequence 0 and is copied to the W slot sequences, as before;
- a job queued while the loop runs JOINS it at the next step, when it can share: the loop has one
  KV stream per sequence and its streams hold the job's prompt and its longest sample
  (``n_prompt + max_new_tokens <= cells per stream``), the first job and the new one both use a
  drawer that can draw for a subset of the step's rows (``drawers.register(..., shares=True)``:
  "logos", "numpy", "grammar"; llama.cpp's own chains ("native", "backend") read the context's
  outputs by row number and cannot), slots refill (``RuntimeOptions.refill``), and fewer than
  :data:`MAX_JOBS` jobs are in the loop. Otherwise the job waits, as before, for the loop to
  drain and starts the next one (the queue is first come, first served: a job that cannot join
  holds the ones behind it, so it is never overtaken);
- a joining job's prompt is evaluated (with its log-probabilities) in sequence 0 when that is
  free (the first job has started all its samples), else in the sequence of a slot that has just
  freed, which then decodes the new job's first sample on it (no slot is set aside for prompts:
  a slot set aside made every step one token smaller and, with a gap in the batch's sequences,
  slower); the job's own drawer is built for the W slots (each job keeps its own sampling settings,
  grammar, penalty history and random streams per slot) and its own stop rule;
- FAIRNESS: when a sample ends, its slot takes the next sample of the job with the FEWEST
  samples in slots now (ties: the job whose prompt the slot already holds, which saves copying a
  prompt, then the job that came first). A job that joins a full loop therefore takes every
  freed slot until it holds as many as the others, then the slots alternate;
- a slot that changes job gets the new job's prompt copied in (``llama_memory_seq_cp`` of a
  sequence holding it: sequence 0, or any slot of that job, whose sample's tokens are then dropped
  from the copy); one that stays with its job keeps its prompt copy. The last slot holding the
  prompt of a job with samples still to start stays with that job (which the fairness rule gives
  it anyway: that job then has no sample in a slot);
- a loop that ends cleanly leaves its prompts in the context (:class:`KeptPrompts`); the next
  loop's first job, when its prompt is one of them (same tokens; log-probabilities kept when it
  asks for them), starts from those cells (``RuntimeOptions.prompt_cache``): no prompt decode, no
  copy, each slot just drops its old sample's tokens. Anything else that changes the cells in
  between (a decode, a copy, another layout: ``LlamaContext.epoch``) makes it evaluate its prompt;
- a job LEAVES when its last sample is handed on, when it is cancelled (checked before every
  step: its slots go to the other jobs at that step), or when handing on one of its samples
  fails (its error is raised in its caller's thread; the others go on). llama.cpp's abort flag
  (which stops a decode half-way) is raised only when every job in the loop is cancelled.

A job's samples are the same whatever shares the slots with it: each sample draws from its own
seed, its job's prompt row and penalty history, and its own sequence.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from engine.runtime import drawers
from engine.runtime._internals import Cancelled
from engine.runtime.job import JobState, SampleMaker

MAX_JOBS = 16  # jobs in one loop at most; more wait
# seconds the loop's thread waits for the next job before it ends: llama.cpp's CPU backend keeps
# an OpenMP team per thread that decodes, and a new thread's first llama_decode cost 0.5-22 ms
# here (measured), which is most of a small job
LINGER_S = 10.0
END_REASONS = {1: "stop_token", 2: "eog", 3: "length"}  # the C step loop's codes (StopRule.end_codes)


class _LoopWatcher:
    """While a long llama_decode runs, turn cancellation into llama.cpp's abort flag: every 50 ms,
    when every job of the scheduler's running loop is cancelled, the flag is raised. One thread
    per scheduler thread (it ends with it): a thread started per job cost up to 2 ms of the job
    (``Thread.start`` waits for the new thread to run, with both cores busy).

    A loop is watched from :meth:`watch` until :meth:`unwatch` returns; after that the watcher
    never raises the flag for it (the next loop clears the flag when it starts, and a late raise
    would abort that loop's first decode). Both hold the loop's ``flag_lock``, as does the
    check."""

    def __init__(self, sched) -> None:
        self.sched = sched
        self.owner = threading.current_thread()  # the scheduler's thread: the watcher ends with it
        self._loop = None
        self._thread = threading.Thread(target=self._run, name="logos-cancel-watch", daemon=True)
        self._thread.start()

    def watch(self, loop) -> None:
        with loop.flag_lock:
            self._loop = loop

    def unwatch(self, loop) -> None:
        with loop.flag_lock:
            if self._loop is loop:
                self._loop = None

    def _run(self) -> None:
        while self.owner.is_alive():
            time.sleep(0.05)
            loop = self._loop
            if loop is None:
                continue
            with loop.flag_lock:
                if self._loop is loop and loop.all_cancelled():
                    self.sched.rt.abort_flag.set()


@dataclass
class StepRun:
    """The loop's arrays that steps run in C read and write (``engine.runtime._stepper.run_steps``):
    per slot its tokens so far (``length``), its tokens and log-probabilities (``toks``, ``lps``:
    slots x ``cap``), its job's prompt length (``npos``), its batch sequence id (``seqs``) and the
    sample it decodes (``index``); the job's end codes per token (``ends``), its ``max_new``, and
    the samples freed slots take in C (``next_seeds``, numbered from ``first_index``). A call
    returns after ``max_steps`` decodes, ``max_seconds`` (progress is reported then), when the
    abort flag is raised (cancel), when a job is queued (the scheduler's ``wake`` word, read at
    every step), or when a slot is freed with no sample prepared unless ``may_drop``."""

    handles: np.ndarray
    length: np.ndarray
    toks: np.ndarray
    lps: np.ndarray
    cap: int
    npos: np.ndarray
    seqs: np.ndarray
    ends: np.ndarray
    max_new: int
    index: np.ndarray  # the sample each slot decodes (written for the samples started in C)
    next_seeds: list  # the seeds of the samples the freed slots take, in order
    first_index: int  # the index of the first of them
    may_drop: bool  # a slot freed with no sample left to start drops out of the batch (else: back to Python)
    max_steps: int = 1 << 30
    max_seconds: float = 0.05
    start: np.ndarray | bytes = b""  # int64 free slots that take the first prepared samples before the first draws


class _Call:
    """A function queued to run in the loop's thread between loops (:meth:`SlotScheduler.call`)."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.cancel = threading.Event()
        self.key = 0
        self.result = None
        self.error: BaseException | None = None
        self._done = threading.Event()

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            self.error = exc
        self._done.set()

    def end(self, error: BaseException | None) -> None:
        self.error = error
        self._done.set()

    def wait(self):
        self._done.wait()
        if self.error is not None:
            raise self.error
        return self.result


# The schedulers whose thread waits for a job (LINGER_S). A thread that starts to decode dismisses
# the others': llama.cpp's CPU backend keeps an OpenMP team per thread that has decoded, and with
# more teams than cores its threads stop spinning at barriers and every decode runs 2-3x slower
# (docs/benchmarks.md). Two runtimes that decode at the same time still have a team each.
_LINGER_LOCK = threading.Lock()
_LINGERING: set = set()


def _dismiss_lingering(me) -> None:
    with _LINGER_LOCK:
        others = [s for s in _LINGERING if s is not me]
    for other in others:
        with other._lock:
            other._dismissed = True
            thread = other._thread
            other._arrived.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(1.0)  # it ends at once unless a job came to it meanwhile


@dataclass(frozen=True)
class KeptPrompt:
    """A prompt a loop evaluated: its tokens, whether its log-probabilities were summed, their sum,
    and the logits after its last token (read-only)."""

    ptoks: tuple
    scored: bool
    prompt_lp: float
    last_row: np.ndarray

    @classmethod
    def of(cls, job, prompt_lp: float, last_row: np.ndarray) -> "KeptPrompt":
        return cls(tuple(job.ptoks), bool(job.score_prompt), prompt_lp, last_row)


@dataclass(frozen=True)
class KeptPrompts:
    """What a slot loop that ended cleanly leaves for the next one: the sequences that hold a
    prompt at positions 0..n-1 (a slot's old sample's tokens may follow it), the sequences it used,
    and the context's ``epoch`` then (any later change to the cells makes these stale)."""

    ctx: object
    epoch: int
    holders: dict  # sequence -> KeptPrompt
    used: frozenset  # sequences that may hold cells

    def match(self, ctx, job) -> tuple[list[int], KeptPrompt] | None:
        """The sequences holding ``job``'s prompt and its record, if the cells are still as left."""
        if ctx is not self.ctx or ctx.epoch != self.epoch or not ctx.ptr:
            return None
        want = tuple(job.ptoks)
        seqs = [seq for seq, kp in self.holders.items()
                if kp.ptoks == want and (kp.scored or not job.score_prompt)]
        return (seqs, self.holders[seqs[0]]) if seqs else None


class SlotScheduler:
    """A runtime's job queue and the thread that runs its slot loops (started when a job comes,
    gone when the queue has stayed empty for :data:`LINGER_S` seconds, when another runtime's
    thread starts to decode, or when the runtime closes). ``busy`` is held while a loop uses the
    context."""

    def __init__(self, runtime) -> None:
        self.rt = runtime
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # a job was queued (or the runtime closes)
        self._queue: deque = deque()  # JobState, or _Call
        self._thread: threading.Thread | None = None
        self._keys = itertools.count(1)
        self._closed = False
        self._dismissed = False
        self.busy = threading.RLock()
        self.loop: SlotLoop | None = None
        self.kept: KeptPrompts | None = None  # the prompts the last loop left in the context
        self.wake = np.zeros(1, dtype=np.int64)  # 1 when a job was queued since the last admission: steps in C return

    def submit(self, job):
        with self._lock:
            if self._closed:
                raise RuntimeError("no model loaded")
            job.key = next(self._keys)
            self._queue.append(job)
            if isinstance(job, JobState):
                self.wake[0] = 1
            self._arrived.notify()
            if self._thread is None:
                self._dismissed = False
                self._thread = threading.Thread(target=self._run, name="logos-slots", daemon=True)
                self._thread.start()
        return job

    def waiting(self) -> bool:
        """Whether jobs (or calls) are queued."""
        return bool(self._queue)

    def call(self, fn):
        """Run ``fn()`` in the loop's thread, after the jobs queued before it, and return its result
        (or raise its error). For llama.cpp calls outside jobs, which must not decode from another
        thread (see :data:`_LINGERING`)."""
        if self._thread is not None and self._thread is threading.current_thread():
            return fn()
        return self.submit(_Call(fn)).wait()

    def admit(self, accepts) -> list[JobState]:
        """Queued jobs that join the running loop now (first come, first served: the first that
        ``accepts`` refuses stops the admission). Jobs cancelled while queued end here, whether
        the loop can take jobs or not (``accepts`` None: none joins)."""
        with self._lock:
            self.wake[0] = 0  # those left cannot join now: asked again when the steps come back to Python
            if not self._queue:
                return []
            gone = [j for j in self._queue if j.cancel.is_set()]
            for j in gone:
                self._queue.remove(j)
            out = []
            while (accepts is not None and self._queue and isinstance(self._queue[0], JobState)
                   and accepts(self._queue[0])):
                out.append(self._queue.popleft())
        for j in gone:
            j.end(Cancelled("cancelled"))
        return out

    def _run(self) -> None:
        watcher = _LoopWatcher(self)
        while True:
            with self._lock:
                if not self._queue and not self._closed and not self._dismissed:
                    with _LINGER_LOCK:  # linger: the next job keeps this thread (and its OpenMP team)
                        _LINGERING.add(self)
                    self._arrived.wait(LINGER_S)
                    with _LINGER_LOCK:
                        _LINGERING.discard(self)
                if not self._queue:
                    self._thread = None
                    return
                first = self._queue.popleft()
                self._dismissed = False
            if first.cancel.is_set():
                first.end(Cancelled("cancelled"))
                continue
            _dismiss_lingering(self)
            if isinstance(first, _Call):
                with self.busy:
                    first.run()
                continue
            with self.busy:
                loop = self.loop = SlotLoop(self.rt, self)
                try:
                    loop.run(first, watcher)
                except BaseException as exc:  # noqa: BLE001 - a bug: every job of the loop gets it
                    for j in [first] + loop.jobs:
                        j.end(exc)
                finally:
                    self.loop = None

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel every queued and running job and wait for the loop's thread (the runtime is
        closing)."""
        with self._lock:
            self._closed = True
            queued = list(self._queue)
            self._queue.clear()
            self.wake[0] = 0
            thread = self._thread
            self._arrived.notify_all()
        for j in queued:
            j.cancel.set()
            j.end(Cancelled("cancelled: the model was closed"))
        loop = self.loop
        if loop is not None:
            for j in list(loop.jobs):
                j.cancel.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


class SlotLoop:
    """W slots (KV sequences) decoding the samples of one or several jobs, one llama_decode per
    step for all of them (see the module docstring)."""

    def __init__(self, runtime, scheduler: SlotScheduler) -> None:
        self.rt = runtime
        self.sched = scheduler
        self.jobs: list[JobState] = []  # in the loop now, in the order they came
        self.by_key: dict[int, JobState] = {}
        self.freed: list[int] = []  # slots whose sample ended in this step
        self.idle: list[int] = []  # free slots with no sample to start
        self.seq0 = -1  # the key of the job whose prompt sequence 0 holds (-1: free)
        self._reserved: list[int] = []  # slots whose sequences take the prompts of the jobs joining now
        self.shared = False
        self._first_in_c = False  # the first job's first samples not drawn yet (they may start in C)
        self.flag_lock = threading.Lock()
        self.prompts: dict[int, KeptPrompt] = {}  # job key -> its evaluated prompt
        self.kv_broken = False  # a decode failed or was aborted: the cells are not kept for the next loop

    # ---------------------------------------------------------------- start
    def all_cancelled(self) -> bool:
        jobs = tuple(self.jobs)
        return bool(jobs) and all(j.cancel.is_set() for j in jobs)

    def run(self, first: JobState, watcher: _LoopWatcher) -> None:
        rt = self.rt
        self.jobs = [first]  # watched from here (its prompt's evaluation can be aborted)
        rt.abort_flag.clear()
        watcher.watch(self)
        kept, self.sched.kept = self.sched.kept, None
        try:
            try:
                self._start(first, kept)
            except Exception as exc:  # noqa: BLE001 - the job's error, raised in its caller's thread
                self.jobs = []
                first.end(exc)
                return
            self._steps()
            self._keep()
        finally:
            watcher.unwatch(self)

    def _keep(self) -> None:
        """Leave the loop's prompts for the next loop (:class:`KeptPrompts`), unless a decode
        failed or the option is off."""
        if self.kv_broken or not self.rt.options.prompt_cache or not self.prompts:
            return
        holders = {}
        if self.multi:
            for s in range(self.width):
                kp = self.prompts.get(int(self.held[s]))
                if kp is not None:
                    holders[int(self.seqs[s])] = kp
            if self.seq0 >= 0 and self.seq0 in self.prompts:
                holders[0] = self.prompts[self.seq0]
        elif int(self.held[0]) in self.prompts:  # one sequence: the slot is sequence 0
            holders[0] = self.prompts[int(self.held[0])]
        if holders:
            self.sched.kept = KeptPrompts(self.ctx, self.ctx.epoch, holders, frozenset([0, *self.seqs.tolist()]))

    def _start(self, first: JobState, kept: KeptPrompts | None = None) -> None:
        rt = self.rt
        stats = first.stats
        n_slots, unified = rt._layout(first.n, first.n_prompt, first.rule.max_new, stats)
        ctx = self.ctx = rt.context
        self.multi = multi = ctx.n_seq > 1
        self.layout = stats.layout
        reuse = kept.match(ctx, first) if (kept is not None and rt.options.prompt_cache) else None
        if reuse is not None:
            kp = reuse[1]
            prompt_lp, last_row = kp.prompt_lp, kp.last_row
            stats.prompt_reused = True
            if first.on_prompt is not None:
                first.on_prompt(first.n_prompt, first.n_prompt)
        else:
            ctx.clear()
            prompt_lp, last_row = rt._evaluate_prompt(first.ptoks, first.score_prompt, first.cancel, first.on_prompt,
                                                      stats, seq=0)
        self.prompts[first.key] = KeptPrompt.of(first, prompt_lp, last_row)
        width = self.width = min(n_slots, first.n)
        self.seqs = np.arange(1, width + 1, dtype=np.int32) if multi else np.zeros(width, dtype=np.int32)
        self.seq_of = self.seqs if multi else np.zeros(width, dtype=np.int32)  # each slot's batch sequence id
        self.room = ctx.n_ctx_seq if (multi and not unified) else 0  # tokens of one sequence's stream
        self.refill = rt.options.refill
        self.job_of = np.full(width, -1, dtype=np.int64)  # the key of the job whose sample the slot decodes
        self.held = np.full(width, -1, dtype=np.int64)  # the key of the job whose prompt the slot's sequence holds
        self.index = np.zeros(width, dtype=np.int64)  # the sample each slot decodes
        self.length = np.zeros(width, dtype=np.int64)  # its tokens so far
        self.npos = np.zeros(width, dtype=np.int64)  # its job's prompt length (positions)
        self.stops = np.zeros(width, dtype=np.int64)  # closing tags seen
        self.texts = [b""] * width
        self.cap = 0
        self._ensure_cap(first.rule.max_new)
        first.prompt_seq = 0
        self.seq0 = first.key
        if reuse is not None:
            self._reuse_prompt(first, reuse[0], kept)
        self._open(first, prompt_lp, last_row, [first.seed_of(i) for i in range(width)])
        self.shared = bool(self.room and self.refill and self.rt.options.share_slots
                           and drawers.shares(first.sampler))
        # steps in C (None: none); they return at the next step when a job is queued that may join
        self.handles = ctx.step_handles(self.sched.wake if self.shared else None) if rt.options.fused_steps else None
        if multi and reuse is None:
            for s in self.seqs.tolist():
                ctx.seq_cp(0, s)
        for s in range(width):  # samples 0..W-1 in slots 0..W-1, seeded as the drawer was made
            self.index[s] = s
            self.job_of[s] = first.key
            self.held[s] = first.key
            self.npos[s] = first.n_prompt
        first.started = first.in_flight = width
        self._fresh0 = list(range(width))
        self._first_in_c = True  # their first tokens may be drawn in C, with the steps that follow

    def _reuse_prompt(self, first: JobState, holding: list[int], kept: KeptPrompts) -> None:
        """The first job's prompt is in the sequences ``holding`` (left by the loop before): each
        slot keeps it and drops its old sample's tokens (or copies it from a holder when it holds
        another prompt); sequence 0 keeps it when it has it, else is emptied; the sequences
        the loop before used and this one does not are emptied (in a unified cache their cells are
        everyone's room)."""
        ctx = self.ctx
        n_p = first.n_prompt
        if not self.multi:  # one sequence: the slot is sequence 0 (it holds the prompt: matched)
            ctx.seq_rm(0, n_p)
            return
        have = set(holding)
        mine = self.seqs.tolist()
        src = next((q for q in holding if q == 0 or q in mine), holding[0])
        for seq in mine:
            if seq not in have:
                ctx.seq_cp(src, seq)  # (a stream is reset first; unified: the cells are shared)
            ctx.seq_rm(seq, n_p)
        if 0 not in have:  # (sequence 0 never holds more than a prompt) the slots hold it; the last
            ctx.seq_rm(0)  # copy of a job with samples to start stays with it (_last_holder)
            first.prompt_seq = None
            self.seq0 = -1
        for seq in sorted(kept.used - set(mine) - {0}):
            ctx.seq_rm(seq)

    def _open(self, job: JobState, prompt_lp: float, last_row: np.ndarray, seeds: list[int]) -> None:
        """The job's drawer, sample maker and counters; it is in the loop from here."""
        job.drawer, job.stats.sampler = self.rt._make_drawer(job, last_row, seeds, self.seqs)
        job.finish = SampleMaker(self.rt.model.text_of, job.n_prompt - 1 if job.score_prompt else 0, prompt_lp,
                                 job.on_sample)
        job.stats.max_batch = self.width
        job.stats.layout = self.layout
        job.t_dec = time.perf_counter()
        if job not in self.jobs:
            self.jobs.append(job)
        self.by_key[job.key] = job

    def _ensure_cap(self, max_new: int) -> None:
        if max_new <= self.cap:
            return
        toks = np.zeros((self.width, max_new), dtype=np.int64)
        lps = np.zeros((self.width, max_new), dtype=np.float64)
        if self.cap:
            toks[:, :self.cap] = self.toks
            lps[:, :self.cap] = self.lps
        self.toks, self.lps, self.cap = toks, lps, max_new

    # ---------------------------------------------------------------- joining
    def _accepts(self, job: JobState) -> bool:
        """Whether ``job`` can join now; if so its prompt's sequence is reserved (job.prompt_seq)."""
        if not self.shared or len(self.jobs) >= MAX_JOBS or not drawers.shares(job.sampler):
            return False
        if job.n_prompt + job.rule.max_new > self.room:  # another context need: it waits
            return False
        seq = self._take_seq(job)
        if seq is None:
            return False
        job.prompt_seq = seq
        return True

    def _take_seq(self, job: JobState) -> int | None:
        """A sequence for a joining job's prompt: 0 when free, else a free slot's (put first among
        the freed ones: the job, with no sample in a slot, takes it)."""
        if self.multi and self.seq0 < 0:
            self.seq0 = job.key
            return 0
        for pool in (self.idle, self.freed):
            for k in range(len(pool) - 1, -1, -1):
                s = pool[k]
                if not self._last_holder(s):
                    del pool[k]
                    self.held[s] = job.key
                    self._reserved.append(s)  # back among the freed once the jobs have joined
                    seq = int(self.seqs[s])
                    self.ctx.seq_rm(seq)
                    return seq
        return None

    def _last_holder(self, s: int) -> bool:
        """Whether slot s holds the only copy of the prompt of a job with samples still to start."""
        key = int(self.held[s])
        job = self.by_key.get(key)
        if job is None or job.pending <= 0 or self.seq0 == key:
            return False
        return int(np.count_nonzero(self.held == key)) == 1

    def _admit(self) -> None:
        self._reserved = []
        for job in self.sched.admit(self._accepts):
            with self.flag_lock:  # a job that joins is not cancelled: no abort for it
                self.jobs.append(job)
                self.rt.abort_flag.clear()
            try:
                if job.cancel.is_set():
                    raise Cancelled("cancelled")
                prompt_lp, last_row = self.rt._evaluate_prompt(job.ptoks, job.score_prompt, job.cancel,
                                                               job.on_prompt, job.stats, seq=job.prompt_seq)
                self.prompts[job.key] = KeptPrompt.of(job, prompt_lp, last_row)
                self._ensure_cap(job.rule.max_new)
                self._open(job, prompt_lp, last_row, [job.seed_of(0)] * self.width)
            except Exception as exc:  # noqa: BLE001 - this job's error; the others go on
                self.kv_broken = True  # (its prompt may be half in its sequence)
                self._leave(job, exc)
        self.freed[:0] = self._reserved

    def _release_prompt(self, job: JobState) -> None:
        """Sequence 0 is free again once its job has started all its samples (or left)."""
        job.prompt_seq = None
        if self.shared and self.seq0 == job.key:
            self.ctx.seq_rm(0)
            self.seq0 = -1

    def _leave(self, job: JobState, error: BaseException | None) -> None:
        """The job is off the slots: its slots are free for the others now."""
        if job in self.jobs:
            self.jobs.remove(job)
        self.by_key.pop(job.key, None)
        mine = np.flatnonzero(self.job_of == job.key)
        for s in mine.tolist():
            self.job_of[s] = -1
            self.idle.append(s)
        job.in_flight = 0
        job.finished.clear()
        self._release_prompt(job)
        if job.t_dec:
            job.stats.decode_s = time.perf_counter() - job.t_dec
        job.end(error)

    # ---------------------------------------------------------------- slots
    def _close(self, job: JobState, s: int, stop: str) -> None:
        k = int(self.length[s])
        job.finished.append((int(self.index[s]), self.toks[s, :k].tolist(), self.lps[s, :k].tolist(), stop))
        self.job_of[s] = -1
        job.in_flight -= 1
        self.freed.append(s)

    def _restart(self, s: int, job: JobState) -> None:
        """Slot s takes the job's next sample (its own seed). A slot that stays with its job keeps
        its copy of the prompt's cache and drops the finished sample's tokens (copying the prompt
        again would cost a buffer copy between KV streams); one that changes job gets the job's
        prompt copied in."""
        i = job.started
        self.index[s] = i
        self.length[s] = 0
        self.stops[s] = 0
        self.texts[s] = b""
        self.job_of[s] = job.key
        self.npos[s] = job.n_prompt
        job.drawer.restart(s, job.seed_of(i))
        seq = int(self.seqs[s])
        if self.held[s] != job.key:
            self.ctx.seq_cp(self._source(job, s), seq)  # (the whole stream: the cells are reset first)
            self.held[s] = job.key
        self.ctx.seq_rm(seq, job.n_prompt)
        job.started += 1
        job.in_flight += 1
        job.stats.refills += 1

    def _source(self, job: JobState, s: int) -> int:
        """A sequence that holds the job's prompt (with, in a slot, its sample's tokens after it)."""
        if self.seq0 == job.key:
            return 0
        for t in np.flatnonzero(self.held == job.key).tolist():
            if t != s:
                return int(self.seqs[t])
        raise RuntimeError(f"no sequence holds the prompt of job {job.key}")  # a bug: _last_holder prevents it

    def _pick(self, s: int) -> JobState | None:
        """The job whose next sample slot s takes: fewest samples in slots, then the one whose
        prompt the slot holds, then the first come."""
        held = int(self.held[s])
        if self._last_holder(s):
            return self.by_key[held]
        best, best_key = None, None
        for order, job in enumerate(self.jobs):
            if job.pending <= 0 or job.drawer is None:
                continue
            key = (job.in_flight, job.key != held, order)
            if best_key is None or key < best_key:
                best, best_key = job, key
        return best

    def _assign(self, any_going: bool) -> list[int]:
        """Free slots take pending samples; returns the slots restarted (their first tokens are
        drawn next). Without refilling the slots wait until all are free (waves)."""
        out: list[int] = []
        if not self.refill:
            self.idle.extend(self.freed)
            self.freed = []
            job = self.jobs[0] if self.jobs else None
            if job is not None and job.drawer is not None and not any_going and job.pending > 0:
                for s in range(min(self.width, job.pending)):
                    self.idle.remove(s)
                    self._restart(s, job)
                    out.append(s)
            return out
        free = sorted(self.idle) + self.freed
        self.idle = []
        self.freed = []
        if not any(job.pending > 0 and job.drawer is not None for job in self.jobs):
            free, self.idle = [], free  # no sample to start (as _pick would find for each)
        for s in free:
            job = self._pick(s)
            if job is None:
                self.idle.append(s)
                continue
            self._restart(s, job)
            out.append(s)
        for job in self.jobs:  # a job that has started all its samples needs its prompt no more
            if job.pending <= 0 and job.prompt_seq is not None:
                self._release_prompt(job)
        return out

    def _record(self, job: JobState, slots: np.ndarray, tok: np.ndarray, lp: np.ndarray):
        """Append each slot's drawn token; returns the slots that go on and their tokens (the
        others are closed and put on ``freed``)."""
        rule = job.rule
        if job.drawer.can_end:
            dead = tok < 0  # e.g. the grammar admits nothing more
            if dead.any():
                for j in np.flatnonzero(dead).tolist():
                    self._close(job, int(slots[j]), "grammar")
                slots, tok, lp = slots[~dead], tok[~dead], lp[~dead]
        length = self.length
        length[slots] += 1
        t = length[slots]
        self.toks[slots, t - 1] = tok
        self.lps[slots, t - 1] = lp
        job.stats.tokens_generated += len(slots)
        at_limit = t >= rule.max_new
        text = bool(rule.stop_bytes)
        if not text and not rule.ends[tok].any() and not at_limit.any():
            return slots, tok
        hit = rule.stop_mask[tok]
        if rule.stop_count > 1:
            self.stops[slots] += hit
            hit = hit & (self.stops[slots] >= rule.stop_count)
        eog = ~rule.stop_mask[tok] & rule.eog_mask[tok]
        if text:
            texts = self.texts
            for j in np.flatnonzero(~hit & ~eog).tolist():
                s = int(slots[j])
                texts[s] += self.rt.model.piece(int(tok[j]))
                if any(texts[s].endswith(sb) for sb in rule.stop_bytes):
                    self.stops[s] += 1
                    hit[j] = self.stops[s] >= rule.stop_count
        done = hit | eog | at_limit
        for j in np.flatnonzero(done).tolist():
            self._close(job, int(slots[j]), "stop_token" if hit[j] else "eog" if eog[j] else "length")
        return slots[~done], tok[~done]

    def _groups(self, slots: np.ndarray):
        """(job, its slots, their positions in ``slots`` or None for all) for the jobs in ``slots``."""
        if len(self.jobs) == 1:
            yield self.jobs[0], slots, None
            return
        keys = self.job_of[slots]
        for job in list(self.jobs):
            m = keys == job.key
            if m.any():
                sel = np.flatnonzero(m)
                yield job, slots[sel], sel

    def _lone_in_c(self, slots: np.ndarray) -> JobState | None:
        """The job whose steps go on in C from here (:meth:`_run_steps`): the lone job in the
        slots, when its drawer can run them; else None."""
        if self.handles is None or len(self.jobs) != 1 or (self.shared and self.sched.wake[0]):
            return None
        job = self.jobs[0]
        if (getattr(job.drawer, "run_steps", None) is not None and not job.rule.stop_bytes
                and job.rule.stop_count == 1 and self.width <= self.ctx.batch.cap
                and job.drawer.can_run_steps(self.width) and bool(np.all(np.diff(slots) > 0))):
            return job
        return None

    def _draw(self, rows, slots: np.ndarray, parts: list) -> None:
        """One draw per job for its slots in ``slots`` (rows None: their first tokens). A lone job
        whose drawer can run steps in C goes on there (:meth:`_run_steps`), from its first samples'
        first tokens on."""
        first = rows is None and self._first_in_c  # the loop's first job's first samples
        self._first_in_c = False
        if rows is not None or first:
            job = self._lone_in_c(slots)
            if job is not None:
                try:
                    parts.append(self._run_steps(job, rows, slots))
                except Exception as exc:  # noqa: BLE001 - this job's error (the context failed)
                    self.kv_broken = True
                    self._leave(job, exc)
                return
        for job, mine, sel in list(self._groups(slots)):
            try:
                r = rows if (rows is None or sel is None) else rows[sel]
                tok, lp = job.drawer.draw(r, mine)
                parts.append(self._record(job, mine, tok, lp))
            except Exception as exc:  # noqa: BLE001 - this job's error; the others go on
                self._leave(job, exc)

    def _run_steps(self, job: JobState, rows: np.ndarray | None, slots: np.ndarray):
        """A lone job's steps in one C call: draw, record and close as :meth:`_record` does, start
        its next samples in the freed slots as :meth:`_assign` and :meth:`_restart` do (when every
        slot holds its prompt), and llama_decode; until a slot is freed with no sample prepared
        for it (the job has more), or the call's limits. Returns what :meth:`_record` returns (the
        slots that go on and their last tokens, to decode). Same samples as step by step: the
        same draws in the same order, the samples started in the same slots. ``rows`` None: the
        job's first samples in ``slots`` (set up by :meth:`_start`) are started in C, as freed
        slots are, and their first tokens drawn from the prompt's row there."""
        rule = job.rule
        start = b""
        if rows is None:
            start, slots = slots, slots[:0]
            job.started -= len(start)  # counted again below, as C starts them
            job.in_flight -= len(start)
        prepared = 0
        # freed slots are refilled in C unless a job waits to join (it needs a freed slot: the
        # call then comes back at the first close and the job is admitted before any refill)
        if self.refill and bool((self.held == job.key).all()) and not (self.shared and self.sched.waiting()):
            prepared = min(job.pending, 2 * self.width)
        prepared = max(prepared, len(start))
        first = job.started
        run = StepRun(self.handles, self.length, self.toks, self.lps, self.cap, self.npos, self.seq_of,
                      rule.end_codes, rule.max_new, self.index, [job.seed_of(first + i) for i in range(prepared)],
                      first, job.pending - prepared <= 0 or not self.refill, start=start)
        out = job.drawer.run_steps(rows, slots, run)
        stats = job.stats
        stats.tokens_generated += out["tokens"]
        stats.steps += out["steps"]
        stats.steps_in_c += out["steps"]
        stats.llama_s += out["decode_s"]
        for i, toks, lps, why in out["closed"]:  # as _close, the tokens copied out in C
            job.finished.append((i, toks, lps, END_REASONS[why]))
            job.in_flight -= 1
        started = out["started"].tolist()
        for s in started:  # as _restart, the cells and the draws' state reset in C
            self.stops[s] = 0
            self.texts[s] = b""
        job.started += len(started)
        job.in_flight += len(started)
        stats.refills += max(0, len(started) - len(start))
        for s in out["left"].tolist():
            self.job_of[s] = -1
            self.freed.append(s)
        if out["rc"]:
            self.ctx.check(out["rc"], len(out["going"]))  # raises: Cancelled, or why llama_decode failed
        if out["steps"] and job.on_progress is not None:
            job.on_progress(job.done, job.n, stats.tokens_generated, time.perf_counter() - job.t_dec)
        return out["going"], out["tok"]

    # ---------------------------------------------------------------- the step loop
    def _steps(self) -> None:
        """Per step: the cancelled jobs leave; one draw per job for its live slots, the stop
        checks as array operations; queued jobs join; the free slots take pending samples
        fairly and draw their first tokens from their job's prompt row in the same step (so
        every decode carries one token for every busy slot); one llama_decode for the survivors
        in slot order; then, while that decode runs (on a GPU), each job's finished samples are
        handed on and its progress reported."""
        ctx = self.ctx
        live = np.empty(0, dtype=np.int64)
        rows = None
        fresh = self._fresh0
        while True:
            for job in [j for j in self.jobs if j.cancel.is_set()]:
                self._leave(job, Cancelled("cancelled"))
            if live.size:
                keep = self.job_of[live] >= 0
                if not keep.all():
                    live, rows = live[keep], rows[keep]
            parts: list = []
            if live.size:
                self._draw(rows, live, parts)
            if self.shared:
                self._admit()
            else:
                self.sched.admit(None)  # no job joins; those cancelled while they wait end now
            while True:
                if fresh:
                    slots = np.array(fresh, dtype=np.int64)
                    self._draw(None, slots, parts)  # the restarted samples' first tokens
                    fresh = []
                fresh = self._assign(any(len(g) for g, _ in parts))
                if not fresh:
                    break
            if parts:
                going = np.concatenate([g for g, _ in parts])
                going_tok = np.concatenate([t for _, t in parts])
                if len(parts) > 1:  # the batch goes in slot order
                    order = np.argsort(going, kind="stable")
                    going, going_tok = going[order], going_tok[order]
            else:
                going = np.empty(0, dtype=np.int64)
                going_tok = going
            if going.size:
                # advance every going sequence by its last token in one batch; on a GPU the call
                # returns before the work is done, and the bookkeeping below overlaps it
                t_ll = time.perf_counter()
                try:
                    ctx.decode(going_tok, self.npos[going] - 1 + self.length[going],
                               self.seqs[going] if self.multi else 0, True)
                except Exception as exc:  # noqa: BLE001 - the context failed: every job in it
                    self.kv_broken = True
                    for job in list(self.jobs):
                        self._leave(job, Cancelled("cancelled") if job.cancel.is_set() else exc)
                    return
                dt = time.perf_counter() - t_ll
                for job in self.jobs:
                    job.stats.llama_s += dt
            now = time.perf_counter()
            together = len(self.jobs)
            for job in list(self.jobs):
                job.stats.steps += 1
                if together > job.stats.shared_jobs:
                    job.stats.shared_jobs = together
                try:
                    for item in job.finished:
                        i = item[0]
                        job.finish(i, job.seed_of(i), *item[1:])
                    job.finished.clear()
                    if job.on_progress is not None:
                        job.on_progress(job.done, job.n, job.stats.tokens_generated, now - job.t_dec)
                except Exception as exc:  # noqa: BLE001 - e.g. its writer failed: this job stops
                    self._leave(job, exc)
                    continue
                if job.pending <= 0 and job.in_flight <= 0:
                    self._leave(job, None)
            if not going.size:
                if self.jobs:  # a bug guard: jobs left with nothing decoding
                    err = RuntimeError("slot loop stalled with jobs left")
                    for job in list(self.jobs):
                        self._leave(job, err)
                return
            live = going
            rows = ctx.logits(len(live))


__all__ = ["SlotScheduler", "SlotLoop", "StepRun", "MAX_JOBS"]
