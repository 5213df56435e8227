"""The training dialog: it runs ``logos train`` as a subprocess (the GUI never imports torch), draws
the loss as it arrives, refuses an impossible configuration, and says how it ended."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)  # fails under CI=true

from logos_desktop.generation.training_dialog import QtTrainingDialog, parse_progress  # noqa: E402


def test_progress_lines_of_logos_train():
    # the lines training/cli.py prints (its _progress and its final export line)
    ev = parse_progress("step 120/1000  loss 2.3140  5321 tok/s  ETA 3.2 min")
    assert ev == {"step": 120, "total": 1000, "loss": 2.314, "tokens_per_s": 5321.0, "eta_s": pytest.approx(192.0)}
    assert parse_progress("step 200  validation loss 2.9100") == {"step": 200, "val_loss": 2.91}
    assert parse_progress("/data/run/run-q8_0.gguf") == {"type": "exported", "gguf": "/data/run/run-q8_0.gguf"}
    assert parse_progress("rows: 60 kept, 0 skipped") is None


def test_bad_configuration_is_refused_with_reasons(qtbot, tmp_path):
    dlg = QtTrainingDialog()
    qtbot.addWidget(dlg)
    dlg.lora.setChecked(True)
    assert dlg.start() is False
    text = dlg.status.text()
    assert "add training data" in text and "LoRA adapts an existing model" in text
    assert dlg.process is None


@pytest.mark.slow
def test_real_training_run_draws_the_loss_curve(qtbot, tmp_path):
    from tests.fixtures.tiny_models import real_smiles

    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"record": f"<MoleculeS>{s}<MoleculeE>"}) + "\n"
                            for s in real_smiles(40)))
    dlg = QtTrainingDialog(rows_file=str(rows), n_rows=40, out_dir=str(tmp_path / "run"))
    qtbot.addWidget(dlg)
    dlg.steps.setValue(2)
    dlg.export.setChecked(False)
    assert "--base scratch" in dlg.command_line() and "--steps 2" in dlg.command_line()
    finished = []
    dlg.trainingFinished.connect(finished.append)
    assert dlg.start()
    qtbot.waitUntil(lambda: bool(finished), timeout=600000)
    assert finished == [0], dlg.log.toPlainText()[-2000:]
    assert dlg.steps_seen and dlg.steps_seen[-1] == 2
    xs, ys = dlg.loss_curve.getData()
    assert list(xs) == dlg.steps_seen and all(y > 0 for y in ys)
    assert dlg.val_steps  # the validation loss at the end is plotted too
    assert dlg.status.text().startswith("Training finished")
    assert (tmp_path / "run" / "final").is_dir()
