"""Where training runs: CPU by default, CUDA only when asked for and present, never a silent fallback."""

from __future__ import annotations

import pytest
import torch

from training.config import TrainConfig
from training.train import TrainingError, resolve_device


def test_default_is_cpu_and_auto_follows_torch():
    assert TrainConfig().device == "cpu"
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_an_error_not_a_fallback():
    with pytest.raises(TrainingError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_unknown_device_is_named():
    with pytest.raises(TrainingError, match="'tpu'"):
        resolve_device("tpu")


def test_device_round_trips_through_the_saved_config(tmp_path):
    cfg = TrainConfig(device="auto")
    cfg.save(tmp_path / "train.yaml")
    assert TrainConfig.load(tmp_path / "train.yaml").device == "auto"
