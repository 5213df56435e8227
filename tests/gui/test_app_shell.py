"""The application shell from the foundation issue: menus, status bar with the engine's backend."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


def test_main_window_menus_and_backend_status(qtbot):
    from logos_desktop.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    for expected in ("File", "Edit", "View", "Generate", "Models", "Help"):
        assert expected in titles
    # the backend is reported by a separate engine process, never by llama.cpp in the GUI
    qtbot.waitUntil(lambda: window.backend_label.text() != "engine: starting…", timeout=60000)
    assert window.backend_label.text().startswith("engine: CPU") or "CUDA" in window.backend_label.text()


def test_logos_desktop_refuses_to_start_without_display(monkeypatch, capsys):
    from logos_desktop import app

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert app.main([]) == 2
    assert "no display" in capsys.readouterr().err
