"""Run by test_ddp.py under ``torchrun --nproc_per_node 2``: the unchanged trainer, DDP on gloo."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.training.conftest import tiny_config  # noqa: E402
from training import data as D  # noqa: E402
from training import tokenizer as tk  # noqa: E402
from training.train import train  # noqa: E402


def main(out: Path) -> None:
    smiles = (ROOT / "tests" / "data" / "training" / "moses_train_head600.smi").read_text().split()[:200]
    rows = [D.molecule_record(s) for s in smiles]
    tok = tk.train_bpe(rows, 300)  # same rows, same merges on every rank
    res = train(tiny_config(3, checkpoint_every=0), rows, rows[:20], out, tokenizer=tok)
    rank = int(os.environ["RANK"])
    (out / f"rank{rank}.json").write_text(json.dumps({
        "rank": rank, "world": int(os.environ["WORLD_SIZE"]), "status": res.status, "step": res.step,
        "tokens_seen": res.tokens_seen, "final": str(res.final_dir) if res.final_dir else None}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
