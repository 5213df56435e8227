"""Engine benchmark: the engine against the LOGOS reference pipeline on the same weights.

Run by its own command, never in CI:  .venv/bin/python -m pytest tests/benchmarks/test_bench_engine.py -s

* Reference (what the LOGOS authors run): transformers ``generate`` with do_sample (repetition
  penalty 1.05, temperature 1.2, top-k 50, top-p 0.85), N = 16 return sequences, then a separate
  perplexity pass over every sequence. Torch on the CPU with the same thread count.
* Engine: one ``Runtime.generate`` call, N = 16, same sampling, perplexity gathered during
  generation (no second pass).
* Single stream: one sequence, Q8_0 weights, against the bandwidth roofline (measured memory
  bandwidth ÷ bytes of the weights read per token).
* Batched: N = 16 against the arithmetic roofline (measured float32 matmul FLOP/s ÷ 2 FLOP per
  parameter per token).

The model is a random Llama of about the size the issue measured (25.9 M parameters, 8 layers,
hidden 512) with the tiny LOGOS tokenizer, converted by engine.models.convert: speed does not
depend on the values of the weights. Valid samples are counted with the molecule task.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

N = 16
MAX_NEW = int(os.environ.get("LOGOS_BENCH_MAX_NEW", "200"))
THREADS = int(os.environ.get("LOGOS_BENCH_THREADS", "2"))
REPEAT = int(os.environ.get("LOGOS_BENCH_REPEAT", "3"))  # best of REPEAT runs (shared machines are noisy)
PROMPT = "<MoleculeS>"


def _build_model(folder):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from tests.fixtures.tiny_models import _train_tokenizer

    tok = _train_tokenizer("llama", "special")
    n_tok = tok.get_vocab_size(with_added_tokens=True)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>",
                                     eos_token="<|end_of_text|>", pad_token="<|eot_id|>")
    config = LlamaConfig(vocab_size=n_tok, hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                         num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=2048,
                         rms_norm_eps=1e-5, tie_word_embeddings=False,
                         bos_token_id=tok.token_to_id("<|begin_of_text|>"),
                         eos_token_id=tok.token_to_id("<|end_of_text|>"), initializer_range=0.05,
                         architectures=["LlamaForCausalLM"])
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    hf_tok.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def bench_model(tmp_path_factory):
    from engine.models.convert import convert_hf_to_gguf
    from engine.models.quantize import quantize

    root = tmp_path_factory.mktemp("bench-engine")
    hf = root / "hf"
    n_params = _build_model(hf)
    f16 = convert_hf_to_gguf(hf, root / "m-f16.gguf", outtype="f16").path
    q8 = quantize(f16, root / "m-q8_0.gguf", "Q8_0", threads=THREADS).path
    return {"hf": hf, "f16": f16, "q8": q8, "n_params": n_params}


def _bandwidth() -> float:
    """Read bandwidth in bytes/s: THREADS threads summing disjoint halves of a 512 MiB array."""
    a = np.ones(128 * 1024**2, dtype=np.float32)
    parts = np.array_split(a, THREADS)
    best = 0.0
    for _ in range(5):
        threads = [threading.Thread(target=np.add.reduce, args=(p,)) for p in parts]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        best = max(best, a.nbytes / (time.perf_counter() - t0))
    return best


def _flops() -> float:
    """float32 matmul FLOP/s with the benchmark's thread count (numpy's BLAS)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))
    n = 1024
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    a @ a
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        a @ a
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best


def _valid_count(texts: list[str]) -> int:
    from engine.tasks.registry import get_task

    task = get_task("molecule")
    prompt = task.build_prompt({}, task.check_options({}))
    return sum(task.evaluate(t, prompt).valid for t in texts)


def _reference(hf, n_params):
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    torch.set_num_threads(THREADS)
    tok = AutoTokenizer.from_pretrained(hf)
    model = LlamaForCausalLM.from_pretrained(hf, torch_dtype=torch.float32).eval()
    ids = tok(PROMPT, return_tensors="pt").input_ids
    stop = tok.convert_tokens_to_ids("<MoleculeE>")
    runs = [_reference_once(model, tok, ids, stop, seed) for seed in range(max(1, REPEAT - 1))]
    return min(runs, key=lambda r: r["seconds"] / max(1, r["tokens"]))


def _reference_once(model, tok, ids, stop, seed):
    import torch

    torch.manual_seed(seed)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(ids, do_sample=True, temperature=1.2, top_p=0.85, top_k=50,
                             repetition_penalty=1.05, max_new_tokens=MAX_NEW, num_return_sequences=N,
                             eos_token_id=[stop, tok.eos_token_id], pad_token_id=tok.pad_token_id)
        t_gen = time.perf_counter() - t0
        # separate perplexity pass (the authors score every sample by the perplexity of its text)
        mask = (out != tok.pad_token_id).long()
        logits = model(out, attention_mask=mask).logits
        lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, out[:, 1:, None])[..., 0]
        m = mask[:, 1:].float()
        ppl = torch.exp(-(lp * m).sum(1) / m.sum(1))
    total = time.perf_counter() - t0
    gen = out[:, ids.shape[1]:]
    n_tokens = int((gen != tok.pad_token_id).sum())
    texts = [tok.decode(row[row != tok.pad_token_id], skip_special_tokens=False) for row in gen]
    return {"seconds": total, "gen_seconds": t_gen, "tokens": n_tokens, "valid": _valid_count(texts),
            "ppl": ppl.tolist()}


def _engine(path, n):
    from engine.runtime.llama import Runtime
    from engine.runtime.sampling import SamplingParams

    rt = Runtime.load(path, n_ctx=max(4096, n * (MAX_NEW + 8)), n_threads=THREADS, n_seq_max=max(n + 1, 2))
    try:
        stop = rt.token_id("<MoleculeE>")
        params = SamplingParams(max_new_tokens=MAX_NEW)
        rt.generate(PROMPT, n, params, seed=99, stop_ids=[stop])  # warm-up
        best = best_fixed = float("inf")  # seconds per token
        for r in range(REPEAT):
            t0 = time.perf_counter()
            s_, st_ = rt.generate(PROMPT, n, params, seed=1 + r, stop_ids=[stop])
            dt = time.perf_counter() - t0
            if dt / max(1, st_.tokens_generated) < best:
                best, total, samples, stats = dt / max(1, st_.tokens_generated), dt, s_, st_
            # a fixed-length run (no stop) for decode speed
            t1 = time.perf_counter()
            f_, fst_ = rt.generate(PROMPT, n, params, seed=100 + r, stop_ids=[], score_prompt=False)
            dt = time.perf_counter() - t1
            if dt / max(1, fst_.tokens_generated) < best_fixed:
                best_fixed, fixed_s, fstats = dt / max(1, fst_.tokens_generated), dt, fst_
    finally:
        rt.close()
    return {"seconds": total, "tokens": stats.tokens_generated, "valid": _valid_count([s.text for s in samples]),
            "fixed_tokens": fstats.tokens_generated, "fixed_seconds": fixed_s, "stats": stats}


@pytest.mark.timeout(7200)
def test_engine_against_reference_and_rooflines(bench_model):
    n_params = bench_model["n_params"]
    ref = _reference(bench_model["hf"], n_params)
    eng = _engine(bench_model["f16"], N)
    single = _engine(bench_model["q8"], 1)
    batched_q8 = _engine(bench_model["q8"], N)
    bw = _bandwidth()
    flops = _flops()
    from engine.runtime.gguf_facts import read_facts

    q8_bytes = read_facts(bench_model["q8"]).tensor_bytes
    ref_tps = ref["tokens"] / ref["seconds"]
    eng_tps = eng["tokens"] / eng["seconds"]
    print()
    print(f"model: random Llama, {n_params / 1e6:.1f} M parameters, {THREADS} threads, N = {N}, "
          f"up to {MAX_NEW} new tokens, prompt {PROMPT!r}, best of {REPEAT} (reference {max(1, REPEAT - 1)})")
    print(f"reference (transformers generate + perplexity pass, F32): {ref['tokens']} tokens in "
          f"{ref['seconds']:.2f} s (generate {ref['gen_seconds']:.2f} s) = {ref_tps:.0f} tokens/s, "
          f"{ref['valid']} valid samples ({ref['valid'] / ref['seconds']:.2f}/s)")
    print(f"engine (one batched call, perplexity gathered, F16): {eng['tokens']} tokens in {eng['seconds']:.2f} s "
          f"= {eng_tps:.0f} tokens/s, {eng['valid']} valid samples ({eng['valid'] / eng['seconds']:.2f}/s)")
    print(f"RATIO engine / reference, tokens per second: {eng_tps / ref_tps:.1f}x")
    if ref["valid"] and eng["valid"]:
        print(f"RATIO engine / reference, valid samples per second: "
              f"{(eng['valid'] / eng['seconds']) / (ref['valid'] / ref['seconds']):.1f}x")
    else:
        print("valid samples per second: not comparable (random weights rarely close a record)")
    s_tps = single["fixed_tokens"] / single["fixed_seconds"]
    roof_bw = bw / q8_bytes
    print(f"single stream (Q8_0, {q8_bytes / 1e6:.1f} MB of weights): {s_tps:.0f} tokens/s; bandwidth roofline "
          f"{bw / 1e9:.1f} GB/s / {q8_bytes / 1e6:.1f} MB = {roof_bw:.0f} tokens/s -> {100 * s_tps / roof_bw:.0f} %")
    b_tps = batched_q8["fixed_tokens"] / batched_q8["fixed_seconds"]
    roof_ai = flops / (2 * n_params)
    print(f"batched N = {N} (Q8_0): {b_tps:.0f} tokens/s; arithmetic roofline {flops / 1e9:.0f} GFLOP/s / "
          f"{2 * n_params / 1e6:.0f} MFLOP per token = {roof_ai:.0f} tokens/s -> {100 * b_tps / roof_ai:.0f} %")
    assert eng["tokens"] > 0 and ref["tokens"] > 0
