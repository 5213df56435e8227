"""The model manager: the registry's models, import with the hash check, a half-copied file
refused, the memory estimate against the GPU offload setting, the default model; a model that
cannot be loaded leaves the loaded one in place."""

from __future__ import annotations

import pytest

from tests.fixtures.required import require_module

require_module("pytestqt", allow_module_level=True)  # fails under CI=true


@pytest.fixture
def manager(qtbot):
    from logos_desktop.generation import install_generation
    from logos_desktop.generation.model_manager import QtModelManager
    from logos_desktop.main_window import MainWindow

    w = MainWindow(start_engine=False)
    qtbot.addWidget(w)
    gen = getattr(w, "generation", None) or install_generation(w, start_engine=False)
    dlg = QtModelManager(gen, w)
    qtbot.addWidget(dlg)
    yield gen, dlg
    gen.shutdown()


@pytest.mark.slow
def test_import_estimate_default_and_refusals(qtbot, manager, tiny_llama_gguf, tmp_path):
    gen, dlg = manager
    dlg.import_file(str(tiny_llama_gguf), copy=True)
    qtbot.waitUntil(lambda: not dlg._busy, timeout=60000)
    assert "Imported" in dlg.message.text(), dlg.message.text()
    from engine.models.registry import Registry

    entries = Registry().list()
    assert len(entries) == 1 and entries[0].architecture == "llama"
    assert dlg.table.item(0, 0).text() == "★"  # the first import becomes the default
    assert entries[0].sha256[:12] == dlg.table.item(0, 8).text()

    dlg.select_path(entries[0].path)
    text = dlg.estimate.text()
    assert "Memory estimate" in text and "GiB RAM" in text
    assert "CPU" in text  # this machine: the reason it runs on the CPU is said, never silent

    # a half-copied file: refused with the reason, nothing is added to the registry
    half = tmp_path / "half.gguf"
    half.write_bytes(tiny_llama_gguf.read_bytes()[: tiny_llama_gguf.stat().st_size // 2])
    dlg.import_file(str(half), copy=True)
    qtbot.waitUntil(lambda: not dlg._busy, timeout=60000)
    assert "Refused" in dlg.message.text()
    assert "half.gguf" in dlg.message.text()
    assert len(Registry().list()) == 1

    # loading a file that is not a complete GGUF is refused before the engine is asked
    gen.bridge._loaded = (str(entries[0].path), {})
    dlg._fill(0, ["", "half"] + [""] * 7 + [str(half)], str(half), "")
    dlg.table.selectRow(0)
    assert dlg.load_selected() is False
    assert "Not loaded" in dlg.message.text() and "stays loaded" in dlg.message.text()
    assert gen.bridge._loaded[0] == str(entries[0].path)


@pytest.mark.slow
def test_convert_a_hugging_face_folder_with_progress(qtbot, manager, tiny_llama_hf, tmp_path):
    gen, dlg = manager
    seen = []
    dlg.progress.valueChanged.connect(seen.append)
    out = tmp_path / "tiny-f16.gguf"
    dlg.convert(str(tiny_llama_hf), str(out), "F16")
    qtbot.waitUntil(lambda: not dlg._busy, timeout=120000)
    assert "Imported" in dlg.message.text(), dlg.message.text()
    assert out.is_file() and max(seen) == 100
    from engine.models.registry import Registry

    (entry,) = Registry().list()
    assert entry.path == str(out) and entry.quant == "F16" and not entry.managed

    # a folder that is not a checkpoint: a clear message naming it, nothing registered
    bad = tmp_path / "not-a-checkpoint"
    bad.mkdir()
    dlg.convert(str(bad), str(tmp_path / "bad.gguf"), "F16")
    qtbot.waitUntil(lambda: not dlg._busy, timeout=60000)
    assert "not-a-checkpoint" in dlg.message.text() and "refused" in dlg.message.text().lower()
    assert len(Registry().list()) == 1 and not (tmp_path / "bad.gguf").exists()
