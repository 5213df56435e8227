"""The llama.cpp runtime: load a GGUF as the planner says, tokenise with special tokens, and decode
the N samples of a job together.

How a job runs (:meth:`Runtime.generate`):
1. the prompt is evaluated once, in sequence 0 (with log-probabilities of every prompt token, so
   the full-text perplexity needs no second pass);
2. the prompt's KV cache is copied to sequence ids 1..W (``llama_memory_seq_cp``: in the unified
   cache the cells are shared, not duplicated);
3. all W sequences advance together: one ``llama_decode`` per step with one token per live
   sequence; the logits of the whole batch are sampled in numpy in the reference order
   (:mod:`engine.runtime.sampling`), each sample with its own seed;
4. a sample stops on its closing tag by token id (tags typed as control tokens render as empty
   text, so a text stop would never fire), on an end-of-generation token, or at the length limit;
5. jobs with more samples than fit in the context run in waves; the prompt stays in sequence 0.

Cancellation is a ``threading.Event`` checked between steps and, while long batches run, inside
llama.cpp through its abort callback.
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

from engine.runtime.gguf_facts import ModelFileError, read_facts
from engine.runtime.native import (_LOG_LINES, _LOG_LOCK, NativeHandles, _backend_init, _llama,
                                   _llama_error_lines, recent_log)
from engine.runtime.native import tokenize as native_tokenize
from engine.runtime.planner import Plan, PlanError, plan as make_plan
from engine.runtime.sampling import SamplingParams, sample_batch, sample_seed

PROMPT_CHUNK = 128  # prompt tokens per llama_decode when every prompt token's logits are needed


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
    waves: int = 0
    max_batch: int = 0
    max_new_tokens: int = 0  # the limit applied: asked, or less to stay inside the context
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
        self._batch = None
        self._batch_cap = 0
        self._n_vocab = 0
        self._piece_cache: dict[int, bytes] = {}
        self._abort_flag = threading.Event()
        self._abort_cb = None
        self._abort_on = False
        self._progress_cb = None
        self._ll = None

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
        rt._vocab = ll.llama_model_get_vocab(rt._model)
        rt._n_vocab = int(ll.llama_vocab_n_tokens(rt._vocab))

        cparams = ll.llama_context_default_params()
        cparams.n_ctx = int(rt.plan.n_ctx)
        cparams.n_batch = int(max(rt.plan.n_batch, rt.plan.n_seq_max))
        cparams.n_ubatch = int(max(rt.plan.n_batch, rt.plan.n_seq_max))
        cparams.n_seq_max = int(rt.plan.n_seq_max)
        cparams.n_threads = int(rt.plan.n_threads)
        cparams.n_threads_batch = int(rt.plan.n_threads)
        cparams.kv_unified = True  # the prompt's cells are shared by all sample sequences
        cparams.no_perf = True
        rt._ctx = ll.llama_init_from_model(rt._model, cparams)
        if not rt._ctx:
            why = _llama_error_lines() or "llama.cpp could not create the context"
            rt.close()
            raise RuntimeLoadError(f"{path}: {why} (context {rt.plan.n_ctx} tokens)")
        rt._abort_cb = ll.ggml_abort_callback(lambda _data: rt._abort_flag.is_set())
        rt._batch_cap = int(max(PROMPT_CHUNK, rt.plan.n_seq_max))
        rt._batch = ll.llama_batch_init(rt._batch_cap, 0, 1)
        return rt

    @property
    def loaded(self) -> bool:
        return bool(self._ctx)

    @property
    def n_vocab(self) -> int:
        return self._n_vocab

    @property
    def n_ctx(self) -> int:
        return int(self._ll.llama_n_ctx(self._ctx))

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
        return bool(self._ll.llama_vocab_is_eog(self._vocab, token))

    def is_control(self, token: int) -> bool:
        return bool(self._ll.llama_vocab_is_control(self._vocab, token))

    def eos_id(self) -> int:
        return int(self._ll.llama_vocab_eos(self._vocab))

    # ------------------------------------------------------------------ decoding
    def _set_abort(self, on: bool) -> None:
        if on != self._abort_on:
            self._ll.llama_set_abort_callback(self._ctx, self._abort_cb if on else self._ll.ggml_abort_callback(), None)
            self._abort_on = on

    def _decode(self, items: list[tuple[int, int, int, bool]]) -> None:
        """items: (token, pos, seq_id, want_logits)."""
        ll = self._ll
        b = self._batch
        for i, (tok, pos, seq, out) in enumerate(items):
            b.token[i] = tok
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = 1 if out else 0
        b.n_tokens = len(items)
        rc = ll.llama_decode(self._ctx, b)
        if rc == 2 or (rc != 0 and self._abort_flag.is_set()):
            raise Cancelled("cancelled")
        if rc == 1:
            raise RuntimeError(f"the context ({self.n_ctx} tokens) has no room left for this batch; "
                               "ask for fewer samples, fewer new tokens or a larger context")
        if rc != 0:
            raise RuntimeError(f"llama_decode failed ({rc}): {_llama_error_lines()}")

    def _logits(self, n_rows: int) -> np.ndarray:
        ptr = self._ll.llama_get_logits(self._ctx)
        return np.ctypeslib.as_array(ptr, shape=(n_rows, self._n_vocab))

    def _grammar_mask(self, smpl, row: np.ndarray) -> np.ndarray:
        ll = self._ll
        data = np.empty(self._n_vocab, dtype=[("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
        data["id"] = np.arange(self._n_vocab, dtype=np.int32)
        data["logit"] = row
        data["p"] = 0.0
        arr = ll.llama_token_data_array(
            data=data.ctypes.data_as(ll.llama_token_data_p), size=self._n_vocab, selected=-1, sorted=False)
        ll.llama_sampler_apply(smpl, ctypes.byref(arr))
        out = np.ctypeslib.as_array(arr.data, shape=(arr.size,)) if arr.size else None
        mask = np.zeros(self._n_vocab, dtype=bool)
        if out is not None:
            view = np.frombuffer(out, dtype=data.dtype) if out.dtype != data.dtype else out
            ok = np.isfinite(view["logit"])
            mask[view["id"][ok]] = True
        return mask

    def generate(self, prompt: str | list[int], n: int = 1, params: SamplingParams | None = None,
                 seed: int = 0, *, stop_ids: Iterable[int] = (), stop_count: int = 1,
                 stop_texts: Iterable[str] = (), grammar: str | None = None,
                 cancel: threading.Event | None = None, score_prompt: bool = True,
                 on_sample: Callable[[Sample], None] | None = None,
                 on_progress: Callable[[int, int, int, float], None] | None = None,
                 on_prompt: Callable[[int, int], None] | None = None,
                 ) -> tuple[list[Sample], GenerationStats]:
        """Generate ``n`` samples of one prompt. ``stop_ids``: token ids that close the record;
        generation stops after ``stop_count`` of them. ``stop_texts``: text stops, for closing tags
        that are not one token. ``on_sample`` is called as each sample finishes; ``on_progress``
        with (samples done, n, tokens generated, seconds) after each step; ``on_prompt`` with
        (prompt tokens evaluated, prompt tokens) after each prompt chunk."""
        if not self.loaded:
            raise RuntimeError("no model loaded")
        params = params or SamplingParams()
        params.check()
        if n < 1:
            raise ValueError("n must be >= 1")
        ll = self._ll
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
        stop_set = {int(t) for t in stop_ids}
        stop_bytes = [s.encode() for s in stop_texts if s]
        mem = ll.llama_get_memory(self._ctx)
        ll.llama_memory_clear(mem, True)

        # (1) the prompt, once, in sequence 0
        watcher = _CancelWatcher(cancel, self._abort_flag)
        try:
            self._set_abort(True)
            return self._generate(ptoks, n, params, seed, stop_set, stop_count, stop_bytes, grammar,
                                  cancel, score_prompt, on_sample, on_progress, stats, mem, on_prompt)
        finally:
            watcher.stop()
            self._set_abort(False)

    def _generate(self, ptoks, n, params, seed, stop_set, stop_count, stop_bytes, grammar, cancel,
                  score_prompt, on_sample, on_progress, stats, mem, on_prompt=None):
        ll = self._ll
        n_prompt = len(ptoks)
        n_ctx = self.n_ctx
        t0 = time.perf_counter()
        prompt_lp = 0.0
        last_row = None
        chunk = PROMPT_CHUNK if score_prompt else self._batch_cap
        for start in range(0, n_prompt, chunk):
            if cancel.is_set():
                raise Cancelled("cancelled")
            part = ptoks[start:start + chunk]
            is_last = start + len(part) == n_prompt
            items = [(t, start + j, 0, score_prompt or (is_last and j == len(part) - 1))
                     for j, t in enumerate(part)]
            self._decode(items)
            n_out = sum(1 for it in items if it[3])
            rows = self._logits(n_out)
            if score_prompt:
                nxt = np.array(ptoks[start + 1:start + len(part) + 1], dtype=np.int64)
                k = len(nxt)
                if k:
                    from engine.runtime.sampling import log_softmax_at

                    prompt_lp += float(log_softmax_at(rows[:k], nxt).sum())
            if is_last:
                last_row = np.array(rows[-1], dtype=np.float32, copy=True)
            if on_prompt is not None:
                on_prompt(start + len(part), n_prompt)
        stats.prompt_s = time.perf_counter() - t0
        n_prompt_scored = n_prompt - 1 if score_prompt else 0

        # (2..5) samples in waves
        max_new = int(params.max_new_tokens)
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
        wave_cap = min(self.plan.n_seq_max - 1 if self.plan.n_seq_max > 1 else 1, room // max_new)
        wave_cap = max(1, wave_cap)
        prompt_seen = np.unique(np.array(ptoks, dtype=np.int64))
        samples: list[Sample] = []
        done = 0
        t_dec = time.perf_counter()
        grammars = []
        try:
            index = 0
            while index < n:
                width = min(wave_cap, n - index)
                stats.waves += 1
                stats.max_batch = max(stats.max_batch, width)
                seqs = list(range(1, width + 1)) if self.plan.n_seq_max > 1 else [0]
                if seqs != [0]:
                    for s in seqs:
                        ll.llama_memory_seq_cp(mem, 0, s, -1, -1)
                live = []
                for j, s in enumerate(seqs):
                    i = index + j
                    sd = sample_seed(seed, i)
                    g = None
                    if grammar:
                        g = ll.llama_sampler_init_grammar(self._vocab, grammar.encode(), b"root")
                        if not g:
                            raise ValueError(f"the GBNF grammar does not parse: {_llama_error_lines()}")
                        grammars.append(g)
                    live.append(_Seq(i, s, sd, np.random.default_rng(sd), set(prompt_seen.tolist()),
                                     prompt_seen, g))
                rows = np.broadcast_to(last_row, (len(live), self._n_vocab))
                step = 0
                while live:
                    if cancel.is_set():
                        raise Cancelled("cancelled")
                    # sample one token per live sequence from its row
                    mx = rows.max(axis=1)
                    lse = mx + np.log(np.exp(rows - mx[:, None]).sum(axis=1, dtype=np.float64))
                    still = []
                    masks = [self._grammar_mask(sq.grammar, rows[j]) if sq.grammar is not None else None
                             for j, sq in enumerate(live)]
                    picks = []
                    for j, sq in enumerate(live):
                        if masks[j] is not None and not masks[j].any():  # grammar admits nothing more
                            self._finish(sq, "grammar", n_prompt_scored, prompt_lp, samples, on_sample)
                            done += 1
                        else:
                            picks.append(j)
                    toks = sample_batch(rows[picks], [live[j].seen_arr() for j in picks], params,
                                        [live[j].rng for j in picks],
                                        [masks[j] for j in picks] if grammar else None) if picks else []
                    for j, tok in zip(picks, toks):
                        sq = live[j]
                        tok = int(tok)
                        sq.tokens.append(tok)
                        sq.logprobs.append(float(rows[j, tok]) - float(lse[j]))
                        sq.add_seen(tok)
                        if sq.grammar is not None:
                            ll.llama_sampler_accept(sq.grammar, tok)
                        stats.tokens_generated += 1
                        stop = None
                        if tok in stop_set:
                            sq.stops += 1
                            if sq.stops >= stop_count:
                                stop = "stop_token"
                        elif self.is_eog(tok):
                            stop = "eog"
                        if stop is None and stop_bytes:
                            sq.buf += self.piece(tok)
                            if any(sq.buf.endswith(sb) for sb in stop_bytes):
                                sq.stops += 1
                                if sq.stops >= stop_count:
                                    stop = "stop_token"
                        if stop is None and len(sq.tokens) >= max_new:
                            stop = "length"
                        if stop is not None:
                            self._finish(sq, stop, n_prompt_scored, prompt_lp, samples, on_sample)
                            done += 1
                        else:
                            still.append(sq)
                    live = still
                    step += 1
                    stats.steps += 1
                    if on_progress is not None:
                        on_progress(done, n, stats.tokens_generated, time.perf_counter() - t_dec)
                    if not live:
                        break
                    # advance every live sequence by its last token in one batch
                    items = [(sq.tokens[-1], n_prompt + len(sq.tokens) - 1, sq.seq, True) for sq in live]
                    ts = time.perf_counter()
                    self._decode(items)
                    self._set_abort(time.perf_counter() - ts > 0.3)
                    rows = self._logits(len(items))
                if seqs != [0]:
                    for s in seqs:
                        ll.llama_memory_seq_rm(mem, s, -1, -1)
                else:
                    ll.llama_memory_seq_rm(mem, 0, n_prompt, -1)
                index += width
        finally:
            for g in grammars:
                ll.llama_sampler_free(g)
            stats.decode_s = time.perf_counter() - t_dec
        samples.sort(key=lambda s: s.index)
        return samples, stats

    def token_logprobs(self, tokens: list[int]) -> list[float]:
        """log p(token i | tokens before it) for i >= 1, by one forward pass over the sequence
        (the separate perplexity pass of the reference pipeline; generation does not need it)."""
        if not self.loaded:
            raise RuntimeError("no model loaded")
        from engine.runtime.sampling import log_softmax_at

        mem = self._ll.llama_get_memory(self._ctx)
        self._ll.llama_memory_clear(mem, True)
        out: list[float] = []
        for start in range(0, len(tokens), PROMPT_CHUNK):
            part = tokens[start:start + PROMPT_CHUNK]
            self._decode([(t, start + j, 0, True) for j, t in enumerate(part)])
            nxt = np.array(tokens[start + 1:start + len(part) + 1], dtype=np.int64)
            if len(nxt):
                out.extend(log_softmax_at(self._logits(len(part))[:len(nxt)], nxt).tolist())
        self._ll.llama_memory_clear(mem, True)
        return out

    def _finish(self, sq: "_Seq", stop: str, n_prompt_scored: int, prompt_lp: float,
                samples: list[Sample], on_sample) -> None:
        shown = [t for t in sq.tokens if not (stop == "eog" and t == sq.tokens[-1] and self.is_eog(t))]
        text = b"".join(self.piece(t) for t in shown).decode("utf-8", errors="replace")
        out_lp = float(sum(sq.logprobs))
        n_out = len(sq.logprobs)
        ppl_out = math.exp(-out_lp / n_out) if n_out else float("nan")
        total_n = n_out + n_prompt_scored
        ppl = math.exp(-(out_lp + prompt_lp) / total_n) if total_n else float("nan")
        s = Sample(index=sq.index, seed=sq.seed, tokens=list(sq.tokens), text=text,
                   logprobs=list(sq.logprobs), stop=stop, ppl=ppl, ppl_output=ppl_out,
                   n_tokens=len(sq.tokens))
        samples.append(s)
        if on_sample is not None:
            on_sample(s)


@dataclass
class _Seq:
    index: int
    seq: int
    seed: int
    rng: np.random.Generator
    seen: set
    _seen_arr: np.ndarray
    grammar: object = None
    tokens: list = field(default_factory=list)
    logprobs: list = field(default_factory=list)
    stops: int = 0
    buf: bytes = b""

    def add_seen(self, tok: int) -> None:
        if tok not in self.seen:
            self.seen.add(tok)
            self._seen_arr = np.append(self._seen_arr, tok)

    def seen_arr(self) -> np.ndarray:
        return self._seen_arr


class _CancelWatcher:
    """While a long llama_decode runs, turn the job's cancel event into llama.cpp's abort flag."""

    def __init__(self, cancel: threading.Event, flag: threading.Event) -> None:
        self._cancel = cancel
        self._flag = flag
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._cancel.wait(0.05):
                self._flag.set()
                return

    def stop(self) -> None:
        self._stop.set()


def _supported_architectures() -> tuple[str, ...]:
    from engine.runtime.gguf_facts import TESTED_ARCHITECTURES

    return TESTED_ARCHITECTURES


__all__ = ["recent_log", "_backend_init", "Runtime", "Sample", "GenerationStats", "Cancelled", "RuntimeLoadError",
           "ModelFileError", "PlanError", "SamplingParams"]
