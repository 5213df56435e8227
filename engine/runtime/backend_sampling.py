"""Sampling inside llama.cpp's compute graph ("backend sampling"), so the logits never cross to the host.

llama.cpp (the one vendored by llama-cpp-python 0.3.36) can run a sampler chain attached to a
sequence of the context (``llama_set_sampler``) as part of ``llama_decode``'s graph: each sampler
of the chain that has a backend implementation adds ggml operations after the output layer, and
the host then reads one token per output (``llama_get_sampled_token_ith``) plus the few
candidates' logits and probabilities, instead of ``n_vocab`` floats per row. A chain runs on the
backend up to its first sampler without such an implementation (or whose operations the device
does not support); the rest would run on the host. What the vendored sources implement:

=============  ==================================================================================
penalties      yes, only with ``n_outputs_max_per_seq == 1`` (the context's default); the history
               (tokens and counts) stays on the host, accepted with ``llama_sampler_accept``, and
               is uploaded as a graph input before each decode
temp           yes (``ggml_scale``; temperature 0: ``ggml_argmax``)
top-k          yes (``ggml_top_k``; exactly k kept, ties at the k-th not kept as transformers does)
top-p          yes (sort, softmax, cumsum, the first token reaching p kept: the reference's rule)
min-p          yes (not in the reference chain, min-p 0 leaves it out)
dist           yes (softmax, cumsum, one uniform from the sampler's mt19937 per output)
greedy         yes (``ggml_argmax``)
grammar        no ("cannot be offloaded"): grammar jobs keep the host drawer
=============  ==================================================================================

So the reference order, penalty -> temperature -> top-k -> top-p -> draw, runs whole on the
backend. The draw's random stream is llama.cpp's (mt19937 seeded from the sample's seed), not the
compiled sampler's PCG64: the same distribution, other samples for a seed
(``tests/engine/runtime/test_backend_sampling.py`` compares the two by distribution).

The perplexity. The reference's second pass scores each drawn token under the model's own
distribution: ``log softmax(raw logits)[token]``. The chain's own outputs cannot give it (the
logits it returns are penalised, divided by the temperature and cut to the top-k), so the chain
built here carries two small samplers of ours, written against ``struct llama_sampler_i`` through
ctypes with a few ggml calls bound below (llama-cpp-python binds none of ggml's graph functions):

- ``logos-raw`` first: keeps the raw row's tensor and hands the chain a copy (``ggml_dup``), since
  the penalty sampler writes its scores into the row it is given (``ggml_set_rows`` in place);
- ``logos-logp`` last: ``log(get_rows(soft_max(raw), sampled))``, which becomes the chain's
  "logits" output, one float per output, read with ``llama_get_sampled_logits_ith``.

The softmax is over the full row, on the device, in the same graph; the host receives 4 bytes.
The first token of each sample is drawn from the prompt's last row, which the runtime holds on
the host anyway: there the log-probability is ``row[token] - lse(row)`` (the one full-row
log-sum-exp, once per job), and the draw is llama.cpp's dist sampler seeded from the sample's seed
over the prompt row's candidates (computed once per job by the same chain on the host); its random
state is then copied into the slot's attached chain, so the sample's stream goes on from there.

When the compiled sampler draws instead (``available`` says no, the runtime notes it and uses
"logos"): a job with a GBNF grammar (llama.cpp: "sampler 'grammar' ... cannot be offloaded to the
backend"); a device without one of the chain's operations (llama.cpp: "device '...' does not have
support for op ... needed for sampler '...'", the sampler then named "-top-k" etc.); a context made
for several outputs per sequence (the penalty sampler refuses: "-penalties"); a model split by
tensor; a llama.cpp without these functions or a libggml-base that cannot be loaded.
:func:`probe` and :meth:`Support.text` say which, in the words of ``logos doctor``.

Opt-in (``RuntimeOptions(sampler="backend")``, ``LOGOS_SAMPLER=backend``); the default stays
"logos". On the CPU backend there is no transfer to save: measured on the demonstration model
(1,024-token vocabulary, one thread) a step of 16 or 50 slots takes 12-20 % longer with the
chain in the graph than decode + compiled sampler. On CUDA/Metal with a 128k vocabulary it removes
``N x 512 KB`` of logits per step from the bus and the host's share of the step; what it costs
there (one small chain of kernels per sequence, graph rebuilds calling our two samplers back into
Python, about 2 x N ctypes callbacks per rebuild) is unmeasured: make it the GPU default only once
``tests/benchmarks/gpu_engine.py`` shows it faster at N = 16 and 256.

Only this module (and the rest of ``engine/runtime``) calls llama.cpp; the drawer registers
itself as "backend" (:mod:`engine.runtime.drawers`).
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from dataclasses import dataclass, field

import numpy as np

from engine.runtime.sampling import SamplingParams

LLAMA_TOKEN_NULL = -1
_RAW_NAME = b"logos-raw"
_LOGP_NAME = b"logos-logp"


def _native_seed(seed: int) -> int:
    """The 32-bit seed of llama.cpp's draw for a sample seed (0xFFFFFFFF would mean 'random');
    the same folding as the "native" drawer's."""
    s = int(seed)
    folded = (s ^ (s >> 32)) & 0xFFFFFFFF
    return 0xFFFFFFFE if folded == 0xFFFFFFFF else folded


# ----------------------------------------------------------------------------- native bindings
class _SamplerData(ctypes.Structure):  # struct llama_sampler_data
    _fields_ = [("logits", ctypes.c_void_p), ("probs", ctypes.c_void_p),
                ("sampled", ctypes.c_void_p), ("candidates", ctypes.c_void_p)]


class _Sampler(ctypes.Structure):  # struct llama_sampler
    _fields_ = [("iface", ctypes.c_void_p), ("ctx", ctypes.c_void_p)]


_VP = ctypes.c_void_p
# our own prototypes of llama_sampler_i's members (name returns a pointer we keep alive: a
# c_char_p result from a Python callback would point into a freed bytes object)
_NAME = ctypes.CFUNCTYPE(_VP, _VP)
_ACCEPT = ctypes.CFUNCTYPE(None, _VP, ctypes.c_int32)
_APPLY = ctypes.CFUNCTYPE(None, _VP, _VP)
_RESET = ctypes.CFUNCTYPE(None, _VP)
_CLONE = ctypes.CFUNCTYPE(_VP, _VP)
_FREE = ctypes.CFUNCTYPE(None, _VP)
_BACKEND_INIT = ctypes.CFUNCTYPE(ctypes.c_bool, _VP, _VP, ctypes.c_uint32)
_BACKEND_ACCEPT = ctypes.CFUNCTYPE(None, _VP, _VP, _VP, _VP)
_BACKEND_APPLY = ctypes.CFUNCTYPE(None, _VP, _VP, _VP, ctypes.POINTER(_SamplerData))
_BACKEND_SET_INPUT = ctypes.CFUNCTYPE(None, _VP)
_BACKEND_RESET = ctypes.CFUNCTYPE(None, _VP)
_COPY_STATE = ctypes.CFUNCTYPE(None, _VP, _VP)


class _SamplerI(ctypes.Structure):  # struct llama_sampler_i, member for member
    _fields_ = [("name", _NAME), ("accept", _ACCEPT), ("apply", _APPLY), ("reset", _RESET),
                ("clone", _CLONE), ("free", _FREE), ("backend_init", _BACKEND_INIT),
                ("backend_accept", _BACKEND_ACCEPT), ("backend_apply", _BACKEND_APPLY),
                ("backend_set_input", _BACKEND_SET_INPUT), ("backend_reset", _BACKEND_RESET),
                ("copy_state", _COPY_STATE)]


class Natives:
    """The functions this module calls, bound once: llama.cpp's backend-sampling API (declared by
    llama-cpp-python but called here through our own prototypes, pointers as ints) and the
    handful of ggml graph functions the log-probability sampler needs (from libggml-base, which
    llama-cpp-python loads but does not bind)."""

    LLAMA = {
        "llama_set_sampler": (ctypes.c_bool, [_VP, ctypes.c_int32, _VP]),
        "llama_sampler_init": (_VP, [_VP, _VP]),
        "llama_sampler_name": (ctypes.c_char_p, [_VP]),
        "llama_sampler_chain_get": (_VP, [_VP, ctypes.c_int32]),
        "llama_sampler_chain_n": (ctypes.c_int32, [_VP]),
        "llama_sampler_chain_add": (None, [_VP, _VP]),
        "llama_sampler_apply": (None, [_VP, _VP]),
        "llama_sampler_copy": (None, [_VP, _VP]),
        "llama_sampler_accept": (None, [_VP, ctypes.c_int32]),
        "llama_sampler_reset": (None, [_VP]),
        "llama_sampler_free": (None, [_VP]),
        "llama_get_sampled_token_ith": (ctypes.c_int32, [_VP, ctypes.c_int32]),
        "llama_get_sampled_logits_ith": (_VP, [_VP, ctypes.c_int32]),
        "llama_get_sampled_logits_count_ith": (ctypes.c_uint32, [_VP, ctypes.c_int32]),
    }
    GGML = {
        "ggml_dup": (_VP, [_VP, _VP]),
        "ggml_soft_max": (_VP, [_VP, _VP]),
        "ggml_log": (_VP, [_VP, _VP]),
        "ggml_get_rows": (_VP, [_VP, _VP, _VP]),
        "ggml_reshape_1d": (_VP, [_VP, _VP, ctypes.c_int64]),
        "ggml_reshape_2d": (_VP, [_VP, _VP, ctypes.c_int64, ctypes.c_int64]),
        "ggml_nelements": (ctypes.c_int64, [_VP]),
        "ggml_is_contiguous": (ctypes.c_bool, [_VP]),
        "ggml_set_name": (_VP, [_VP, ctypes.c_char_p]),
    }

    def __init__(self, ll) -> None:
        self.ll = ll
        lib = getattr(getattr(ll, "llama_cpp", ll), "_lib", None)
        if lib is None:
            raise OSError("llama-cpp-python's library handle (llama_cpp.llama_cpp._lib) was not found")
        missing = [n for n in self.LLAMA if not hasattr(lib, n)]
        if missing:
            raise OSError(f"this llama.cpp has no backend sampling ({', '.join(missing)} missing)")
        for name, (res, args) in self.LLAMA.items():
            fn = lib[name]  # a function object of our own: llama-cpp-python's stays as it is
            fn.restype, fn.argtypes = res, args
            setattr(self, name[len("llama_"):], fn)
        ggml = _load_ggml_base(ll)
        for name, (res, args) in self.GGML.items():
            fn = ggml[name]
            fn.restype, fn.argtypes = res, args
            setattr(self, name, fn)


def _load_ggml_base(ll):
    """libggml-base from llama-cpp-python's lib folder (where its graph functions live)."""
    import llama_cpp

    folder = os.path.join(os.path.dirname(os.path.abspath(llama_cpp.__file__)), "lib")
    names = ["libggml-base.so", "libggml-base.dylib", "ggml-base.dll"]
    found = [os.path.join(folder, n) for n in names if os.path.exists(os.path.join(folder, n))]
    found += sorted(glob.glob(os.path.join(folder, "*ggml-base*")))
    for path in found:
        try:
            lib = ctypes.CDLL(path)
            lib["ggml_soft_max"]
            return lib
        except (OSError, AttributeError):
            continue
    raise OSError(f"libggml-base was not found in {folder}")


_NATIVES: Natives | None = None
_NATIVES_ERROR = ""
_LOCK = threading.Lock()


def natives(ll) -> Natives | None:
    """The bound functions, or None (the reason in :func:`unavailable_reason`)."""
    global _NATIVES, _NATIVES_ERROR
    with _LOCK:
        if _NATIVES is None and not _NATIVES_ERROR:
            try:
                _NATIVES = Natives(ll)
            except (OSError, AttributeError) as exc:
                _NATIVES_ERROR = str(exc)
    return _NATIVES


def unavailable_reason() -> str:
    return _NATIVES_ERROR


# ------------------------------------------------------ the log-probability samplers (ours)
@dataclass
class _Pair:
    """What the two samplers of one chain share: the raw row's tensor of the graph being built."""

    dup: bool  # hand the chain a copy of the raw row (a penalty sampler follows and writes into it)
    raw: int | None = None
    offloaded: bool = False  # logos-logp's backend_init was reached: the whole chain runs on the backend
    built: int = 0  # graphs (or probes) that included the log-probability


class _Registry:
    """The native side of our samplers: one interface table per kind, callbacks kept alive, and
    a key (the sampler's ctx pointer) per sampler instance."""

    def __init__(self, nat: Natives) -> None:
        self.nat = nat
        self.lock = threading.Lock()
        self.states: dict[int, tuple[str, _Pair]] = {}
        self.next_key = 1
        self.names = {k: ctypes.create_string_buffer(v) for k, v in (("raw", _RAW_NAME), ("logp", _LOGP_NAME))}
        self.ifaces = {kind: self._iface(kind) for kind in ("raw", "logp")}

    def _state(self, smpl):
        key = _Sampler.from_address(smpl).ctx
        return self.states.get(key or 0, (None, None))

    def _iface(self, kind: str) -> _SamplerI:
        nat = self.nat
        name_addr = ctypes.addressof(self.names[kind])

        def name(_smpl):
            return name_addr

        def apply(_smpl, _cur_p):  # on the host (never reached while the chain runs on the backend)
            return None

        def free(smpl):
            key = _Sampler.from_address(smpl).ctx
            with self.lock:
                self.states.pop(key or 0, None)

        def clone(smpl):
            kind_, pair = self._state(smpl)
            return self.new(kind_ or kind, pair if pair is not None else _Pair(dup=False))

        def backend_init(smpl, _buft, _n_outputs_max_per_seq):
            # softmax, log, get_rows and dup: ops every ggml backend implements
            if kind == "logp":
                _, pair = self._state(smpl)
                if pair is not None:
                    pair.offloaded = True
            return True

        def backend_apply(smpl, gctx, _gf, data_p):
            try:
                _, pair = self._state(smpl)
                if pair is None:
                    return
                data = data_p.contents
                if kind == "raw":
                    pair.raw = data.logits
                    if pair.dup and data.logits:
                        data.logits = nat.ggml_dup(gctx, data.logits)
                    return
                if not data.sampled or not pair.raw:
                    return
                raw = pair.raw
                n = nat.ggml_nelements(raw)
                probs = nat.ggml_reshape_2d(gctx, nat.ggml_soft_max(gctx, raw), 1, n)
                sampled = data.sampled
                if not nat.ggml_is_contiguous(sampled):
                    return
                picked = nat.ggml_get_rows(gctx, probs, nat.ggml_reshape_1d(gctx, sampled, 1))
                logp = nat.ggml_log(gctx, picked)
                nat.ggml_set_name(logp, b"logos_logp")
                data.logits = logp
                pair.built += 1
            except Exception:  # noqa: BLE001 - an exception must not cross into llama.cpp
                return

        def backend_reset(smpl):
            _, pair = self._state(smpl)
            if pair is not None and kind == "raw":
                pair.raw = None

        def copy_state(_src, _dst):  # no state of their own beyond the graph being built
            return None

        iface = _SamplerI()
        iface.name = _NAME(name)
        iface.accept = _ACCEPT()
        iface.apply = _APPLY(apply)
        iface.reset = _RESET()
        iface.clone = _CLONE(clone)
        iface.free = _FREE(free)
        iface.backend_init = _BACKEND_INIT(backend_init)
        iface.backend_accept = _BACKEND_ACCEPT()
        iface.backend_apply = _BACKEND_APPLY(backend_apply)
        iface.backend_set_input = _BACKEND_SET_INPUT()
        iface.backend_reset = _BACKEND_RESET(backend_reset)
        iface.copy_state = _COPY_STATE(copy_state)
        return iface

    def new(self, kind: str, pair: _Pair) -> int:
        with self.lock:
            key = self.next_key
            self.next_key += 1
            self.states[key] = (kind, pair)
        smpl = self.nat.sampler_init(ctypes.addressof(self.ifaces[kind]), key)
        if not smpl:
            with self.lock:
                self.states.pop(key, None)
            raise MemoryError("llama_sampler_init failed")
        return smpl


_REGISTRY: _Registry | None = None


def _registry(nat: Natives) -> _Registry:
    global _REGISTRY
    with _LOCK:
        if _REGISTRY is None:
            _REGISTRY = _Registry(nat)
    return _REGISTRY


# --------------------------------------------------------------------------- the chain
DEFAULT_ORDER = ("penalties", "temp", "top-k", "top-p", "min-p", "dist")


@dataclass
class Chain:
    """One sampler chain in a given order, with our two log-probability samplers around it."""

    ptr: int
    names: list[str]  # the built-in samplers' names in order
    index: dict[str, int]  # position of each sampler in the chain
    pair: _Pair
    attached_seq: int | None = None

    def sampler(self, nat: Natives, name: str) -> int | None:
        i = self.index.get(name)
        return nat.sampler_chain_get(self.ptr, i) if i is not None else None


def build_chain(ll, params: SamplingParams, seed: int, n_vocab: int, window: int,
                order: tuple[str, ...] = DEFAULT_ORDER, draw: bool = True, logp: bool = True) -> Chain:
    """A chain penalty -> temperature -> top-k -> top-p -> min-p -> dist (``order`` may reorder or
    leave out samplers; the tests use it to show a wrong order is caught). ``draw=False``: no
    dist/greedy (the prompt row's candidates on the host). ``logp``: our two samplers around it."""
    nat = natives(ll)
    if nat is None:
        raise OSError(unavailable_reason())
    cp = ll.llama_sampler_chain_default_params()
    cp.no_perf = True
    chain = ctypes.cast(ll.llama_sampler_chain_init(cp), ctypes.c_void_p).value
    names: list[str] = []
    index: dict[str, int] = {}
    penalised = params.repetition_penalty != 1.0 and "penalties" in order
    pair = _Pair(dup=penalised)

    def add(name: str, smpl) -> None:
        ptr = smpl if isinstance(smpl, int) else ctypes.cast(smpl, ctypes.c_void_p).value
        index[name] = nat.sampler_chain_n(chain)
        nat.sampler_chain_add(chain, ptr)
        names.append(name)

    if logp:
        add("logos-raw", _registry(nat).new("raw", pair))
    greedy = params.temperature == 0
    for name in order:
        if name == "penalties" and penalised:
            add(name, ll.llama_sampler_init_penalties(n_vocab, max(1, int(window)),
                                                     float(params.repetition_penalty), 0.0, 0.0))
        elif name == "temp" and not greedy and params.temperature != 1.0:
            add(name, ll.llama_sampler_init_temp(float(params.temperature)))
        elif name == "top-k" and not greedy and 0 < params.top_k < n_vocab:
            add(name, ll.llama_sampler_init_top_k(int(params.top_k)))
        elif name == "top-p" and not greedy and params.top_p < 1.0:
            add(name, ll.llama_sampler_init_top_p(float(params.top_p), 1))
        elif name == "min-p" and not greedy and params.min_p > 0:
            add(name, ll.llama_sampler_init_min_p(float(params.min_p), 1))
        elif name == "dist" and draw:
            add("greedy" if greedy else "dist",
                ll.llama_sampler_init_greedy() if greedy else ll.llama_sampler_init_dist(_native_seed(seed)))
    if logp:
        add("logos-logp", _registry(nat).new("logp", pair))
    return Chain(ptr=chain, names=names, index=index, pair=pair)


def chain_names(ll, chain: Chain) -> list[str]:
    """llama.cpp's names of the chain's samplers; after attaching, "+name" runs on the backend and
    "-name" does not (our two carry no sign)."""
    nat = natives(ll)
    return [nat.sampler_name(nat.sampler_chain_get(chain.ptr, i)).decode("utf-8", "replace")
            for i in range(nat.sampler_chain_n(chain.ptr))]


def free_chain(ll, chain: Chain) -> None:
    nat = natives(ll)
    if chain.ptr:
        nat.sampler_free(chain.ptr)
        chain.ptr = 0


def attach(ll, ctx_ptr: int, seq: int, chain: Chain) -> bool:
    """``llama_set_sampler``: True when the whole chain, ours included, runs on the backend."""
    nat = natives(ll)
    ok = bool(nat.set_sampler(ctx_ptr, int(seq), chain.ptr))
    chain.attached_seq = int(seq)
    names = chain_names(ll, chain)
    builtin = [n for n in names if not n.startswith("logos-")]
    return ok and chain.pair.offloaded and all(n.startswith("+") for n in builtin)


def detach(ll, ctx_ptr: int, seq: int) -> None:
    natives(ll).set_sampler(ctx_ptr, int(seq), None)


# -------------------------------------------------------------------------- availability
@dataclass
class Support:
    """Whether this context can run the reference chain on its backend, and why not."""

    ok: bool
    names: list[str] = field(default_factory=list)
    why: str = ""

    def text(self) -> str:
        """One line in the words of ``logos doctor``."""
        if self.ok:
            return ("llama.cpp backend sampling: the reference chain runs in the compute graph ("
                    + ", ".join(n.lstrip("+") for n in self.names if not n.startswith("logos-"))
                    + "); the drawn token's log-probability from the graph's softmax of the raw logits")
        return f"llama.cpp backend sampling not used ({self.why}); the compiled sampler draws"


_SUPPORT_CACHE: dict[tuple, Support] = {}


def probe(ll, ctx_ptr: int, seq: int, params: SamplingParams, n_vocab: int, window: int) -> Support:
    """Attach the chain for ``params`` to ``seq`` and detach it again: which samplers llama.cpp
    offloads on this context's device (cached per context and parameters; nothing is decoded)."""
    nat = natives(ll)
    if nat is None:
        return Support(False, why=f"the bindings could not be made: {unavailable_reason()}")
    key = (int(ctx_ptr), params.temperature, params.top_k, params.top_p, params.min_p,
           params.repetition_penalty)
    cached = _SUPPORT_CACHE.get(key)
    if cached is not None:
        return cached
    from engine.runtime.native import recent_log

    chain = build_chain(ll, params, 0, n_vocab, window)
    try:
        ok = attach(ll, ctx_ptr, seq, chain)
        names = chain_names(ll, chain)
    finally:
        detach(ll, ctx_ptr, seq)
        free_chain(ll, chain)
    why = ""
    if not ok:
        lines = [ln.strip() for ln in recent_log(2 * len(names) + 4)
                 if "offloaded" in ln or "does not have support" in ln or "backend sampling" in ln]
        off = [n for n in names if n.startswith("-")]
        why = "; ".join(lines[-2:]) or (f"samplers not on the backend: {', '.join(off)}" if off
                                         else f"chain {names} not offloaded")
    out = Support(ok, names, why)
    _SUPPORT_CACHE[key] = out
    return out


# ---------------------------------------------------------------------------- the drawer
def _apply(ll, chain_ptr: int, ids: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, int]:
    """llama_sampler_apply of a chain (or sampler) to a copy of (ids, logits) on the host; the
    candidates it leaves (structured id/logit/p) and the selected index (-1: none)."""
    data = np.empty(len(ids), dtype=[("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
    data["id"] = ids
    data["logit"] = logits
    data["p"] = 0.0
    arr = ll.llama_token_data_array(data=data.ctypes.data_as(ll.llama_token_data_p), size=len(ids),
                                    selected=-1, sorted=False)
    natives(ll).sampler_apply(chain_ptr, ctypes.addressof(arr))
    if not arr.size:
        return data[:0], -1
    left = np.frombuffer(np.ctypeslib.as_array(arr.data, shape=(arr.size,)), dtype=data.dtype).copy()
    return left, int(arr.selected)


class BackendSamplingUnavailable(RuntimeError):
    """The context cannot run the chain on its backend (the message says which sampler and why)."""


class BackendDrawer:
    """The drawer "backend": one chain per slot attached to the slot's sequence, so every decode
    draws the next token of every live slot inside llama.cpp's graph. ``draw(rows, live)`` reads
    output ``j``'s token and log-probability (``rows`` is not read: llama.cpp does not copy the
    logits of sequences whose outputs are all sampled on the backend); the slot's chain then
    accepts the token (its penalty history). The first token of each sample comes from the
    prompt's last row on the host (see the module docstring)."""

    can_end = False

    def __init__(self, setup, order: tuple[str, ...] = DEFAULT_ORDER) -> None:
        ctx = setup.context
        self.ll = ll = ctx.ll
        self.nat = natives(ll)
        if self.nat is None:
            raise BackendSamplingUnavailable(unavailable_reason())
        self.ctx_ptr = ctypes.cast(ctx.ptr, ctypes.c_void_p).value
        self.params = params = setup.params
        self.n_vocab = int(setup.n_vocab)
        self.window = int(setup.window) or 1
        self.order = order
        self.seqs = _slot_seqs(setup)
        self.prompt_seen = np.asarray(setup.prompt_seen, dtype=np.int64)
        self.prompt_row = np.asarray(setup.prompt_row, dtype=np.float32)
        self.lse_prompt = setup.prompt_lse()
        self.seeds = [int(s) for s in setup.seeds]
        self.fresh = [True] * len(self.seeds)  # the slot's next draw is its sample's first
        self.chains: list[Chain] = []
        self._first = self._prompt_candidates()
        # a chain like the slots' that has seen the prompt alone, never attached: a restarted
        # slot's chain copies its state (one C call, whatever the prompt's length)
        self.template = build_chain(ll, params, 0, self.n_vocab, self.window, order)
        for t in self.prompt_seen.tolist():
            self.nat.sampler_accept(self.template.ptr, int(t))
        try:
            for slot, seed in enumerate(self.seeds):
                chain = build_chain(ll, params, seed, self.n_vocab, self.window, order)
                self.chains.append(chain)
                if not attach(ll, self.ctx_ptr, self.seqs[slot], chain):
                    raise BackendSamplingUnavailable(
                        f"llama.cpp did not offload the chain {chain_names(ll, chain)} for sequence {self.seqs[slot]}")
                self._history(slot)
        except BaseException:
            self.close()
            raise

    # the prompt row: every sample's first token is drawn from the same candidates
    def _prompt_candidates(self):
        chain = build_chain(self.ll, self.params, 0, self.n_vocab, self.window, self.order, draw=False, logp=False)
        try:
            for t in self.prompt_seen.tolist():
                self.nat.sampler_accept(chain.ptr, int(t))
            left, _ = _apply(self.ll, chain.ptr, np.arange(self.n_vocab, dtype=np.int32), self.prompt_row)
        finally:
            free_chain(self.ll, chain)
        if self.params.temperature == 0 or left.size == 0:
            row = self.prompt_row.copy()
            if self.params.repetition_penalty != 1.0 and self.prompt_seen.size:
                v = row[self.prompt_seen]
                p = np.float32(self.params.repetition_penalty)
                row[self.prompt_seen] = np.where(v <= 0, v * p, v / p)
            best = int(np.argmax(row))
            return np.array([best], dtype=np.int32), np.array([row[best]], dtype=np.float32)
        return left["id"].copy(), left["logit"].copy()

    def _history(self, slot: int) -> None:
        """The slot's chain has seen the prompt alone (the penalty's history; its draw is seeded
        at the sample's first token)."""
        self.nat.sampler_copy(self.template.ptr, self.chains[slot].ptr)

    def restart(self, slot: int, seed: int) -> None:
        self.seeds[slot] = int(seed)
        self.fresh[slot] = True
        self._history(slot)

    def _first_token(self, slot: int) -> int:
        ids, logits = self._first
        chain = self.chains[slot]
        if self.params.temperature == 0:
            tok = int(ids[0])
        else:
            ll, nat = self.ll, self.nat
            dist = ctypes.cast(ll.llama_sampler_init_dist(_native_seed(self.seeds[slot])), ctypes.c_void_p).value
            try:
                left, sel = _apply(ll, dist, ids, logits)
                tok = int(left["id"][sel])
                target = chain.sampler(nat, "dist")
                if target:  # the sample's stream goes on in the attached chain
                    nat.sampler_copy(dist, target)
            finally:
                self.nat.sampler_free(dist)
        self.nat.sampler_accept(chain.ptr, tok)
        self.fresh[slot] = False
        return tok

    def draw(self, rows, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(live)
        tok = np.empty(n, dtype=np.int64)
        lp = np.empty(n, dtype=np.float64)
        if rows is None:
            for j, s in enumerate(live.tolist()):
                tok[j] = self._first_token(s)
            lp[:] = self.prompt_row[tok].astype(np.float64) - self.lse_prompt
            return tok, lp
        nat, ctx = self.nat, self.ctx_ptr
        for j, s in enumerate(live.tolist()):
            t = int(nat.get_sampled_token_ith(ctx, j))
            addr = nat.get_sampled_logits_ith(ctx, j)
            count = int(nat.get_sampled_logits_count_ith(ctx, j))
            if t == LLAMA_TOKEN_NULL or not addr or count != 1:
                raise RuntimeError(f"llama.cpp's backend sampler gave no token for output {j} "
                                   f"(sequence {self.seqs[s]}; token {t}, {count} values)")
            tok[j] = t
            lp[j] = ctypes.c_float.from_address(addr).value
            nat.sampler_accept(self.chains[s].ptr, t)
        return tok, lp

    def close(self) -> None:
        for chain in self.chains:
            if chain.attached_seq is not None:
                detach(self.ll, self.ctx_ptr, chain.attached_seq)
                chain.attached_seq = None
            free_chain(self.ll, chain)
        self.chains = []
        template = getattr(self, "template", None)
        if template is not None:
            free_chain(self.ll, template)
            self.template = None


def _slot_seqs(setup) -> list[int]:
    """The KV sequence of each slot: ``setup.extra["seqs"]`` when the runtime says, else its
    layout (one sequence: 0; several: slot s decodes in sequence s + 1, sequence 0 the prompt)."""
    seqs = setup.extra.get("seqs") if getattr(setup, "extra", None) else None
    if seqs is not None:
        return [int(s) for s in seqs]
    n_seq = int(getattr(setup.context, "n_seq", 1) or 1)
    return list(range(1, setup.width + 1)) if n_seq > 1 else [0] * setup.width


def available(setup) -> bool:
    """Whether "backend" can serve this job (the runtime falls back to "logos" otherwise)."""
    if setup.grammar or setup.context is None:
        return False
    ll = setup.context.ll
    seqs = _slot_seqs(setup)
    if len(set(seqs)) != len(seqs):
        return False  # one chain per sequence: slots sharing a sequence cannot each have theirs
    sup = probe(ll, ctypes.cast(setup.context.ptr, ctypes.c_void_p).value, seqs[0], setup.params,
                setup.n_vocab, setup.window or 1)
    return sup.ok


def report(ll=None) -> str:
    """What the "backend" sampler would do here, in words (for ``logos doctor``)."""
    if ll is None:
        try:
            import llama_cpp as ll
        except Exception as exc:  # noqa: BLE001
            return f"llama.cpp backend sampling not available (llama_cpp does not import: {exc})"
    if natives(ll) is None:
        return f"llama.cpp backend sampling not available ({unavailable_reason()}); the compiled sampler draws"
    return ("llama.cpp backend sampling available (LOGOS_SAMPLER=backend): penalties, temperature, "
            "top-k, top-p and the draw in the compute graph, per sequence; the compiled sampler "
            "draws instead for grammar jobs, for a device that lacks one of the chain's operations "
            "(llama.cpp: 'sampler ... cannot be offloaded' / 'does not have support for op'), and "
            "where the bindings cannot be made")


def _register() -> None:
    from engine.runtime import drawers

    drawers.register("backend", BackendDrawer, label="llama.cpp backend sampler", available=available)


_register()

__all__ = ["BackendDrawer", "BackendSamplingUnavailable", "Chain", "Natives", "Support", "build_chain",
           "attach", "detach", "chain_names", "free_chain", "probe", "available", "report", "natives",
           "DEFAULT_ORDER"]
