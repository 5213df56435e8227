"""Thin handles on llama.cpp's native objects: model, context, batch, sampler chains.

Each class owns one native object and frees it on ``close()`` (never at garbage collection); the
methods are the few calls the runtime makes, with numpy arrays in and out, and no policy: which
layout, how many slots, which sampler, when to stop, all live above (:mod:`engine.runtime.llama`,
:mod:`engine.runtime.job`, :mod:`engine.runtime.draw`).
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from engine.runtime.native import AbortFlag, _llama_error_lines
from engine.runtime.sampling import SamplingParams


class Cancelled(Exception):
    """The job was cancelled (between tokens or inside llama.cpp's abort callback)."""


class RuntimeLoadError(RuntimeError):
    """The model could not be loaded; ``str()`` says which file and why (llama.cpp's own words)."""


def address_function(ll, name: str):
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


# ---------------------------------------------------------------------------------------- model
class LlamaModel:
    """A loaded ``llama_model`` and its vocabulary."""

    def __init__(self, ll, ptr, path: Path) -> None:
        self.ll = ll
        self.ptr = ptr
        self.path = path
        self.vocab = ll.llama_model_get_vocab(ptr)
        self.n_vocab = int(ll.llama_vocab_n_tokens(self.vocab))
        self._pieces: dict[int, bytes] = {}
        self._tokens: dict[tuple, tuple] = {}  # (text, add_special, parse_special) -> ids
        self._eog = None

    @classmethod
    def load(cls, ll, path: Path, n_gpu_layers: int, progress: Callable[[float], bool]) -> "LlamaModel | None":
        """Load ``path``; ``progress(fraction)`` returns False to abort. None when llama.cpp refused."""
        mparams = ll.llama_model_default_params()
        mparams.n_gpu_layers = int(n_gpu_layers)
        cb = ll.llama_progress_callback(lambda frac, _user: bool(progress(float(frac))))
        mparams.progress_callback = cb
        ptr = ll.llama_model_load_from_file(str(path).encode(), mparams)
        del cb  # llama.cpp calls it during loading only
        return cls(ll, ptr, path) if ptr else None

    def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        """Token ids of ``text``; the last few hundred short texts asked are kept (a task's prompt
        comes back with every job, and the call into llama.cpp hands the GIL to the loop thread)."""
        key = (text, add_special, parse_special)
        ids = self._tokens.get(key)
        if ids is None:
            from engine.runtime.native import tokenize

            ids = tuple(tokenize(self.ll, self.vocab, text, add_special, parse_special))
            if len(text) <= 4096:
                if len(self._tokens) >= 256:
                    self._tokens.clear()
                self._tokens[key] = ids
        return list(ids)

    def piece(self, token: int) -> bytes:
        """The bytes of one token with special tokens rendered (``special=True``)."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        ll = self.ll
        buf = ctypes.create_string_buffer(64)
        n = ll.llama_token_to_piece(self.vocab, token, buf, 64, 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = ll.llama_token_to_piece(self.vocab, token, buf, -n, 0, True)
        out = buf.raw[:n]
        self._pieces[token] = out
        return out

    def text_of(self, tokens: list[int]) -> bytes:
        """The bytes of a run of tokens (:meth:`piece` each, joined)."""
        cache = self._pieces
        try:
            return b"".join([cache[t] for t in tokens])
        except KeyError:
            return b"".join([self.piece(t) for t in tokens])

    def eog_mask(self) -> np.ndarray:
        """True for the vocabulary's end-of-generation tokens (built once)."""
        if self._eog is None:
            is_eog, vocab = self.ll.llama_vocab_is_eog, self.vocab
            self._eog = np.array([is_eog(vocab, t) for t in range(self.n_vocab)], dtype=bool)
            self._eog.setflags(write=False)  # shared by every job's StopRule
        return self._eog

    def is_control(self, token: int) -> bool:
        return bool(self.ll.llama_vocab_is_control(self.vocab, token))

    def eos(self) -> int:
        return int(self.ll.llama_vocab_eos(self.vocab))

    def close(self) -> None:
        if self.ptr:
            self.ll.llama_model_free(self.ptr)
            self.ptr = None


# ---------------------------------------------------------------------------------------- batch
class Batch:
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


# -------------------------------------------------------------------------------------- context
# llama.h's llama_batch on a 64-bit platform: (field, offset), 56 bytes
_LLAMA_H_BATCH = ([("n_tokens", 0), ("token", 8), ("embd", 16), ("pos", 24), ("n_seq_id", 32), ("seq_id", 40),
                   ("logits", 48)], 56)


def _batch_layout(ll):
    """The fields and size of llama-cpp-python's llama_batch structure, as _LLAMA_H_BATCH lists them."""
    st = ll.llama_batch
    return [(f[0], getattr(st, f[0]).offset) for f in st._fields_], ctypes.sizeof(st)


class LlamaContext:
    """A ``llama_context`` on a model, re-created when a job needs another KV layout; its batch,
    its abort flag, its logits and its memory (KV cells per sequence)."""

    def __init__(self, model: LlamaModel, abort: AbortFlag, batch_cap: int) -> None:
        self.ll = model.ll
        self.model = model
        self.abort = abort
        self.ptr = None
        self.key: tuple[int, int, bool] | None = None
        self.n_ctx = 0  # tokens in all
        self.n_ctx_seq = 0  # tokens per sequence
        self.batch = Batch(self.ll, batch_cap)
        self._get_logits = address_function(self.ll, "llama_get_logits")
        self._step_fns: tuple | None = None  # (llama_decode, llama_get_logits, llama_memory_seq_rm) addresses
        self._handles: tuple | None = None  # (context, wake array, the handles step_handles made for them)
        self._view = None  # (address, rows) of llama.cpp's logits buffer
        self._mem = None
        # counts the changes made to the KV cells from Python (decode, clear, copies, removals,
        # a new context): a slot loop that keeps its prompts for the next job records it at its end,
        # and the next job reuses them only if nothing has changed the cells since
        self.epoch = 0

    def open(self, n_ctx: int, n_seq: int, unified: bool, n_batch: int, n_threads: int) -> None:
        """(Re)create the context with this layout unless it has it already; RuntimeLoadError when
        llama.cpp refuses (e.g. out of memory), the context then closed."""
        key = (int(n_ctx), int(n_seq), bool(unified))
        if self.ptr and self.key == key:
            return
        self.free()  # (a new context: the epoch moves there)
        ll = self.ll
        cparams = ll.llama_context_default_params()
        cparams.n_ctx = key[0]
        cparams.n_batch = int(max(n_batch, n_seq))
        cparams.n_ubatch = int(max(n_batch, n_seq))
        cparams.n_seq_max = key[1]
        cparams.n_threads = int(n_threads)
        cparams.n_threads_batch = int(n_threads)
        cparams.kv_unified = key[2]
        cparams.no_perf = True
        self.ptr = ll.llama_init_from_model(self.model.ptr, cparams)
        if not self.ptr:
            why = _llama_error_lines() or "llama.cpp could not create the context"
            raise RuntimeLoadError(f"{self.model.path}: {why} (context {key[0]} tokens, {key[1]} sequences)")
        self.key = key
        self.n_ctx = int(ll.llama_n_ctx(self.ptr))
        self.n_ctx_seq = int(ll.llama_n_ctx_seq(self.ptr))
        self._mem = ll.llama_get_memory(self.ptr)
        self.abort.install(ll, self.ptr)

    @property
    def n_seq(self) -> int:
        return self.key[1] if self.key else 0

    # decoding
    def decode(self, tokens, positions, seqs, want_logits=True) -> None:
        """One llama_decode of len(tokens) tokens; ``want_logits`` a bool or one per token."""
        n = self.batch.fill(tokens, positions, seqs, want_logits)
        self.epoch += 1
        self.check(self.ll.llama_decode(self.ptr, self.batch.struct), n)

    def check(self, rc: int, n: int) -> None:
        """llama_decode's return code for a batch of ``n`` tokens: Cancelled, or RuntimeError
        saying why, unless it is 0."""
        if rc == 2 or (rc != 0 and self.abort.is_set()):
            raise Cancelled("cancelled")
        if rc == 1:
            raise RuntimeError(f"the context ({self.n_ctx_seq} tokens per sequence) has no room left "
                               f"for this batch of {n}; "
                               "ask for fewer samples, fewer new tokens or a larger context")
        if rc != 0:
            raise RuntimeError(f"llama_decode failed ({rc}): {_llama_error_lines()}")

    def step_handles(self, wake: np.ndarray | None) -> np.ndarray | None:
        """What a step in C needs (``engine.runtime._stepper.run_steps``), as uint64: the addresses
        of llama_decode and llama_get_logits, of the context, of its batch structure, of the abort
        flag's word, of ``wake`` (an int64 array the caller keeps alive: non-zero = return; None:
        0, no such word), of llama_memory_seq_rm and of the context's memory. None where
        llama-cpp-python exposes no library handle or lays the batch out otherwise than llama.h
        (the C side declares that layout)."""
        if self._step_fns is None:  # looked up once: the same for every context of the library
            self._step_fns = ()
            lib = getattr(getattr(self.ll, "llama_cpp", None), "_lib", None)
            if lib is not None and _batch_layout(self.ll) == _LLAMA_H_BATCH:
                try:
                    self._step_fns = tuple(ctypes.cast(lib[name], ctypes.c_void_p).value
                                           for name in ("llama_decode", "llama_get_logits", "llama_memory_seq_rm"))
                except (AttributeError, KeyError):
                    pass
        if not self._step_fns or not self.ptr:
            return None
        cached = self._handles
        if cached is not None and cached[0] is self.ptr and cached[1] is wake:
            return cached[2]  # the same context and word: the same addresses (made once: ~30 us a job)
        decode, get_logits, seq_rm = self._step_fns
        ctx = ctypes.cast(self.ptr, ctypes.c_void_p).value
        mem = ctypes.cast(self._mem, ctypes.c_void_p).value
        handles = np.array([decode, get_logits, ctx, ctypes.addressof(self.batch.struct), self.abort.word_address(),
                            0 if wake is None else wake.ctypes.data, seq_rm, mem], dtype=np.uint64)
        self._handles = (self.ptr, wake, handles)
        return handles

    def logits(self, n_rows: int) -> np.ndarray:
        """The logits rows of the last decode, a view into llama.cpp's buffer (valid until the next).
        The view is kept while llama.cpp keeps the buffer (same address, enough rows)."""
        addr = self._get_logits(self.ptr)
        view = self._view
        n_vocab = self.model.n_vocab
        if view is None or view[0] != addr or view[1].shape[0] < n_rows:
            buf = (ctypes.c_float * (n_rows * n_vocab)).from_address(addr)
            view = self._view = (addr, np.frombuffer(buf, dtype=np.float32).reshape(n_rows, n_vocab))
        return view[1][:n_rows]

    def logits_last(self) -> np.ndarray:
        """The last output row of the last decode (llama.cpp's index -1), a view into its buffer."""
        ptr = self.ll.llama_get_logits_ith(self.ptr, -1)
        addr = ctypes.cast(ptr, ctypes.c_void_p).value
        return np.frombuffer((ctypes.c_float * self.model.n_vocab).from_address(addr), dtype=np.float32)

    def sample(self, chains: list, idx: list[int], lo: int, hi: int) -> list[int]:
        """llama_sampler_sample of chain j on output row idx[j], for j in [lo, hi)."""
        sample, ctx = self.ll.llama_sampler_sample, self.ptr
        return [sample(chains[j], ctx, idx[j]) for j in range(lo, hi)]

    # memory
    def clear(self) -> None:
        """Drop every cell (not the buffers: zeroing them costs ms per job)."""
        self.epoch += 1
        self.ll.llama_memory_clear(self._mem, False)

    def seq_cp(self, src: int, dst: int) -> None:
        self.epoch += 1
        self.ll.llama_memory_seq_cp(self._mem, int(src), int(dst), -1, -1)

    def seq_rm(self, seq: int, p0: int = -1) -> None:
        self.epoch += 1
        self.ll.llama_memory_seq_rm(self._mem, int(seq), int(p0), -1)

    def free(self) -> None:
        self.epoch += 1
        if self.ptr:
            self.ll.llama_free(self.ptr)
        self.ptr = None
        self.key = None
        self._view = None
        self._mem = None


# ------------------------------------------------------------------------------------ samplers
def reference_chain(ll, params: SamplingParams, seed: int, n_vocab: int, window: int,
                    history: Iterable[int] = (), draw: bool = True, penalties: bool = True):
    """llama.cpp's sampler chain in the reference order: repetition penalty over every token of
    the sequence (prompt included: ``history`` is accepted first; ``window`` tokens), temperature,
    top-k, top-p, min-p, then a draw seeded from the sample's seed. ``draw=False`` leaves the draw
    out (the candidates and their order). ``penalties=False`` leaves the penalty out (the caller
    applies it to the logits itself). Free with :func:`free_sampler`.

    Top-k runs before temperature: a positive temperature keeps the order of the logits, so the
    k kept are the same, and the division then touches k logits instead of the vocabulary."""
    cp = ll.llama_sampler_chain_default_params()
    cp.no_perf = True
    chain = ll.llama_sampler_chain_init(cp)
    add = ll.llama_sampler_chain_add
    if penalties and params.repetition_penalty != 1.0:
        # the window is the whole job budget: every token of the sequence counts, as in transformers
        add(chain, ll.llama_sampler_init_penalties(n_vocab, max(1, window), float(params.repetition_penalty),
                                                   0.0, 0.0))
    if params.temperature == 0:
        if draw:
            add(chain, ll.llama_sampler_init_greedy())
    else:
        if 0 < params.top_k < n_vocab:
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


def grammar_sampler(model: LlamaModel, gbnf: str):
    """llama.cpp's grammar sampler for ``gbnf`` (rule ``root``), or ValueError with its words."""
    g = model.ll.llama_sampler_init_grammar(model.vocab, gbnf.encode(), b"root")
    if not g:
        raise ValueError(f"the GBNF grammar does not parse: {_llama_error_lines()}")
    return g


def apply_sampler(ll, smpl, row: np.ndarray, n_vocab: int) -> tuple[np.ndarray, int]:
    """Apply a llama.cpp sampler (or chain) to a copy of one row of logits (ids 0..V-1).
    Returns the candidates it leaves (a structured array: id, logit, p) and the index of the
    one it selected (-1 when it only filters)."""
    data = np.empty(n_vocab, dtype=[("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
    data["id"] = np.arange(n_vocab, dtype=np.int32)
    data["logit"] = row
    data["p"] = 0.0
    arr = ll.llama_token_data_array(data=data.ctypes.data_as(ll.llama_token_data_p), size=n_vocab,
                                    selected=-1, sorted=False)
    ll.llama_sampler_apply(smpl, ctypes.byref(arr))
    if not arr.size:
        return data[:0], -1
    left = np.frombuffer(np.ctypeslib.as_array(arr.data, shape=(arr.size,)), dtype=data.dtype).copy()
    return left, int(arr.selected)


def chain_pick(ll, chain, row: np.ndarray, n_vocab: int) -> int:
    """Draw from ``row`` with ``chain`` and record the token in its history (what
    llama_sampler_sample does with a row of the context's logits)."""
    left, selected = apply_sampler(ll, chain, row, n_vocab)
    tok = int(left["id"][selected])
    ll.llama_sampler_accept(chain, tok)
    return tok


def grammar_mask(ll, smpl, row: np.ndarray, n_vocab: int) -> np.ndarray:
    """The tokens a grammar sampler admits after what it has accepted."""
    view, _ = apply_sampler(ll, smpl, row, n_vocab)
    mask = np.zeros(n_vocab, dtype=bool)
    mask[view["id"][np.isfinite(view["logit"])]] = True
    return mask


def accept(ll, smpl, token: int) -> None:
    ll.llama_sampler_accept(smpl, int(token))


def free_sampler(ll, smpl) -> None:
    ll.llama_sampler_free(smpl)


__all__ = ["LlamaModel", "LlamaContext", "Batch", "Cancelled", "RuntimeLoadError", "reference_chain",
           "grammar_sampler", "apply_sampler", "chain_pick", "grammar_mask", "free_sampler", "native_seed"]
