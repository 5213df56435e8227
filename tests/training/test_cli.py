"""``logos train`` from the command line (the entry point declared in pyproject.toml)."""

from __future__ import annotations

import pytest

from engine.cli import build_parser, main


def test_train_command_is_registered():
    parser = build_parser()
    args = parser.parse_args(["train", "--base", "scratch", "--data", "a.txt", "b.txt", "--out", "o",
                              "--lora", "--steps", "5"])
    assert args.command == "train" and args.steps == 5 and args.lora and len(args.data) == 2
    demo = parser.parse_args(["train", "demo", "--minutes", "3", "--install"])
    assert demo.train_mode == "demo" and demo.minutes == 3 and demo.install


def test_demo_recipe_options_reach_the_settings(monkeypatch, tmp_path, capsys):
    from training import demo

    seen = []

    def fake_run(out, s, **kw):
        seen.append(s)
        return {"gguf": str(out / "x.gguf")}

    monkeypatch.setattr(demo, "run", fake_run)
    assert main(["train", "demo", "--out", str(tmp_path), "--no-eval"]) == 0
    # the default is the shipped model's recipe: reaction records without their first molecule block
    assert seen[-1].train.first_block_only == ["<ReverseReact>", "<React>"] and seen[-1].train.answer_only == []
    assert seen[-1].train.model.num_hidden_layers == 4
    assert main(["train", "demo", "--out", str(tmp_path), "--answer-only", "--layers", "2"]) == 0
    assert seen[-1].train.answer_only == ["<ReverseReact>", "<React>"] and seen[-1].train.first_block_only == []
    assert seen[-1].train.model.num_hidden_layers == 2
    assert main(["train", "demo", "--out", str(tmp_path), "--whole-records"]) == 0
    assert seen[-1].train.answer_only == [] == seen[-1].train.first_block_only
    assert main(["train", "demo", "--out", str(tmp_path), "--whole-records", "--answer-only"]) != 0
    assert main(["train", "demo", "--out", str(tmp_path), "--layers", "0"]) == 2
    assert "--layers" in capsys.readouterr().err and len(seen) == 3
    # the shipped recipe's windows and pockets, and the 256-token experiment with 1HVR held out
    assert (seen[0].train.batch_size, seen[0].train.block_size, seen[0].pocket_heldout) == (32, 128, [])
    assert main(["train", "demo", "--out", str(tmp_path), "--windows", "16x256", "--hold-out-complex", "1HVR"]) == 0
    assert (seen[-1].train.batch_size, seen[-1].train.block_size, seen[-1].pocket_heldout) == (16, 256, ["1hvr"])
    for bad in ("256", "16x1024", "0x128", "axb"):
        assert main(["train", "demo", "--out", str(tmp_path), "--windows", bad]) == 2
        assert f"--windows {bad}" in capsys.readouterr().err
    assert len(seen) == 4
    # a complex the data build cannot find: one line naming the option, no traceback
    from training.data_structures import UnknownComplex

    def unknown(out, s, **kw):
        raise UnknownComplex("complexes to hold out not among the 7 readable ones: 9xyz (readable: 1hvr, ...)")

    monkeypatch.setattr(demo, "run", unknown)
    assert main(["train", "demo", "--out", str(tmp_path), "--hold-out-complex", "9xyz"]) == 2
    assert "--hold-out-complex: complexes to hold out not among the 7 readable ones: 9xyz" in capsys.readouterr().err


def test_demo_keeps_every_checkpoint_of_a_longer_schedule():
    from training import demo

    s = demo.DemoSettings()
    cfg = demo.training_config(s)
    assert cfg.seed == s.seed and cfg.max_seconds == s.minutes * 60
    assert cfg.keep_checkpoints * cfg.checkpoint_every >= cfg.steps
    s = demo.DemoSettings()
    s.train.steps = 12000  # logos train demo --steps 12000: 40 checkpoints, none pruned for the curve
    assert demo.training_config(s).keep_checkpoints == 40
    s.train.steps = 12100
    assert demo.training_config(s).keep_checkpoints == 41


def test_scratch_training_skips_bad_rows(real_rows, tmp_path, capsys):
    data = tmp_path / "rows.txt"
    data.write_text("\n".join(real_rows[:150]) + "\n<MoleculeS>C1CC<MoleculeE>\n<Nonsense>\n")
    out = tmp_path / "out"
    code = main(["train", "--base", "scratch", "--data", str(data), "--out", str(out), "--steps", "2",
                 "--batch-size", "2", "--block-size", "64", "--vocab-size", "300", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "150 kept, 2 skipped" in err
    assert f"{data}:151:" in err and f"{data}:152:" in err
    assert (out / "final" / "model.safetensors").is_file()
    assert "finished at step 2" in err


def test_errors_are_one_line_messages(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "o")]) == 2
    assert "--data" in capsys.readouterr().err
    (tmp_path / "r.txt").write_text("<MoleculeS>CCO<MoleculeE>\n<MoleculeS>CCN<MoleculeE>\n")
    assert main(["train", "--base", str(tmp_path), "--data", str(tmp_path / "r.txt"), "--out", str(tmp_path / "o")]) == 2
    assert "config.json" in capsys.readouterr().err
    assert main(["train", "--lora", "--data", str(tmp_path / "r.txt"), "--out", str(tmp_path / "o")]) == 2
    assert "--lora needs" in capsys.readouterr().err


def test_base_without_tags_needs_add_tags(real_rows, tmp_path, capsys):
    import torch
    from transformers import LlamaForCausalLM

    from tests.training.conftest import tiny_config
    from training import tokenizer as tk

    base = tmp_path / "base"
    tok = tk.train_bpe(real_rows, 400, base, tags=[])
    torch.manual_seed(0)
    LlamaForCausalLM(tiny_config().model.to_hf(tok)).save_pretrained(str(base))
    data = tmp_path / "rows.txt"
    data.write_text("\n".join(real_rows[:60]) + "\n")
    args = ["train", "--base", str(base), "--data", str(data), "--out", str(tmp_path / "o"), "--steps", "1",
            "--batch-size", "2", "--block-size", "64", "--lora", "--threads", "1"]
    assert main(args) == 2
    assert "--add-tags" in capsys.readouterr().err
    assert main(args + ["--add-tags"]) == 0
    assert "added 16 LOGOS tags" in capsys.readouterr().err
