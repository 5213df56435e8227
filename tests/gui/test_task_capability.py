"""The Generate panel shows the loaded model's card line next to the task, as the real engine process
sent it with model_loaded: the demonstration model is trained for molecules (its measured figure), it
has not learnt binding sites nor been trained for antibodies; a GGUF without a card reads 'unknown: no card'."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)
require_module("llama_cpp", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture
def window(engine_window):  # tests/fixtures/gui_engine.py
    return engine_window


def test_the_card_line_follows_task_and_model(qtbot, window, tiny_llama_gguf):
    from engine import paths
    from engine.models.card import IMPORT_HINT, read_card

    demo = paths.bundled_models()[0]
    card = read_card(demo)
    gen = window.generation
    panel = gen.generate
    qtbot.waitUntil(lambda: gen.bridge.model is not None, timeout=120000)
    assert gen.bridge.model["card"]["origin"] == "gguf"  # sent by the engine process

    panel.set_task("binding-site")
    text = panel.capability_text()
    assert text.startswith(f"⚠ {demo.name}: seen in training but not learnt")
    assert "expect invalid output" in text and text.endswith(IMPORT_HINT)
    assert panel.capability_entry()["usable"] is False

    panel.set_task("antibody")
    assert panel.capability_text() == f"⚠ {demo.name}: not trained for this task: expect invalid output; {IMPORT_HINT}"
    # the way in that the hint names is real: Models › Manage models… opens the manager with Import GGUF…
    manage = next(a for a in window.menus["Models"].actions() if a.text().replace("&", "") == "Manage models…")
    assert "Models › Manage models… › Import GGUF…" in IMPORT_HINT
    manage.trigger()
    qtbot.waitUntil(lambda: getattr(gen, "model_manager", None) is not None and gen.model_manager.isVisible(),
                    timeout=10000)
    assert gen.model_manager.import_button.text() == "Import GGUF…"
    gen.model_manager.close()

    panel.task.setCurrentIndex(panel.task.findData("molecule"))  # as a user picks it
    fig = card.task("molecule").figures[0]
    assert panel.capability_text() == f"✓ {demo.name}: trained: {fig.text()}"
    assert f"MOSES validity {fig.value:.1f} % (app sampling, " in panel.capability_text()
    tip = panel.capability.toolTip()
    assert f"training data: {card.task('molecule').data}" in tip and "MOSES train molecules" in tip
    assert "python -m training.card demo" in tip
    panel.grab().save(str(Path(os.environ.get("LOGOS_SCREENSHOT_DIR", "/tmp")) / "generate-card-molecule.png"))

    # another model, without a card: the line says so, never "trained"
    gen.bridge.load_model(str(tiny_llama_gguf), n_gpu_layers=0)
    qtbot.waitUntil(lambda: gen.bridge.model is not None and gen.bridge.model.get("path") == str(tiny_llama_gguf),
                    timeout=120000)
    assert panel.capability_text().startswith(f"? {tiny_llama_gguf.name}: unknown: no card")
    panel.set_task("retro")
    assert "unknown: no card" in panel.capability_text() and "trained" not in panel.capability_text()


def test_model_manager_shows_each_models_card(qtbot, tiny_llama_gguf):
    from engine import paths
    from engine.models.card import ModelCard, TaskCard
    from engine.models.registry import Registry
    from logos_desktop.generation import install_generation
    from logos_desktop.generation.model_manager import QtModelManager
    from logos_desktop.main_window import MainWindow

    w = MainWindow(start_engine=False)
    qtbot.addWidget(w)
    gen = getattr(w, "generation", None) or install_generation(w, start_engine=False)
    entry = Registry().import_file(tiny_llama_gguf, copy=False, name="plain")
    dlg = QtModelManager(gen, w)
    qtbot.addWidget(dlg)
    try:
        dlg.select_path(str(paths.bundled_models()[0]))
        assert "Tasks (card in the file)" in dlg.card.text()
        assert "✓ molecule" in dlg.card.text() and "✓ retro" in dlg.card.text() and "✗ antibody" in dlg.card.text()
        assert "✓ forward" in dlg.card.text() and "⚠ binding-site" in dlg.card.text()
        assert "binding-site: seen in training but not learnt" in dlg.card.toolTip()
        dlg.select_path(entry.path)
        assert "Tasks (no card)" in dlg.card.text() and "? molecule" in dlg.card.text()
        assert "trained" not in dlg.card.toolTip().replace("not_trained", "")
        Registry().set_card("plain", ModelCard({"antibody": TaskCard("trained", "OAS pairs")}))
        dlg.table.clearSelection()
        dlg.select_path(entry.path)
        assert "Tasks (card kept by the registry)" in dlg.card.text() and "✓ antibody" in dlg.card.text()
    finally:
        gen.shutdown()
