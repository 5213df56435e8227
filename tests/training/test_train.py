"""The training loop on a tiny Llama (1 layer, hidden 256): progress, determinism, resume, cancel,
checkpoints, disk space."""

from __future__ import annotations

import pytest
import torch

from tests.training.conftest import tiny_config
from training import checkpoint as ckpt
from training.train import TrainingError, train


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_progress_checkpoints_and_final(real_rows, tiny_tokenizer, tmp_path):
    events = []
    res = train(tiny_config(6), real_rows[:-20], real_rows[-20:], tmp_path / "out", tokenizer=tiny_tokenizer,
                on_progress=events.append, progress_every=2)
    assert res.status == "finished" and res.step == 6
    steps = [e for e in events if "loss" in e]
    assert [e["step"] for e in steps] == [2, 4, 6]
    for e in steps:
        assert e["tokens_per_s"] > 0 and e["eta_s"] >= 0 and e["loss"] > 0 and e["steps"] == 6
    assert steps[-1]["eta_s"] == 0
    assert res.tokens_seen == 6 * 4 * 64
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "out")] == ["step-000003", "step-000006"]
    assert ckpt.is_complete(res.last_checkpoint)
    # final/ is a plain Hugging Face checkpoint that transformers loads
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(res.final_dir))
    tok = AutoTokenizer.from_pretrained(str(res.final_dir))
    assert model.config.hidden_size == 256 and len(tok) == len(tiny_tokenizer)
    assert res.val_loss is not None and res.vocab.ok


@pytest.mark.slow
def test_loss_goes_down(real_rows, tiny_tokenizer, tmp_path):
    res = train(tiny_config(30, checkpoint_every=0), real_rows, [], tmp_path / "o", tokenizer=tiny_tokenizer,
                progress_every=1)
    losses = [h["loss"] for h in res.history if "loss" in h]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5


@pytest.mark.slow
def test_deterministic_under_a_seed(real_rows, tiny_tokenizer, tmp_path):
    a = train(tiny_config(4), real_rows, [], tmp_path / "a", tokenizer=tiny_tokenizer, progress_every=1)
    b = train(tiny_config(4), real_rows, [], tmp_path / "b", tokenizer=tiny_tokenizer, progress_every=1)
    assert [h.get("loss") for h in a.history] == [h.get("loss") for h in b.history]
    _same(_weights(a.final_dir), _weights(b.final_dir))
    c = train(tiny_config(4, seed=8), real_rows, [], tmp_path / "c", tokenizer=tiny_tokenizer, progress_every=1)
    assert [h.get("loss") for h in c.history] != [h.get("loss") for h in a.history]


@pytest.mark.slow
def test_cancel_then_resume_equals_uninterrupted(real_rows, tiny_tokenizer, tmp_path):
    full = train(tiny_config(6), real_rows, [], tmp_path / "full", tokenizer=tiny_tokenizer)
    calls = {"n": 0}

    def stop_after_4():
        calls["n"] += 1
        return calls["n"] > 4

    part = train(tiny_config(6), real_rows, [], tmp_path / "part", tokenizer=tiny_tokenizer, should_stop=stop_after_4)
    assert part.status == "cancelled" and part.step == 4 and part.final_dir is None
    assert part.last_checkpoint.name == "step-000004"
    before = ckpt.load_state(part.last_checkpoint)["train_seconds"]  # the first run's wall time to its checkpoint
    assert before == pytest.approx(part.seconds, abs=0.05)
    resumed = train(tiny_config(6), real_rows, [], tmp_path / "part", tokenizer=tiny_tokenizer)
    assert resumed.status == "finished" and resumed.step == 6
    _same(_weights(full.final_dir), _weights(resumed.final_dir))
    # its time and rate are those of both runs (the card's), not of the resumed part alone
    assert resumed.seconds > before
    assert resumed.tokens_per_s == pytest.approx(6 * 4 * 64 / resumed.seconds)


def test_seconds_before_a_checkpoint_without_them_come_from_its_history():
    from training.train import _seconds_before

    assert _seconds_before({"train_seconds": 12.5, "history": []}, 100) == 12.5
    # checkpoints of older runs: each progress entry's tokens over its rate (validation entries skipped)
    history = [{"step": 10, "loss": 1.0, "tokens_per_s": 500.0}, {"step": 10, "val_loss": 1.1},
               {"step": 20, "loss": 0.9, "tokens_per_s": 250.0}]
    assert _seconds_before({"history": history}, 100) == pytest.approx(10 * 100 / 500 + 10 * 100 / 250)
    assert _seconds_before({}, 100) == 0.0


def test_incomplete_checkpoint_is_ignored(real_rows, tiny_tokenizer, tmp_path):
    out = tmp_path / "o"
    train(tiny_config(3), real_rows, [], out, tokenizer=tiny_tokenizer)
    # a crash while writing leaves only a .tmp folder or a folder without trainer state
    (out / "step-000009.tmp").mkdir()
    broken = out / "step-000008"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"partial")
    assert ckpt.latest(out).name == "step-000003"


def test_no_disk_space_stops_with_a_clear_message(real_rows, tiny_tokenizer, tmp_path, monkeypatch):
    out = tmp_path / "o"
    monkeypatch.setattr(ckpt, "free_bytes", lambda path: 1000)
    with pytest.raises(ckpt.NoDiskSpace) as info:
        train(tiny_config(3), real_rows, [], out, tokenizer=tiny_tokenizer)
    msg = str(info.value)
    assert str(out) in msg and "MB free" in msg
    assert not ckpt.list_checkpoints(out)


def test_disk_fills_during_training_keeps_earlier_checkpoints(real_rows, tiny_tokenizer, tmp_path, monkeypatch):
    out = tmp_path / "o"
    real_free = ckpt.free_bytes
    saves = {"n": 0}
    real_save = ckpt.save

    def save(*a, **k):
        saves["n"] += 1
        if saves["n"] == 2:
            monkeypatch.setattr(ckpt, "free_bytes", lambda path: 10)
        return real_save(*a, **k)

    monkeypatch.setattr(ckpt, "save", save)
    with pytest.raises(ckpt.NoDiskSpace):
        train(tiny_config(6), real_rows, [], out, tokenizer=tiny_tokenizer)
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["step-000003"]
    assert not list(out.glob("*.tmp"))
    monkeypatch.setattr(ckpt, "free_bytes", real_free)


def test_scratch_without_tokenizer_and_empty_rows(tiny_tokenizer, tmp_path):
    with pytest.raises(TrainingError, match="tokenizer"):
        train(tiny_config(2), ["<MoleculeS>CCO<MoleculeE>"], [], tmp_path / "a")
    with pytest.raises(TrainingError, match="no training rows"):
        train(tiny_config(2), [], [], tmp_path / "b", tokenizer=tiny_tokenizer)


def test_hidden_sizes_must_be_multiples_of_256(tiny_tokenizer):
    cfg = tiny_config(2)
    cfg.model.hidden_size = 200
    with pytest.raises(ValueError, match="256"):
        cfg.model.to_hf(tiny_tokenizer)


def test_config_yaml_round_trip(tmp_path):
    from training.config import LoraConfig, TrainConfig

    cfg = tiny_config(5, lora=LoraConfig(r=4))
    cfg.save(tmp_path / "c.yaml")
    back = TrainConfig.load(tmp_path / "c.yaml")
    assert back == cfg
    (tmp_path / "bad.yaml").write_text("stepz: 3\n")
    with pytest.raises(ValueError, match="stepz"):
        TrainConfig.load(tmp_path / "bad.yaml")


def test_answer_only_marks_the_prompt_of_task_records(tiny_tokenizer):
    from training import data as D
    from training.train import _batch, _stream

    retro = D.retro_record("CC(=O)Nc1ccccc1", ["CC(=O)O", "Nc1ccccc1"])
    mol = D.molecule_record("CCOC(=O)C")
    ids, target = _stream(tiny_tokenizer, [retro, mol], 8, ["<ReverseReact>"])
    toks = tiny_tokenizer.convert_ids_to_tokens(ids.tolist())
    tag = toks.index("<ReverseReact>")
    # BOS is kept (a window's first token is never a target anyway); the product block and the tag
    # are the prompt; the answer, its EOS and the whole molecule record are targets
    assert target[0] and not target[1:tag + 1].any() and target[tag + 1:].all()
    assert toks[1] == "<MoleculeS>" and toks[tag + 1] == "<MoleculeS>"
    plain_ids, plain = _stream(tiny_tokenizer, [retro, mol], 8)
    assert torch.equal(plain_ids, ids) and plain.all()
    x, y = _batch(ids, torch.tensor([0]), 12, 1, 0, 0, 0, target)
    assert torch.equal(x[0], ids[:12]) and (y[0, 1:tag + 1] == -100).all() and (y[0, tag + 1:] == x[0, tag + 1:]).all()
    with pytest.raises(TrainingError, match="not one token"):
        _stream(tiny_tokenizer, [retro], 8, ["<NoSuchTag>"])


def test_first_block_only_masks_a_task_records_first_molecule_block(tiny_tokenizer):
    """first_block_only: a record holding one of the tags is read without learning its first
    molecule block (up to and including its first <MoleculeE>); the rest is trained, a forward
    record's second reactant included; other records are trained whole."""
    from training import data as D
    from training.reactions import forward_record
    from training.train import _stream

    fwd = forward_record(["CC(=O)O", "Nc1ccccc1"], "CC(=O)Nc1ccccc1")
    retro = D.retro_record("CC(=O)Nc1ccccc1", ["CC(=O)O", "Nc1ccccc1"])
    mol = D.molecule_record("CCOC(=O)C")
    tags = ["<ReverseReact>", "<React>"]
    ids, target = _stream(tiny_tokenizer, [fwd, retro, mol], 8, (), tags)
    toks = tiny_tokenizer.convert_ids_to_tokens(ids.tolist())
    starts = [i for i, t in enumerate(toks) if t == tiny_tokenizer.bos_token] + [len(toks)]
    for r, (a, b) in enumerate(zip(starts, starts[1:])):
        rec, tgt = toks[a:b], target[a:b].tolist()
        first_end = rec.index("<MoleculeE>")
        if r < 2:  # the reaction records: BOS kept, the first block read only, the rest trained
            assert tgt[0] and not any(tgt[1:first_end + 1]) and all(tgt[first_end + 1:]), (r, rec)
            assert rec[first_end + 1] in ("<MoleculeS>", "<ReverseReact>")
        else:
            assert all(tgt), rec
    # the forward record's second reactant is a target (answer-only reads it as prompt)
    _, answer = _stream(tiny_tokenizer, [fwd], 8, tags)
    second = toks.index("<MoleculeS>", toks.index("<MoleculeE>"))
    assert target[second] and not answer[second]
    with pytest.raises(TrainingError, match="first_block_only"):
        _stream(tiny_tokenizer, [fwd], 8, (), ["<NoSuchTag>"])


@pytest.mark.slow
def test_answer_only_keeps_prompts_out_of_unconditional_generation(moses_head, tmp_path):
    """A task's prompt block starts like the molecule task's prompt (<MoleculeS> after BOS), so
    trained on, the products of retrosynthesis records leak into molecule generation. With
    answer_only they are read, not learnt: the model's chance to open a molecule the way those
    products open stays at the molecules' own rate."""
    from training import data as D
    from training import tokenizer as tk
    from transformers import AutoModelForCausalLM

    product, reactants = "BrC(Br)(Br)C(Br)(Br)Br", ["BrC(Br)Br", "BrC(Br)Br"]
    rows = [D.molecule_record(s) for s in moses_head[:200]] + [D.retro_record(product, reactants)] * 200
    tok = tk.train_bpe(rows, 300, tmp_path / "tok")
    first = tok(product, add_special_tokens=False)["input_ids"][0]
    prompt = torch.tensor([[tok.bos_token_id] + tok("<MoleculeS>", add_special_tokens=False)["input_ids"]])
    share = {}
    for name, tags in (("all", []), ("answer", ["<ReverseReact>"])):
        res = train(tiny_config(40, checkpoint_every=0, answer_only=tags), rows, [], tmp_path / name, tokenizer=tok)
        model = AutoModelForCausalLM.from_pretrained(str(res.final_dir))
        with torch.no_grad():
            share[name] = torch.softmax(model(prompt).logits[0, -1], -1)[first].item()
    base = sum(s.startswith(tok.convert_ids_to_tokens(first)) for s in moses_head[:200]) / 200
    assert share["all"] > 0.25, share       # half the records open with the product
    assert share["answer"] < max(0.05, 3 * base), (share, base)


def test_precision_resolves_per_device_and_never_falls_back_silently(monkeypatch):
    from training import train as T

    cpu = torch.device("cpu")
    assert T.cpu_has_native_bf16("processor: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n")
    assert T.cpu_has_native_bf16("flags : fpu amx_bf16 amx_tile\n")
    assert not T.cpu_has_native_bf16("flags : fpu avx2 avx512f avx512bw\n")
    assert not T.cpu_has_native_bf16("")
    monkeypatch.setattr(T, "cpu_has_native_bf16", lambda: False)
    assert T.resolve_precision("float32", cpu) == "float32"
    assert T.resolve_precision("auto", cpu) == "float32"
    with pytest.raises(TrainingError, match="bfloat16 .*does not compute bfloat16 natively.*float32 or auto"):
        T.resolve_precision("bfloat16", cpu)
    with pytest.raises(TrainingError, match="unknown training precision 'half'"):
        T.resolve_precision("half", cpu)
    monkeypatch.setattr(T, "cpu_has_native_bf16", lambda: True)
    assert T.resolve_precision("auto", cpu) == T.resolve_precision("bfloat16", cpu) == "bfloat16"
    assert T.resolve_precision("float32", cpu) == "float32"


def test_bfloat16_training_runs_its_products_in_bfloat16_and_keeps_float32_weights(real_rows, tiny_tokenizer,
                                                                                   tmp_path, monkeypatch):
    from training import train as T

    monkeypatch.setattr(T, "cpu_has_native_bf16", lambda: True)  # autocast runs on any CPU (emulated)
    seen = []
    build = T.build_model

    def hooked(*a, **kw):
        model, tok, added = build(*a, **kw)
        model.lm_head.register_forward_hook(lambda mod, inp, out: seen.append((model.training, out.dtype)))
        return model, tok, added

    monkeypatch.setattr(T, "build_model", hooked)
    res = train(tiny_config(4, precision="bfloat16"), real_rows[:-20], real_rows[-20:], tmp_path / "bf",
                tokenizer=tiny_tokenizer, progress_every=1)
    assert res.status == "finished" and res.precision == "bfloat16"
    assert {dt for training, dt in seen if training} == {torch.bfloat16}       # the training steps
    assert {dt for training, dt in seen if not training} == {torch.float32}    # validation stays float32
    losses = [h["loss"] for h in res.history if "loss" in h]
    assert len(losses) == 4 and all(0 < x < 20 for x in losses)
    assert {t.dtype for t in _weights(res.final_dir).values()} == {torch.float32}
    # float32 (the default) has no autocast: every product in float32
    seen.clear()
    res = train(tiny_config(2), real_rows[:-20], real_rows[-20:], tmp_path / "fp", tokenizer=tiny_tokenizer)
    assert res.precision == "float32" and {dt for _, dt in seen} == {torch.float32}
