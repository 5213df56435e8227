"""The built-in drawers (the interface: :mod:`engine.runtime.drawers`): how a job picks each live
sequence's next token from the step's logits.

Each is built from a :class:`engine.runtime.drawers.DrawerSetup` and registered by name:
"logos" and "numpy" (:class:`LogosDrawer`), "native" (:class:`NativeDrawer`), "grammar"
(:class:`GrammarDrawer`). Every drawer returns, for each live slot, the token and its
log-probability under the raw logits (for perplexity without a second pass), and remembers what
each slot has seen (the repetition penalty counts the prompt and the output).

- :class:`LogosDrawer` (the default): the reference order (penalty, temperature, top-k, top-p,
  min-p, one draw) for the whole step in one C call (``engine.runtime._stepper``), or, where the
  extension was not built, the numpy implementation (:func:`engine.runtime.sampling.sample_batch`).
  Both draw from the same PCG64 stream per sample, so they give the same samples.
- :class:`NativeDrawer` (``RuntimeOptions(sampler="native")``, ``LOGOS_SAMPLER=native``): llama.cpp's own sampler chain in the same
  order, one C call per sequence and step; the penalty is applied to the logits in numpy. Kept to
  compare against llama.cpp; other draws than the default.
- :class:`GrammarDrawer` (with a GBNF grammar): llama.cpp's grammar sampler masks the logits,
  numpy samples; a row whose grammar admits nothing more returns token -1.
"""

from __future__ import annotations

import numpy as np

from engine.runtime import _internals as native
from engine.runtime import drawers
from engine.runtime.drawers import DrawerSetup
from engine.runtime.sampling import sample_batch

try:  # built from engine/runtime/_stepper.c by `pip install` (setup.py); optional
    from engine.runtime import _stepper
    STEPPER_ERROR = ""
except ImportError as exc:  # no compiler at install time: the numpy implementation, same draws
    _stepper = None
    STEPPER_ERROR = str(exc)


def stepper_available() -> bool:
    return _stepper is not None


def sampler_report() -> str:
    """Which implementation samples, in words (for the backend report and ``logos doctor``)."""
    if _stepper is not None:
        return f"compiled (engine.runtime._stepper, {_stepper.simd()} vector code)"
    return f"numpy (the compiled sampler is not built: {STEPPER_ERROR})"


def draw_threads(n_threads: int, system_info: str) -> int:
    """The threads the steps in C spread a step's draws over: llama.cpp's, where the compiled
    sampler and llama.cpp's CPU backend use OpenMP (``OPENMP = 1`` in its system info: one team
    of threads per calling thread, the same for both, waiting between two decodes); 1 otherwise
    (a second team would take the cores from llama.cpp's)."""
    shared = _stepper is not None and _stepper.openmp() and "OPENMP = 1" in system_info.upper()
    return max(1, int(n_threads)) if shared else 1


def pcg64_states(seeds: list[int]) -> np.ndarray:
    """The PCG64 state of ``numpy.random.default_rng(seed)`` for each seed, as the C sampler keeps
    it: uint64 [state_hi, state_lo, inc_hi, inc_lo] per row. Made in C where the extension is built
    (numpy's SeedSequence and PCG64 seeding, the same states: tested), else by numpy (about 20 µs a
    seed: a job's 1,024 samples cost 20 ms that way)."""
    out = np.zeros((len(seeds), 4), dtype=np.uint64)
    if _stepper is not None and all(0 <= int(sd) < 2**64 for sd in seeds):
        _stepper.seed_states(np.array([int(sd) for sd in seeds], dtype=np.uint64), out)
        return out
    mask = (1 << 64) - 1
    for i, sd in enumerate(seeds):
        st = np.random.PCG64(sd).state["state"]  # default_rng(sd)'s generator, without building a Generator
        s, inc = int(st["state"]), int(st["inc"])
        out[i] = (s >> 64, s & mask, inc >> 64, inc & mask)
    return out


def penalize(rows: np.ndarray, r: np.ndarray, c: np.ndarray, penalty: float):
    """The repetition penalty applied in place to the logits ``rows[r, c]`` (row r has seen
    token c; each pair once), as llama.cpp's penalties sampler and transformers do it (positive
    logits divided, the others multiplied, in float32). Costs what the seen tokens cost,
    whatever the vocabulary; the native sampler would look every candidate up in its table.
    Returns what :func:`restore` needs to put the raw logits back."""
    vals = rows[r, c]
    p = np.float32(penalty)
    rows[r, c] = np.where(vals <= 0, vals * p, vals / p)
    return r, c, vals


def restore(rows: np.ndarray, saved) -> None:
    r, c, vals = saved
    rows[r, c] = vals


class LogosDrawer:
    """The default drawer. ``compiled=False`` forces the numpy implementation (same draws)."""

    can_end = False  # always draws a token (GrammarDrawer may not)

    def __init__(self, setup: DrawerSetup, compiled: bool | None = None) -> None:
        self.params = params = setup.params
        self.host = setup.host
        self.n_vocab = setup.n_vocab
        self.prompt_row = np.ascontiguousarray(setup.prompt_row, dtype=np.float32)
        self._prompt_lse = setup.prompt_lse  # the prompt row's log-sum-exp, made when first drawn from in Python
        self.compiled = (_stepper is not None) if compiled is None else (compiled and _stepper is not None)
        self.prompt_seen = setup.prompt_seen
        self._prompt_seen64 = np.ascontiguousarray(setup.prompt_seen, dtype=np.int64)  # for run_steps
        seeds = list(setup.seeds)
        self.mask = None
        if params.repetition_penalty != 1.0:
            self.mask = np.zeros((len(seeds), self.n_vocab), dtype=np.uint8)
            self.mask[:, self.prompt_seen] = 1
        if self.compiled:
            self.states = pcg64_states(seeds)
        else:
            self.rngs = [np.random.default_rng(sd) for sd in seeds]

    def restart(self, slot: int, seed: int) -> None:
        """Slot ``slot`` starts a new sample with ``seed``: it has seen the prompt alone."""
        if self.mask is not None:
            self.mask[slot] = 0
            self.mask[slot, self.prompt_seen] = 1
        if self.compiled:
            self.states[slot] = pcg64_states([seed])[0]
        else:
            self.rngs[slot] = np.random.default_rng(seed)

    def draw(self, rows, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(live)
        first = rows is None
        if self.compiled:
            p = self.params
            tok = np.empty(n, dtype=np.int64)
            lp = np.empty(n, dtype=np.float64)
            src, stride = (self.prompt_row, 0) if first else (rows, self.n_vocab)
            seen = self.mask if self.mask is not None else b""
            slots = np.ascontiguousarray(live, dtype=np.int64)

            def part(lo, hi):
                _stepper.sample_rows(src, self.n_vocab, stride, lo, hi, seen, slots, p.repetition_penalty,
                                     p.temperature, p.top_k, p.top_p, p.min_p, self.states, tok, lp)

            self.host.chunked(n, part)
        else:
            if first:
                rows = np.broadcast_to(self.prompt_row, (n, self.n_vocab))
            empty = np.zeros(0, dtype=np.int64)
            seen = [np.flatnonzero(self.mask[s]) if self.mask is not None else empty for s in live]
            tok = sample_batch(rows, seen, self.params, [self.rngs[s] for s in live])
            lse = np.full(n, self._prompt_lse()) if first else self.host.lse(rows)
            lp = rows[np.arange(n), tok] - lse
        if self.mask is not None:
            self.mask[live, tok] = 1
        return tok, lp

    def can_run_steps(self, n: int) -> bool:
        """Whether :meth:`run_steps` can take a step of ``n`` rows (compiled, and a step the host
        would not spread over threads)."""
        return self.compiled and not self.host.spreads(n)

    def run_steps(self, rows: np.ndarray | None, live: np.ndarray, run) -> dict:
        """:meth:`draw` for ``rows`` and the following steps in one C call
        (``engine.runtime._stepper.run_steps``: draw, record, close, start the prepared samples in
        the freed slots (:meth:`restart` in C), llama_decode). ``run``: the loop's
        :class:`engine.runtime.slots.StepRun`. Returns the going slots and their last tokens (not
        yet decoded), the closed samples (index, tokens, log-probabilities, reason code, in the
        order they closed), the slots started (in order: samples ``run.first_index`` on) and those
        left free, the steps decoded, their llama_decode seconds, llama_decode's code and the tokens
        drawn. ``rows`` None: no rows (``live`` empty); the slots ``run.start`` take the first
        prepared samples before the first step's draws (a job's first samples)."""
        n, W = len(live), len(self.states)
        p = self.params
        K = len(run.next_seeds)
        R = n + K + 2 * W
        slots = np.zeros(W, dtype=np.int64)
        slots[:n] = live
        tok = np.empty(W, dtype=np.int64)
        lp = np.empty(W, dtype=np.float64)
        done = np.empty((R, 3), dtype=np.int64)
        done_toks = np.empty((R, run.cap), dtype=np.int64)
        done_lps = np.empty((R, run.cap), dtype=np.float64)
        free_left = np.empty(W, dtype=np.int64)
        started = np.empty(K, dtype=np.int64)
        seen = self.mask if self.mask is not None else b""
        rows = self.prompt_row if rows is None else np.ascontiguousarray(rows)  # (no row read when None)
        steps, dec_s, rc, n_live, n_done, n_tokens, n_started, n_left = _stepper.run_steps(
            run.handles, rows, self.n_vocab, n, seen, slots, p.repetition_penalty,
            p.temperature, p.top_k, p.top_p, p.min_p, self.states, tok, lp, run.length, run.toks, run.lps,
            run.cap, run.npos, run.seqs, run.ends, run.max_new, run.index, self.prompt_row,
            self._prompt_seen64, pcg64_states(run.next_seeds) if K else b"",
            run.first_index, run.may_drop, done, done_toks, done_lps, free_left, started, run.max_steps,
            run.max_seconds, self.host.draw_threads, run.start)
        closed = [(int(i), done_toks[r, :k].tolist(), done_lps[r, :k].tolist(), int(why))
                  for r, (i, k, why) in enumerate(done[:n_done].tolist())]
        return {"going": slots[:n_live], "tok": tok[:n_live], "closed": closed, "started": started[:n_started],
                "left": free_left[:n_left], "steps": steps, "decode_s": dec_s, "rc": rc, "tokens": n_tokens}

    def close(self) -> None:
        pass


class _SeenPairs:
    """The tokens each slot's sample has seen (prompt and output) as flat (slot, token) pairs:
    the repetition penalty of a whole step is then a few numpy calls, whatever the number of
    sequences or the vocabulary."""

    def __init__(self, width: int, prompt_seen: np.ndarray) -> None:
        self._slot = np.repeat(np.arange(width, dtype=np.int64), prompt_seen.size)
        self._tok = np.tile(prompt_seen.astype(np.int64), width)
        self._new_slot: list[int] = []
        self._new_tok: list[int] = []
        self._row_of = np.full(width, -1, dtype=np.int64)

    def reset(self, slot: int, prompt_seen: np.ndarray) -> None:
        """Sequence ``slot`` starts again: it has seen the prompt alone."""
        self._flush()
        keep = self._slot != slot
        self._slot = np.concatenate([self._slot[keep], np.full(prompt_seen.size, slot, dtype=np.int64)])
        self._tok = np.concatenate([self._tok[keep], prompt_seen.astype(np.int64)])

    def _flush(self) -> None:
        if self._new_slot:
            self._slot = np.concatenate([self._slot, np.array(self._new_slot, dtype=np.int64)])
            self._tok = np.concatenate([self._tok, np.array(self._new_tok, dtype=np.int64)])
            self._new_slot.clear()
            self._new_tok.clear()

    def add(self, slot: int, tok: int) -> None:
        """Sequence ``slot`` has seen ``tok`` for the first time."""
        self._new_slot.append(slot)
        self._new_tok.append(tok)

    def pairs(self, live_slots) -> tuple[np.ndarray, np.ndarray]:
        """(rows, tokens) for the step whose logits row j belongs to the sequence in ``live_slots[j]``."""
        self._flush()
        self._row_of.fill(-1)
        self._row_of[live_slots] = np.arange(len(live_slots))
        r = self._row_of[self._slot]
        keep = r >= 0
        return r[keep], self._tok[keep]


class NativeDrawer:
    """llama.cpp's sampler chain per sequence (``sampler="native"``), the penalty in numpy.

    At the job's first draw the prompt's last row is still the context's last output, so llama.cpp
    samples it in place; a sample started later in a freed slot gives its chain a copy."""

    can_end = False

    def __init__(self, setup: DrawerSetup) -> None:
        self.ctx = setup.context
        self.ll = setup.context.ll
        self.host = setup.host
        self.params = params = setup.params
        self.n_vocab = setup.n_vocab
        self.window = setup.window
        self.chains = [self._chain(sd) for sd in setup.seeds]
        self.prompt_raw = setup.prompt_row
        self.prompt_seen = prompt_seen = setup.prompt_seen
        self.lse_prompt = setup.prompt_lse()
        self.at_context_end = True
        self.penalize = params.repetition_penalty != 1.0
        self.prompt_row = setup.prompt_row
        if self.penalize:  # every sample has seen the prompt alone at its first token
            self.prompt_row = setup.prompt_row.copy()
            penalize(self.prompt_row[None, :], np.zeros_like(prompt_seen), prompt_seen, params.repetition_penalty)
            self.seen = _SeenPairs(setup.width, prompt_seen)
            self.seen_sets = [set(prompt_seen.tolist()) for _ in setup.seeds]

    def _chain(self, seed: int):
        return native.reference_chain(self.ll, self.params, seed, self.n_vocab, self.window, penalties=False)

    def restart(self, slot: int, seed: int) -> None:
        native.free_sampler(self.ll, self.chains[slot])
        self.chains[slot] = self._chain(seed)
        if self.penalize:
            self.seen.reset(slot, self.prompt_seen)
            self.seen_sets[slot] = set(self.prompt_seen.tolist())

    def _sample_in_context(self, chains: list, idx: list[int]) -> np.ndarray:
        def part(lo, hi):
            return self.ctx.sample(chains, idx, lo, hi)

        return np.array([t for chunk in self.host.chunked(len(chains), part) for t in chunk], dtype=np.int64)

    def draw(self, rows, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        first = rows is None
        chains = [self.chains[s] for s in live]
        n = len(live)
        if first and self.at_context_end:
            if self.penalize:
                self.ctx.logits_last()[:] = self.prompt_row
            tok = self._sample_in_context(chains, [-1] * n)
        elif first:
            tok = np.array([native.chain_pick(self.ll, c, self.prompt_row, self.n_vocab) for c in chains],
                           dtype=np.int64)
        else:  # llama.cpp reads the step's logits row j itself
            saved = (penalize(rows, *self.seen.pairs(live), self.params.repetition_penalty)
                     if self.penalize else None)
            tok = self._sample_in_context(chains, list(range(n)))
            if saved is not None:
                restore(rows, saved)  # the raw logits, for the log-probabilities
        if first:
            lp = self.prompt_raw[tok].astype(np.float64) - self.lse_prompt
        else:
            lp = rows[np.arange(n), tok] - self.host.lse(rows)
        self.at_context_end = False  # the next decode replaces the context's outputs
        if self.penalize:
            for s, t in zip(live.tolist(), tok.tolist()):
                if t not in self.seen_sets[s]:
                    self.seen_sets[s].add(t)
                    self.seen.add(s, t)
        return tok, lp

    def close(self) -> None:
        for c in self.chains:
            native.free_sampler(self.ll, c)
        self.chains = []


class GrammarDrawer:
    """Constrained decoding: a llama.cpp grammar sampler per sequence masks its row, numpy draws."""

    can_end = True  # token -1: the grammar admits nothing more

    def __init__(self, setup: DrawerSetup) -> None:
        self.model = setup.model
        self.ll = setup.model.ll
        self.host = setup.host
        self.n_vocab = setup.n_vocab
        self.params = setup.params
        self.prompt_row = setup.prompt_row
        self.prompt_seen = setup.prompt_seen
        self.lse_prompt = setup.prompt_lse()
        self.grammar = setup.grammar
        self.rngs = [np.random.default_rng(sd) for sd in setup.seeds]
        self.seen = [self.prompt_seen for _ in setup.seeds]
        self.grammars = []
        for _ in setup.seeds:
            self.grammars.append(self._new_grammar())

    def _new_grammar(self):
        try:
            return native.grammar_sampler(self.model, self.grammar)
        except ValueError:
            self.close()
            raise

    def restart(self, slot: int, seed: int) -> None:
        new = self._new_grammar()  # before the old one is freed: on failure close() frees the list
        native.free_sampler(self.ll, self.grammars[slot])
        self.grammars[slot] = new
        self.rngs[slot] = np.random.default_rng(seed)
        self.seen[slot] = self.prompt_seen

    def draw(self, rows, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(live)
        first = rows is None
        if first:
            rows = np.broadcast_to(self.prompt_row, (n, self.prompt_row.shape[0]))
        masks = [native.grammar_mask(self.ll, self.grammars[s], rows[j], self.n_vocab) for j, s in enumerate(live)]
        picks = [j for j in range(n) if masks[j].any()]  # the others: the grammar admits nothing more
        tok = np.full(n, -1, dtype=np.int64)
        lp = np.zeros(n, dtype=np.float64)
        if picks:
            got = sample_batch(rows[picks], [self.seen[live[j]] for j in picks], self.params,
                               [self.rngs[live[j]] for j in picks], [masks[j] for j in picks])
            tok[picks] = got
            lse = np.full(len(picks), self.lse_prompt) if first else self.host.lse(rows[picks])
            lp[picks] = rows[picks, got] - lse
        for j in picks:
            s, t = int(live[j]), int(tok[j])
            native.accept(self.ll, self.grammars[s], t)
            if not np.isin(t, self.seen[s]):
                self.seen[s] = np.append(self.seen[s], t)
        return tok, lp

    def close(self) -> None:
        for g in self.grammars:
            native.free_sampler(self.ll, g)
        self.grammars = []


def _logos_label() -> str:
    return "compiled" if stepper_available() else "numpy"


drawers.register("logos", LogosDrawer, label=_logos_label, shares=True)
drawers.register("numpy", lambda setup: LogosDrawer(setup, compiled=False), label="numpy", shares=True)
drawers.register("native", NativeDrawer, label="llama.cpp chain")
drawers.register("grammar", GrammarDrawer, label="numpy with llama.cpp's grammar", shares=True)
