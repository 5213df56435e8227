"""The llama.cpp runtime: load a GGUF as the planner says, tokenise with special tokens, and decode
the N samples of a job together.

How a job runs (:meth:`Runtime.generate`):
1. the prompt is evaluated once, in sequence 0 (with log-probabilities of every prompt token, so
   the full-text perplexity needs no second pass);
2. the prompt's KV cache is copied to sequence ids 1..W (``llama_memory_seq_cp``: in the unified
   cache the cells are shared, not duplicated);
3. all W sequences advance together: one ``llama_decode`` per step with one token per live
   sequence; the logits of the whole batch are sampled in the reference order by one drawer call
   (:mod:`engine.runtime.draw`: by default one C call for the step, each sample with its own
   seed), and the stop checks are array operations over the live sequences;
4. a sample stops on its closing tag by token id (tags typed as control tokens render as empty
   text, so a text stop would never fire), on an end-of-generation token, or at the length limit;
5. a job with more samples than slots (sequences that fit in the context) keeps its batch full:
   when a sample finishes, its slot drops the sample's tokens from its cache (keeping its copy of
   the prompt's) and starts the job's next sample in the same step (with that sample's own seed,
   so the samples do not depend on the slots); the prompt stays in sequence 0.

Cancellation is a ``threading.Event`` checked between steps and, inside llama.cpp, a native abort
flag polled between graph nodes (:class:`engine.runtime.native.AbortFlag`, no Python callback).
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from engine.env import env_int
from engine.runtime.gguf_facts import ModelFileError, read_facts
from engine.runtime.native import (_LOG_LINES, _LOG_LOCK, AbortFlag, NativeHandles, _backend_init, _llama,
                                   _llama_error_lines, recent_log)
from engine.runtime.native import tokenize as native_tokenize
from engine.runtime.planner import Plan, PlanError, plan as make_plan
from engine.runtime.draw import GrammarDrawer, LogosDrawer, NativeDrawer, stepper_available
from engine.runtime.sampling import SamplingParams, log_softmax_at, sample_seed

PROMPT_CHUNK = 128  # prompt tokens per llama_decode when every prompt token's logits are needed
STREAM_PAD = 256  # per-sequence KV streams are sized in steps of this many tokens (fewer context rebuilds)
STREAMS = os.environ.get("LOGOS_KV_STREAMS", "1") != "0"  # 0: always the unified cache (for comparison)
# 0: a finished sample's slot waits for the others, and the job's next samples start together (in
# waves; for comparison). 1 (default): the slot starts the next sample at once.
REFILL = os.environ.get("LOGOS_REFILL", "1") != "0"
# How tokens are drawn (engine.runtime.draw). "logos" (default): the reference order for a whole
# step in one C call, or in numpy where the extension is not built (same draws); "numpy": the numpy
# implementation even where the C one is built; "native": llama.cpp's own sampler chain in the
# same order (one C call per sample and step; same distribution, other draws).
SAMPLER = os.environ.get("LOGOS_SAMPLER", "logos")
# From this many logits per step (rows x vocabulary; a real LOGOS vocabulary is 128k+ tokens) the
# host's share of a step (the log-sum-exp for perplexity, llama.cpp's samplers) is spread over
# threads: numpy and llama.cpp release the GIL. Below it one thread is faster than the hand-off.
PARALLEL_HOST_WORK = env_int("LOGOS_PARALLEL_HOST_WORK", 1 << 18)


class Cancelled(Exception):
    """The job was cancelled (between tokens or inside llama.cpp's abort callback)."""


class RuntimeLoadError(RuntimeError):
    """The model could not be loaded; ``str()`` says which file and why (llama.cpp's own words)."""


@dataclass
class Sample:
    index: int
    seed: int
    tokens: list[int]
    text: str  # generated pieces, special tokens shown, end-of-generation tokens left out
    logprobs: list[float]  # model log-probability of each generated token
    stop: str  # "stop_token" | "eog" | "length" | "grammar"
    ppl: float  # perplexity of the full text (prompt + output)
    ppl_output: float  # perplexity of the generated tokens only
    n_tokens: int = 0  # tokens generated (remote backends report the count without the ids)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class GenerationStats:
    n_prompt: int = 0
    prompt_s: float = 0.0
    decode_s: float = 0.0
    tokens_generated: int = 0
    steps: int = 0
    max_batch: int = 0  # slots: samples decoded together
    refills: int = 0  # samples started in the slot of a finished one (jobs with more samples than slots)
    max_new_tokens: int = 0  # the limit applied: asked, or less to stay inside the context
    layout: str = ""  # KV cache layout of the job (unified, or one stream per sequence)
    llama_s: float = 0.0  # of decode_s, the time inside llama_decode; the rest is the host's share
    sampler: str = ""  # which implementation drew the tokens (engine.runtime.draw)
    notes: list = field(default_factory=list)  # why the limit was lowered

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_generated / self.decode_s if self.decode_s > 0 else 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["tokens_per_s"] = round(self.tokens_per_s, 2)
        return d


class Runtime(NativeHandles):
    """One loaded model with one context. Not thread-safe: one job at a time (the engine queues)."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.facts = None
        self.plan: Plan | None = None
        self.backend = None
        self._model = None
        self._ctx = None
        self._vocab = None
        self._batch = None  # NativeHandles frees a llama_batch_init batch; ours is _nbatch (numpy-owned)
        self._nbatch = None
        self._ctx_key = None
        self._n_ctx_seq = 0
        self._n_ctx_job = 0
        self._n_vocab = 0
        self._piece_cache: dict[int, bytes] = {}
        self._logits_view = None  # (address, rows) of llama.cpp's logits buffer
        self._eog_all = None  # end-of-generation flag of every token id, built on first use
        self._abort_flag = None  # AbortFlag: llama.cpp polls it between graph nodes
        self._get_logits_addr = None  # llama_get_logits returning an int address
        self._progress_cb = None
        self._ll = None
        self._pool = None  # threads for the host's share of a step with a large vocabulary
        self._pool_workers = 0

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike, *, n_gpu_layers: int | str = "auto", n_ctx: int | None = None,
             n_threads: int | None = None, n_seq_max: int = 64,
             progress: Callable[[float], None] | None = None,
             abort: threading.Event | None = None, allow_overcommit: bool = False) -> "Runtime":
        """Check the file, plan memory, load. Raises ModelFileError (bad file), PlanError (does not
        fit; the plan's reasons say why), RuntimeLoadError (llama.cpp refused, with its message) or
        Cancelled (``abort`` set during loading)."""
        from engine.runtime.backend import backend_info

        facts = read_facts(path)
        ll = _llama()
        _backend_init(ll)
        with _LOG_LOCK:
            _LOG_LINES.clear()  # the error quoted below must be this load's
        rt = cls()
        rt._ll = ll
        rt.path = Path(path)
        rt.facts = facts
        rt.backend = backend_info()
        rt.plan = make_plan(facts, rt.backend, n_ctx=n_ctx, n_seq_max=min(int(n_seq_max), 256),
                            n_gpu_layers=n_gpu_layers, n_threads=n_threads)
        if not rt.plan.fits and not allow_overcommit:
            raise PlanError(f"{path}: model does not fit in memory: " + "; ".join(rt.plan.reasons))

        mparams = ll.llama_model_default_params()
        mparams.n_gpu_layers = int(rt.plan.n_gpu_layers)

        def _progress(frac, _user):
            if progress is not None:
                try:
                    progress(float(frac))
                except Exception:  # noqa: BLE001 - a failing observer must not break loading
                    pass
            return not (abort is not None and abort.is_set())

        rt._progress_cb = ll.llama_progress_callback(_progress)
        mparams.progress_callback = rt._progress_cb
        rt._model = ll.llama_model_load_from_file(str(path).encode(), mparams)
        if not rt._model:
            if abort is not None and abort.is_set():
                raise Cancelled("model loading cancelled")
            why = _llama_error_lines() or "llama.cpp could not load it"
            if facts.architecture not in _supported_architectures():
                why = f"unsupported architecture {facts.architecture!r} ({why})"
            raise RuntimeLoadError(f"{path}: {why}")
        rt._get_logits_addr = _address_function(ll, "llama_get_logits")
        rt._vocab = ll.llama_model_get_vocab(rt._model)
        rt._n_vocab = int(ll.llama_vocab_n_tokens(rt._vocab))

        rt._abort_flag = AbortFlag(ll)
        try:
            rt._open_context(int(rt.plan.n_ctx), int(rt.plan.n_seq_max), unified=True)
        except RuntimeLoadError:
            rt.close()
            raise
        rt._n_ctx_job = int(ll.llama_n_ctx(rt._ctx))
        rt._nbatch = _Batch(ll, max(PROMPT_CHUNK, rt.plan.n_seq_max))
        return rt

    def _open_context(self, n_ctx: int, n_seq: int, unified: bool) -> None:
        """(Re)create the llama.cpp context with this KV layout, unless it already has it.

        ``unified``: one KV buffer shared by all sequences (the prompt's cells are shared, but every
        token attends over the cells of every sequence, masked). Not unified: one stream per
        sequence, each ``n_ctx / n_seq`` cells, the prompt copied into each stream; a token then
        attends over its own sequence only, which is what a batch of samples with a short shared
        prompt wants (llama.cpp's own advice for ``n_seq_max > 1`` without a long common prefix)."""
        key = (int(n_ctx), int(n_seq), bool(unified))
        if self._ctx and self._ctx_key == key:
            return
        ll = self._ll
        if self._ctx:
            ll.llama_free(self._ctx)
            self._ctx = None
            self._ctx_key = None
        cparams = ll.llama_context_default_params()
        cparams.n_ctx = key[0]
        cparams.n_batch = int(max(self.plan.n_batch, n_seq))
        cparams.n_ubatch = int(max(self.plan.n_batch, n_seq))
        cparams.n_seq_max = key[1]
        cparams.n_threads = int(self.plan.n_threads)
        cparams.n_threads_batch = int(self.plan.n_threads)
        cparams.kv_unified = key[2]
        cparams.no_perf = True
        self._logits_view = None
        self._ctx = ll.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            why = _llama_error_lines() or "llama.cpp could not create the context"
            raise RuntimeLoadError(f"{self.path}: {why} (context {key[0]} tokens, {key[1]} sequences)")
        self._ctx_key = key
        self._n_ctx_seq = int(ll.llama_n_ctx_seq(self._ctx))
        self._abort_flag.install(ll, self._ctx)

    def _default_context(self) -> None:
        """The load-time layout: one unified cache of the planned size."""
        self._open_context(int(self.plan.n_ctx), int(self.plan.n_seq_max), unified=True)

    @property
    def loaded(self) -> bool:
        return bool(self._ctx)

    @property
    def n_vocab(self) -> int:
        return self._n_vocab

    @property
    def n_ctx(self) -> int:
        """Tokens one job may use in all (prompt once + every sample's output)."""
        return self._n_ctx_job

    def describe(self) -> dict:
        return {"path": str(self.path), "architecture": self.facts.architecture,
                "n_vocab": self._n_vocab, "n_ctx": self.n_ctx, "backend": self.backend.backend,
                "n_gpu_layers": self.plan.n_gpu_layers, "plan": self.plan.as_dict()}

    # ------------------------------------------------------------------ vocabulary
    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        """Token ids of ``text``. Special-token parsing is on: a tag that is an added token becomes
        its one id instead of ``<``, ``Protein``, ``S``, ``>``. BOS is added when the model says so."""
        return native_tokenize(self._ll, self._vocab, text, add_special, parse_special)

    def piece(self, token: int) -> bytes:
        """The bytes of one token with special tokens rendered (``special=True``)."""
        cached = self._piece_cache.get(token)
        if cached is not None:
            return cached
        ll = self._ll
        buf = ctypes.create_string_buffer(64)
        n = ll.llama_token_to_piece(self._vocab, token, buf, 64, 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = ll.llama_token_to_piece(self._vocab, token, buf, -n, 0, True)
        out = buf.raw[:n]
        self._piece_cache[token] = out
        return out

    def detokenize(self, tokens: Iterable[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def token_id(self, text: str) -> int | None:
        """The id of ``text`` when it is exactly one token (a tag), else None."""
        ids = self.tokenize(text, add_special=False, parse_special=True)
        return ids[0] if len(ids) == 1 else None

    def is_eog(self, token: int) -> bool:
        return bool(self._eog_mask()[token])

    def is_control(self, token: int) -> bool:
        return bool(self._ll.llama_vocab_is_control(self._vocab, token))

    def eos_id(self) -> int:
        return int(self._ll.llama_vocab_eos(self._vocab))

    # ------------------------------------------------------------------ decoding
    def _decode_arrays(self, tokens, positions, seqs, want_logits=True) -> None:
        """One llama_decode of len(tokens) tokens; ``want_logits`` a bool or one per token."""
        b = self._nbatch
        n = b.fill(tokens, positions, seqs, want_logits)
        rc = self._ll.llama_decode(self._ctx, b.struct)
        if rc == 2 or (rc != 0 and self._abort_flag.is_set()):
            raise Cancelled("cancelled")
        if rc == 1:
            raise RuntimeError(f"the context ({self._n_ctx_seq} tokens per sequence) has no room left "
                               f"for this batch of {n}; "
                               "ask for fewer samples, fewer new tokens or a larger context")
        if rc != 0:
            raise RuntimeError(f"llama_decode failed ({rc}): {_llama_error_lines()}")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        super().close()

    def _host_pool(self):
        """Worker threads for the host work of a step (one per planned thread), or None."""
        if self._pool is None:
            workers = max(1, int(self.plan.n_threads if self.plan else os.cpu_count() or 1))
            if workers < 2:
                return None
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="logos-host")
            self._pool_workers = workers
        return self._pool

    def _chunked(self, n: int, fn) -> list:
        """``fn(lo, hi)`` over [0, n) in one chunk per worker thread (results in order), or in this
        thread when the work is small or there is no second thread."""
        pool = self._host_pool() if n > 1 and n * self._n_vocab >= PARALLEL_HOST_WORK else None
        if pool is None:
            return [fn(0, n)]
        k = min(n, self._pool_workers)
        bounds = [(n * i // k, n * (i + 1) // k) for i in range(k)]
        futures = [pool.submit(fn, lo, hi) for lo, hi in bounds[1:]]
        first = fn(*bounds[0])
        return [first] + [f.result() for f in futures]

    def _lse(self, rows: np.ndarray) -> np.ndarray:
        """log-sum-exp of each row of logits (float64), for the samples' log-probabilities."""

        def part(lo, hi):
            r = rows[lo:hi]
            mx = r.max(axis=1)
            return mx + np.log(np.exp(r - mx[:, None]).sum(axis=1, dtype=np.float64))

        return np.concatenate(self._chunked(len(rows), part))

    @staticmethod
    def _penalize(rows: np.ndarray, r: np.ndarray, c: np.ndarray, penalty: float):
        """The repetition penalty applied in place to the logits ``rows[r, c]`` (row r has seen
        token c; each pair once), as llama.cpp's penalties sampler and transformers do it (positive
        logits divided, the others multiplied, in float32). Costs what the seen tokens cost,
        whatever the vocabulary; the native sampler would look every candidate up in its table.
        Returns what :meth:`_restore` needs to put the raw logits back."""
        vals = rows[r, c]
        p = np.float32(penalty)
        rows[r, c] = np.where(vals <= 0, vals * p, vals / p)
        return r, c, vals

    @staticmethod
    def _restore(rows: np.ndarray, saved) -> None:
        r, c, vals = saved
        rows[r, c] = vals

    def _draw_native(self, chains: list, idx: list[int]) -> np.ndarray:
        """One llama_sampler_sample per sequence (chain j on the context's logits row idx[j])."""
        sample, ctx = self._ll.llama_sampler_sample, self._ctx

        def part(lo, hi):
            return [sample(chains[j], ctx, idx[j]) for j in range(lo, hi)]

        return np.array([t for chunk in self._chunked(len(chains), part) for t in chunk], dtype=np.int64)

    def _logits_last(self) -> np.ndarray:
        """The last output row of the last decode (llama.cpp's index -1), a view into its buffer."""
        ptr = self._ll.llama_get_logits_ith(self._ctx, -1)
        addr = ctypes.cast(ptr, ctypes.c_void_p).value
        return np.frombuffer((ctypes.c_float * self._n_vocab).from_address(addr), dtype=np.float32)

    def _logits(self, n_rows: int) -> np.ndarray:
        """The logits rows of the last decode, a view into llama.cpp's buffer (valid until the next).
        The view of the buffer is kept while llama.cpp keeps the buffer (same address, enough rows)."""
        addr = self._get_logits_addr(self._ctx)
        view = self._logits_view
        if view is None or view[0] != addr or view[1].shape[0] < n_rows:
            buf = (ctypes.c_float * (n_rows * self._n_vocab)).from_address(addr)
            view = self._logits_view = (addr, np.frombuffer(buf, dtype=np.float32).reshape(n_rows, self._n_vocab))
        return view[1][:n_rows]

    def _grammar_mask(self, smpl, row: np.ndarray) -> np.ndarray:
        view, _ = self._apply_sampler(smpl, row)
        mask = np.zeros(self._n_vocab, dtype=bool)
        mask[view["id"][np.isfinite(view["logit"])]] = True
        return mask

    def generate(self, prompt: str | list[int], n: int = 1, params: SamplingParams | None = None,
                 seed: int = 0, *, stop_ids: Iterable[int] = (), stop_count: int = 1,
                 stop_texts: Iterable[str] = (), grammar: str | None = None,
                 cancel: threading.Event | None = None, score_prompt: bool = True,
                 on_sample: Callable[[Sample], None] | None = None,
                 on_progress: Callable[[int, int, int, float], None] | None = None,
                 on_prompt: Callable[[int, int], None] | None = None,
                 ignore_eos: bool = False,
                 ) -> tuple[list[Sample], GenerationStats]:
        """Generate ``n`` samples of one prompt. ``stop_ids``: token ids that close the record;
        generation stops after ``stop_count`` of them. ``stop_texts``: text stops, for closing tags
        that are not one token. ``on_sample`` is called as each sample finishes; ``on_progress``
        with (samples done, n, tokens generated, seconds) after each step; ``on_prompt`` with
        (prompt tokens evaluated, prompt tokens) after each prompt chunk. ``ignore_eos``: do not stop
        on end-of-generation tokens (fixed-length runs, for benchmarks)."""
        if not self.loaded:
            raise RuntimeError("no model loaded")
        params = params or SamplingParams()
        params.check()
        if n < 1:
            raise ValueError("n must be >= 1")
        cancel = cancel or threading.Event()
        self._abort_flag.clear()
        stats = GenerationStats()
        ptoks = self.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
        if not ptoks:
            raise ValueError("empty prompt")
        n_prompt = len(ptoks)
        stats.n_prompt = n_prompt
        n_ctx = self.n_ctx
        if n_prompt + 1 > n_ctx:
            raise ValueError(f"the prompt has {n_prompt} tokens; the context holds {n_ctx}")
        max_new = self._new_token_limit(n_prompt, int(params.max_new_tokens), stats)
        n_slots = self._layout(n, n_prompt, max_new, stats)
        stop_set = {int(t) for t in stop_ids}
        stop_bytes = [s.encode() for s in stop_texts if s]
        mem = self._ll.llama_get_memory(self._ctx)
        self._ll.llama_memory_clear(mem, False)  # cells only: zeroing the buffers costs ms per job

        watcher = _CancelWatcher(cancel, self._abort_flag)
        try:
            return self._generate(ptoks, n, params, seed, stop_set, stop_count, stop_bytes, grammar,
                                  cancel, score_prompt, on_sample, on_progress, stats, mem, on_prompt,
                                  max_new, n_slots, ignore_eos)
        finally:
            watcher.stop()

    def _new_token_limit(self, n_prompt: int, max_new: int, stats: GenerationStats) -> int:
        """``max_new_tokens`` lowered to what the context and the model's training length allow."""
        n_ctx = self.n_ctx
        room = n_ctx - n_prompt
        if room < 1:
            raise ValueError(f"no room to generate: prompt {n_prompt} tokens, context {n_ctx}")
        if max_new > room:
            stats.notes.append(f"max_new_tokens lowered from {max_new} to {room}: context {n_ctx} tokens")
            max_new = room
        train_ctx = int(getattr(self.facts, "n_ctx_train", 0) or 0)
        if train_ctx and n_prompt + max_new > train_ctx:
            if train_ctx - n_prompt < 1:
                raise ValueError(f"the prompt has {n_prompt} tokens; the model was trained on {train_ctx}")
            stats.notes.append(f"max_new_tokens lowered from {max_new} to {train_ctx - n_prompt}: "
                               f"the model was trained on sequences of {train_ctx} tokens")
            max_new = train_ctx - n_prompt
        stats.max_new_tokens = max_new
        return max_new

    def _layout(self, n: int, n_prompt: int, max_new: int, stats: GenerationStats) -> int:
        """Choose the KV layout for a job of ``n`` samples and return its slots (samples decoded
        together).

        Unified (the load-time context): the prompt's cells are shared, ``room // max_new``
        slots. One stream per sequence: each sample attends over its own prompt copy and output
        only, which is cheaper as soon as several samples decode together; used when it gives the
        job at least as many slots as the unified layout, within the same token budget."""
        n_ctx = self.n_ctx
        seq_cap = self.plan.n_seq_max - 1 if self.plan.n_seq_max > 1 else 1
        unified_cap = max(1, min(seq_cap, (n_ctx - n_prompt) // max_new))
        per_seq = -(-(n_prompt + max_new) // STREAM_PAD) * STREAM_PAD
        streams_cap = min(n, seq_cap, n_ctx // per_seq - 1)
        if STREAMS and n >= 2 and streams_cap >= 2 and streams_cap >= min(n, unified_cap):
            try:
                self._open_context(per_seq * (streams_cap + 1), streams_cap + 1, unified=False)
                stats.layout = f"{streams_cap + 1} streams of {per_seq} tokens"
                return streams_cap
            except RuntimeLoadError as exc:  # e.g. out of memory: the unified layout still works
                stats.notes.append(f"per-sequence KV streams unavailable ({exc}); unified cache used")
        self._default_context()
        stats.layout = f"unified {n_ctx} tokens"
        return unified_cap

    def _generate(self, ptoks, n, params, seed, stop_set, stop_count, stop_bytes, grammar, cancel,
                  score_prompt, on_sample, on_progress, stats, mem, on_prompt, max_new, n_slots,
                  ignore_eos=False):
        ll = self._ll
        n_prompt = len(ptoks)
        t0 = time.perf_counter()
        prompt_lp = 0.0
        last_row = None
        chunk = PROMPT_CHUNK if score_prompt else self._nbatch.cap
        for start in range(0, n_prompt, chunk):
            if cancel.is_set():
                raise Cancelled("cancelled")
            part = ptoks[start:start + chunk]
            k = len(part)
            is_last = start + k == n_prompt
            if score_prompt:
                want = True
            else:
                want = np.zeros(k, dtype=np.int8)
                want[-1] = 1 if is_last else 0
            self._decode_arrays(part, np.arange(start, start + k), 0, want)
            rows = self._logits(k if score_prompt else (1 if is_last else 0))
            if score_prompt:
                nxt = np.array(ptoks[start + 1:start + k + 1], dtype=np.int64)
                if len(nxt):
                    prompt_lp += float(log_softmax_at(rows[:len(nxt)], nxt).sum())
            if is_last:
                last_row = np.array(rows[-1], dtype=np.float32, copy=True)
            if on_prompt is not None:
                on_prompt(start + k, n_prompt)
        stats.prompt_s = time.perf_counter() - t0
        n_prompt_scored = n_prompt - 1 if score_prompt else 0

        # (2..5) the samples, W at a time; a slot whose sample finishes starts the job's next one
        prompt_seen = np.unique(np.array(ptoks, dtype=np.int64))
        samples: list[Sample] = []
        t_dec = time.perf_counter()
        multi = self._ctx_key[1] > 1
        # every sample's first token is drawn from the prompt's last row, once per job
        lse_prompt = float(self._lse(last_row[None, :])[0])
        stop_mask = np.zeros(self._n_vocab, dtype=bool)
        stop_mask[[t for t in stop_set if 0 <= t < self._n_vocab]] = True
        eog_mask = self._eog_mask() if not ignore_eos else np.zeros(self._n_vocab, dtype=bool)
        stats.sampler = self.sampler_name(grammar)
        collect = _Collector(self, n_prompt_scored, prompt_lp, samples, on_sample)
        width = min(n_slots, n)
        stats.max_batch = width
        seqs = np.arange(1, width + 1, dtype=np.int32) if multi else np.zeros(1, dtype=np.int32)
        seeds = [sample_seed(seed, i) for i in range(n)]
        try:
            if multi:
                for s in seqs.tolist():
                    ll.llama_memory_seq_cp(mem, 0, s, -1, -1)
            drawer = self._drawer(grammar, params, seeds[:width], prompt_seen, last_row, lse_prompt)
            try:
                self._run_slots(drawer, seeds, seqs, multi, n_prompt, max_new, stop_mask, stop_count, stop_bytes,
                                eog_mask, cancel, stats, collect, on_progress, mem, t_dec)
            finally:
                drawer.close()
        finally:
            stats.decode_s = time.perf_counter() - t_dec
            if multi:
                for s in seqs.tolist():
                    ll.llama_memory_seq_rm(mem, s, -1, -1)
            else:
                ll.llama_memory_seq_rm(mem, 0, n_prompt, -1)
        samples.sort(key=lambda s: s.index)
        return samples, stats

    def sampler_name(self, grammar=None) -> str:
        """Which drawer a job runs with (recorded in provenance: the llama.cpp chain draws other
        samples for the same seed; compiled and numpy draw the same)."""
        if grammar:
            return "numpy with llama.cpp's grammar"
        if SAMPLER == "native":
            return "llama.cpp chain"
        return "compiled" if (SAMPLER != "numpy" and stepper_available()) else "numpy"

    def _drawer(self, grammar, params, seeds, prompt_seen, last_row, lse_prompt):
        """The drawer of a job's slots (engine.runtime.draw): who turns a step's logits into
        tokens, as :meth:`sampler_name` names it."""
        name = self.sampler_name(grammar)
        if grammar:
            return GrammarDrawer(self, params, seeds, prompt_seen, last_row, lse_prompt, grammar)
        if name == "llama.cpp chain":
            return NativeDrawer(self, params, seeds, prompt_seen, last_row, lse_prompt)
        return LogosDrawer(self, params, seeds, prompt_seen, last_row, lse_prompt, compiled=name == "compiled")

    def _run_slots(self, drawer, seeds, seqs, multi, n_prompt, max_new, stop_mask, stop_count, stop_bytes,
                   eog_mask, cancel, stats, collect, on_progress, mem, t_dec) -> None:
        """Decode a job's ``len(seeds)`` samples in ``W = len(seqs)`` slots (one KV sequence each).
        Slots start with samples 0..W-1. When a sample finishes, its slot drops the sample's
        tokens from its cache (keeping its copy of the prompt's), starts the job's next sample and
        draws that sample's first token from the prompt's last row in the same step, so every
        decode carries one token for every busy slot until the job runs out of samples (llama.cpp
        decodes a batch with a gap in its sequences more slowly). One sample's tokens and draws do
        not depend on its slot or on the others.

        Per step: one draw for every live slot, the stop checks as array operations, the restarts,
        one llama_decode for the survivors in slot order, then, while that decode runs, the
        finished samples are handed on and progress is reported. Python loops only over the
        samples that finish (and over the live ones when a closing tag is not one token and has to
        be matched as text)."""
        ll = self._ll
        n = len(seeds)
        width = len(seqs)
        index = np.arange(width, dtype=np.int64)  # the sample each slot decodes
        length = np.zeros(width, dtype=np.int64)  # its tokens so far
        toks = np.zeros((width, max_new), dtype=np.int64)
        lps = np.zeros((width, max_new), dtype=np.float64)
        stops = np.zeros(width, dtype=np.int64)
        texts = [b""] * width if stop_bytes else None
        ends = stop_mask | eog_mask  # a token that may end a sample
        can_die = drawer.can_end
        started = width
        finished: list = []  # (index, tokens, logprobs, stop) to hand on once the decode is launched

        def close(s: int, stop: str) -> bool:
            """The sample in slot s is done; True when the slot starts the job's next sample.
            Without refilling (LOGOS_REFILL=0, for comparison) slots wait until all are free."""
            k = int(length[s])
            finished.append((int(index[s]), toks[s, :k].tolist(), lps[s, :k].tolist(), stop))
            index[s] = -1
            if not REFILL or started == n:
                return False
            restart(s)
            return True

        def restart(s: int) -> None:
            nonlocal started
            index[s] = started
            length[s] = 0
            stops[s] = 0
            if texts is not None:
                texts[s] = b""
            drawer.restart(s, seeds[started])
            # the slot keeps its copy of the prompt's cache and drops the finished sample's tokens
            # (copying the prompt again would cost a buffer copy between KV streams)
            ll.llama_memory_seq_rm(mem, int(seqs[s]) if multi else 0, n_prompt, -1)
            started += 1
            stats.refills += 1

        def record(slots: np.ndarray, tok: np.ndarray, lp: np.ndarray) -> np.ndarray:
            """Append each slot's drawn token; returns the slots that go on (the others are closed,
            and those restarted are returned in ``fresh``)."""
            if can_die:
                dead = tok < 0  # the grammar admits nothing more
                if dead.any():
                    for j in np.flatnonzero(dead).tolist():
                        if close(int(slots[j]), "grammar"):
                            fresh.append(int(slots[j]))
                    slots, tok, lp = slots[~dead], tok[~dead], lp[~dead]
            length[slots] += 1
            t = length[slots]
            toks[slots, t - 1] = tok
            lps[slots, t - 1] = lp
            stats.tokens_generated += len(slots)
            at_limit = t >= max_new
            if texts is None and not ends[tok].any() and not at_limit.any():
                return slots, tok
            hit = stop_mask[tok]
            if stop_count > 1:
                stops[slots] += hit
                hit = hit & (stops[slots] >= stop_count)
            eog = ~stop_mask[tok] & eog_mask[tok]
            if texts is not None:
                for j in np.flatnonzero(~hit & ~eog).tolist():
                    s = int(slots[j])
                    texts[s] += self.piece(int(tok[j]))
                    if any(texts[s].endswith(sb) for sb in stop_bytes):
                        stops[s] += 1
                        hit[j] = stops[s] >= stop_count
            done = hit | eog | at_limit
            for j in np.flatnonzero(done).tolist():
                if close(int(slots[j]), "stop_token" if hit[j] else "eog" if eog[j] else "length"):
                    fresh.append(int(slots[j]))
            return slots[~done], tok[~done]

        live = np.arange(width)
        rows = None
        first = True
        while live.size:
            if cancel.is_set():
                raise Cancelled("cancelled")
            # every live slot draws (at the first step all from the prompt's last row)
            tok, lp = drawer.draw(rows, live, first)
            first = False
            fresh: list[int] = []
            going, going_tok = record(live, tok, lp)
            parts = [(going, going_tok)]
            while True:
                if not fresh and not REFILL and started < n and not any(len(g) for g, _ in parts):
                    for s in range(min(width, n - started)):  # waves: every slot is free
                        restart(s)
                        fresh.append(s)
                if not fresh:
                    break
                slots = np.array(fresh, dtype=np.int64)
                fresh = []
                ftok, flp = drawer.draw(None, slots, True)  # the restarted samples' first tokens
                parts.append(record(slots, ftok, flp))
            if len(parts) > 1:  # the batch goes in slot order
                going = np.concatenate([g for g, _ in parts])
                going_tok = np.concatenate([t for _, t in parts])
                order = np.argsort(going, kind="stable")
                going, going_tok = going[order], going_tok[order]
            if going.size:
                # advance every going sequence by its last token in one batch; on a GPU the call
                # returns before the work is done, and the bookkeeping below overlaps it
                t_ll = time.perf_counter()
                self._decode_arrays(going_tok, n_prompt - 1 + length[going], seqs[going] if multi else 0, True)
                stats.llama_s += time.perf_counter() - t_ll
            stats.steps += 1
            for item in finished:
                i = item[0]
                collect.finish(i, seeds[i], *item[1:])
            finished.clear()
            if on_progress is not None:
                on_progress(collect.done, n, stats.tokens_generated, time.perf_counter() - t_dec)
            live = going
            rows = self._logits(len(live)) if live.size else None

    def _eog_mask(self) -> np.ndarray:
        """True for the vocabulary's end-of-generation tokens (built once per model)."""
        if self._eog_all is None:
            is_eog, vocab = self._ll.llama_vocab_is_eog, self._vocab
            self._eog_all = np.array([is_eog(vocab, t) for t in range(self._n_vocab)], dtype=bool)
        return self._eog_all

    def _sampler_chain(self, params: SamplingParams, seed: int, history: Iterable[int], draw: bool = True,
                       penalties: bool = True):
        """llama.cpp's sampler chain in the reference order: repetition penalty over every token of
        the sequence (prompt included: ``history`` is accepted first), temperature, top-k, top-p,
        min-p, then a draw seeded from the sample's seed. ``draw=False`` leaves the draw out (the
        candidates and their order, for :meth:`candidates`). ``penalties=False`` leaves the penalty
        out (the generation loop applies it to the logits itself: :meth:`_penalize`).

        Top-k runs before temperature: a positive temperature keeps the order of the logits, so the
        k kept are the same, and the division then touches k logits instead of the vocabulary."""
        ll = self._ll
        cp = ll.llama_sampler_chain_default_params()
        cp.no_perf = True
        chain = ll.llama_sampler_chain_init(cp)
        add = ll.llama_sampler_chain_add
        if penalties and params.repetition_penalty != 1.0:
            # the window is the whole job budget: every token of the sequence counts, as in transformers
            add(chain, ll.llama_sampler_init_penalties(self._n_vocab, max(1, self.n_ctx),
                                                       float(params.repetition_penalty), 0.0, 0.0))
        if params.temperature == 0:
            if draw:
                add(chain, ll.llama_sampler_init_greedy())
        else:
            if 0 < params.top_k < self._n_vocab:
                add(chain, ll.llama_sampler_init_top_k(int(params.top_k)))
            add(chain, ll.llama_sampler_init_temp(float(params.temperature)))
            if params.top_p < 1.0:
                add(chain, ll.llama_sampler_init_top_p(float(params.top_p), 1))
            if params.min_p > 0:
                add(chain, ll.llama_sampler_init_min_p(float(params.min_p), 1))
            if draw:
                add(chain, ll.llama_sampler_init_dist(native_seed(seed)))
        if penalties:  # the other samplers keep no history
            for t in history:
                ll.llama_sampler_accept(chain, int(t))
        return chain

    def _apply_sampler(self, smpl, row: np.ndarray) -> tuple[np.ndarray, int]:
        """Apply a llama.cpp sampler (or chain) to a copy of one row of logits (ids 0..V-1).
        Returns the candidates it leaves (a structured array: id, logit, p) and the index of the
        one it selected (-1 when it only filters)."""
        ll = self._ll
        data = np.empty(self._n_vocab, dtype=[("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
        data["id"] = np.arange(self._n_vocab, dtype=np.int32)
        data["logit"] = row
        data["p"] = 0.0
        arr = ll.llama_token_data_array(data=data.ctypes.data_as(ll.llama_token_data_p), size=self._n_vocab,
                                        selected=-1, sorted=False)
        ll.llama_sampler_apply(smpl, ctypes.byref(arr))
        if not arr.size:
            return data[:0], -1
        left = np.frombuffer(np.ctypeslib.as_array(arr.data, shape=(arr.size,)), dtype=data.dtype).copy()
        return left, int(arr.selected)

    def _chain_pick(self, chain, row: np.ndarray) -> int:
        """Draw from ``row`` with ``chain`` and record the token in its history (what
        llama_sampler_sample does with a row of the context's logits)."""
        left, selected = self._apply_sampler(chain, row)
        tok = int(left["id"][selected])
        self._ll.llama_sampler_accept(chain, tok)
        return tok

    def candidates(self, row: np.ndarray, history: Iterable[int], params: SamplingParams) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, probabilities) that the native chain draws from for one row of logits after
        ``history`` (most probable first); compare :func:`engine.runtime.sampling.distribution`."""
        ll = self._ll
        chain = self._sampler_chain(params, 0, history, draw=False)
        try:
            view, _ = self._apply_sampler(chain, np.asarray(row, dtype=np.float32))
        finally:
            ll.llama_sampler_free(chain)
        logits = view["logit"].astype(np.float64)
        order = np.lexsort((view["id"], -logits))
        ids, logits = view["id"][order].astype(np.int64), logits[order]
        if params.temperature == 0:
            return ids[:1], np.array([1.0])
        probs = np.exp(logits - logits.max())
        return ids, probs / probs.sum()

    def token_logprobs(self, tokens: list[int]) -> list[float]:
        """log p(token i | tokens before it) for i >= 1, by one forward pass over the sequence
        (the separate perplexity pass of the reference pipeline; generation does not need it)."""
        if not self.loaded:
            raise RuntimeError("no model loaded")
        if len(tokens) > self._n_ctx_seq:
            self._default_context()
        mem = self._ll.llama_get_memory(self._ctx)
        self._ll.llama_memory_clear(mem, False)  # cells only: zeroing the buffers costs ms per job
        out: list[float] = []
        for start in range(0, len(tokens), PROMPT_CHUNK):
            part = tokens[start:start + PROMPT_CHUNK]
            self._decode_arrays(part, np.arange(start, start + len(part)), 0, True)
            nxt = np.array(tokens[start + 1:start + len(part) + 1], dtype=np.int64)
            if len(nxt):
                out.extend(log_softmax_at(self._logits(len(part))[:len(nxt)], nxt).tolist())
        self._ll.llama_memory_clear(mem, False)  # cells only: zeroing the buffers costs ms per job
        return out


def _address_function(ll, name: str):
    """A private handle on a llama.cpp function that returns a pointer, returning it as an int
    (the shared wrapper returns a ctypes pointer object that costs a cast per call)."""
    lib = getattr(getattr(ll, "llama_cpp", None), "_lib", None)
    fn = getattr(ll, name)
    if lib is None:
        return lambda *args: ctypes.cast(fn(*args), ctypes.c_void_p).value
    own = lib[name]  # item access makes a new function object: the shared one is left as it is
    own.argtypes = fn.argtypes
    own.restype = ctypes.c_void_p
    return own


def native_seed(seed: int) -> int:
    """The 32-bit seed of llama.cpp's draw for a sample seed (0xFFFFFFFF would mean 'random')."""
    s = int(seed)
    folded = (s ^ (s >> 32)) & 0xFFFFFFFF
    return 0xFFFFFFFE if folded == 0xFFFFFFFF else folded


class _Collector:
    """Turns each finished sequence into a :class:`Sample` (text, perplexities) and hands it on."""

    def __init__(self, rt: Runtime, n_prompt_scored: int, prompt_lp: float, samples: list, on_sample) -> None:
        self.rt = rt
        self.n_prompt_scored = n_prompt_scored
        self.prompt_lp = prompt_lp
        self.samples = samples
        self.on_sample = on_sample
        self.done = 0

    def finish(self, index: int, seed: int, tokens: list[int], logprobs: list[float], stop: str) -> None:
        shown = tokens[:-1] if stop == "eog" else tokens  # the end-of-generation token is not text
        text = b"".join(self.rt.piece(t) for t in shown).decode("utf-8", errors="replace")
        out_lp = float(sum(logprobs))
        n_out = len(logprobs)
        ppl_out = math.exp(-out_lp / n_out) if n_out else float("nan")
        total_n = n_out + self.n_prompt_scored
        ppl = math.exp(-(out_lp + self.prompt_lp) / total_n) if total_n else float("nan")
        s = Sample(index=index, seed=seed, tokens=tokens, text=text, logprobs=logprobs, stop=stop,
                   ppl=ppl, ppl_output=ppl_out, n_tokens=len(tokens))
        self.samples.append(s)
        self.done += 1
        if self.on_sample is not None:
            self.on_sample(s)


class _Batch:
    """A llama_batch whose arrays numpy owns: filling it is a few array assignments, not five
    ctypes item writes per token. One sequence id per token."""

    def __init__(self, ll, cap: int) -> None:
        self.cap = int(cap)
        self.token = np.zeros(self.cap, dtype=np.int32)
        self.pos = np.zeros(self.cap, dtype=np.int32)
        self.n_seq_id = np.ones(self.cap, dtype=np.int32)
        self.seq = np.zeros(self.cap, dtype=np.int32)
        self.logits = np.zeros(self.cap, dtype=np.int8)
        i32p = ctypes.POINTER(ctypes.c_int32)
        base = self.seq.ctypes.data
        self._seq_ptrs = (i32p * self.cap)(*[ctypes.cast(base + 4 * i, i32p) for i in range(self.cap)])
        b = ll.llama_batch()
        b.n_tokens = 0
        b.token = self.token.ctypes.data_as(i32p)
        b.embd = ctypes.POINTER(ctypes.c_float)()
        b.pos = self.pos.ctypes.data_as(i32p)
        b.n_seq_id = self.n_seq_id.ctypes.data_as(i32p)
        b.seq_id = ctypes.cast(self._seq_ptrs, ctypes.POINTER(i32p))
        b.logits = self.logits.ctypes.data_as(ctypes.POINTER(ctypes.c_int8))
        self.struct = b

    def fill(self, tokens, positions, seqs, want_logits) -> int:
        n = len(tokens)
        if not 0 < n <= self.cap:
            raise ValueError(f"batch of {n} tokens (room for {self.cap})")
        self.token[:n] = tokens
        self.pos[:n] = positions
        self.seq[:n] = seqs
        self.logits[:n] = want_logits
        self.struct.n_tokens = n
        return n


class _CancelWatcher:
    """While a long llama_decode runs, turn the job's cancel event into llama.cpp's abort flag.

    Once ``stop()`` has returned the watcher never sets the flag: the next job clears the flag
    when it starts, and a late set from this job's watcher (its thread woken by the cancel after
    the job had already stopped between steps) would abort the next job's first decode."""

    def __init__(self, cancel: threading.Event, flag) -> None:
        self._cancel = cancel
        self._flag = flag
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            if self._cancel.wait(0.05):
                with self._lock:
                    if not self._stopped:
                        self._flag.set()
                return
            with self._lock:
                if self._stopped:
                    return

    def stop(self) -> None:
        with self._lock:
            self._stopped = True


def _supported_architectures() -> tuple[str, ...]:
    from engine.runtime.gguf_facts import TESTED_ARCHITECTURES

    return TESTED_ARCHITECTURES


__all__ = ["recent_log", "_backend_init", "Runtime", "Sample", "GenerationStats", "Cancelled", "RuntimeLoadError",
           "ModelFileError", "PlanError", "SamplingParams"]
