"""Fixtures for the training tests: real records and tiny models (1 layer, hidden 256)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "training"


@pytest.fixture(scope="session")
def moses_head() -> list[str]:
    """The first 600 SMILES of the MOSES train split (tests/data/training, MIT)."""
    return (DATA / "moses_train_head600.smi").read_text().split()


@pytest.fixture(scope="session")
def real_rows(moses_head) -> list[str]:
    """Real grammar records: MOSES molecules, template retrosynthesis pairs and a real protein."""
    from training import data as D

    rows = [D.molecule_record(s) for s in moses_head[:300]]
    templates = D.load_templates()  # datamol 0.13 (requirements/data.txt)
    for smi in moses_head[300:340]:
        res = D.apply_retro(smi, templates)
        if res:
            rows.append(D.retro_record(smi, res[1]))
    # human ubiquitin (UniProt P0CG48, residues 1-76)
    ubq = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"
    rows.append(D.protein_record(ubq))
    rows.append(D.protein_record(ubq, {6, 43, 67}))
    return rows


@pytest.fixture(scope="session")
def tiny_tokenizer(real_rows, tmp_path_factory):
    from training import tokenizer as tk

    return tk.train_bpe(real_rows, 400, tmp_path_factory.mktemp("tok"))


def tiny_config(steps: int = 6, **kw):
    from training.config import ModelConfig, TrainConfig

    cfg = TrainConfig(steps=steps, batch_size=4, block_size=64, lr=3e-3, warmup_steps=2, eval_every=0,
                      eval_batches=1, checkpoint_every=3, keep_checkpoints=5, threads=1, seed=7,
                      model=ModelConfig(hidden_size=256, intermediate_size=256, num_hidden_layers=1,
                                        num_attention_heads=4, num_key_value_heads=4,
                                        max_position_embeddings=128))
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


class AnswerRuntime:
    """Answers each prompt from a table (the text a model would generate); the engine's job path,
    task parsing and validation run for real."""

    path = None

    def __init__(self, retro: dict, forward: dict | None = None):
        self.retro, self.forward = retro, forward or {}

    def token_id(self, text):
        return None

    def describe(self):
        return {"backend": "answers"}

    def stream(self, prompt, n, params, seed, *, on_sample=None, **kw):
        from engine.runtime.job import GenerationStats, Sample

        if prompt.endswith("<ReverseReact>"):
            product = prompt[len("<MoleculeS>"):].split("<MoleculeE>")[0]
            answers = self.retro[product]
        else:
            answers = self.forward[prompt]
        for i in range(n):
            text = answers[i % len(answers)]
            on_sample(Sample(index=i, seed=seed + i, tokens=[], text=text, logprobs=[], stop="eog", ppl=1.0,
                             ppl_output=1.0, n_tokens=1))
        return GenerationStats()
