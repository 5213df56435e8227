"""The trainer runs unchanged under torchrun: two CPU processes, gloo backend, a few steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.slow
def test_two_process_gloo_ddp(tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(WORKER), str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 and r["status"] == "finished" and r["step"] == 3 for r in ranks)
    # tokens are counted over both processes: 3 steps x 4 sequences x 64 tokens x 2 ranks
    assert ranks[0]["tokens_seen"] == 3 * 4 * 64 * 2
    # only rank 0 writes the final checkpoint
    assert ranks[0]["final"] and ranks[1]["final"] is None
    assert (Path(ranks[0]["final"]) / "model.safetensors").is_file()
