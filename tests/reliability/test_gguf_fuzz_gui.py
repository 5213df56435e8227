"""The GGUF fuzzer's sample through the GUI's import (the model manager): each damaged file is
refused with a message box naming it (one line: file, offset, field), the window stays up, nothing
is added to the registry, and the good model imports afterwards."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import pytest

from tests.fixtures.required import require_module
from tests.reliability import gguf_fuzz
from tests.reliability.conftest import record
from tests.reliability.test_gguf_fuzz import SAMPLE, _sample

require_module("pytestqt", allow_module_level=True)


@pytest.mark.gui
def test_gui_import_fuzz_sample(qtbot, tiny_llama_gguf, tmp_path):
    os.environ.setdefault("LIBGL_ALWAYS_SOFTWARE", "1")
    from logos_desktop.generation import install_generation
    from logos_desktop.generation.model_manager import QtModelManager
    from logos_desktop.main_window import MainWindow

    from engine.models.registry import Registry

    seed = Path(tiny_llama_gguf).read_bytes()
    cases = _sample(gguf_fuzz.cases(seed, 1000), max(SAMPLE // 4, 20), "gui")
    w = MainWindow(start_engine=False)
    qtbot.addWidget(w)
    gen = getattr(w, "generation", None) or install_generation(w, start_engine=False)
    dlg = QtModelManager(gen, w)
    qtbot.addWidget(dlg)
    counts = collections.Counter()
    problems = []
    try:
        for i, case in enumerate(cases):
            path = gguf_fuzz.write_case(tmp_path, i, case)
            before = len(Registry().list())
            dlg.error_box = None
            dlg.import_file(str(path), copy=True)
            qtbot.waitUntil(lambda: not dlg._busy, timeout=60_000)
            box = getattr(dlg, "error_box", None)
            if box is not None:
                counts["refused (message box)"] += 1
                text = box.text()
                reason = text.split("\n\n", 1)[-1]
                if path.name not in reason or "Traceback" in text or len(reason.splitlines()) != 1:
                    problems.append(f"{case.name}: unclear message box {text[:300]!r}")
                if len(Registry().list()) != before:
                    problems.append(f"{case.name}: refused but the registry changed")
                box.close()
            else:
                counts["imported"] += 1
                if "Imported" not in dlg.message.text():
                    problems.append(f"{case.name}: neither imported nor refused: {dlg.message.text()!r}")
        dlg.error_box = None
        dlg.import_file(str(tiny_llama_gguf), copy=True)
        qtbot.waitUntil(lambda: not dlg._busy, timeout=60_000)
        assert dlg.error_box is None and "Imported" in dlg.message.text(), dlg.message.text()
    finally:
        gen.shutdown()
    tracebacks = sum("Traceback" in p or "Error:" in p for p in problems)
    figures = {"cases": len(cases), "tracebacks": tracebacks, "crashes": 0, **counts}
    print(f"\nGGUF fuzz, GUI import: {figures}")
    record("GGUF fuzz: GUI import", figures)
    assert not problems, "\n".join(problems[:30])
