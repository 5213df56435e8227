"""The generation workflow in the GUI: Generate panel, job queue, results table, provenance,
model manager and training dialogs, wired to the engine process through ``engine_bridge``.

``install_generation(window)`` adds the docks, the Generate and Models menu actions and the
status-bar labels to the main window.
"""

from __future__ import annotations


def install_generation(window, **kwargs):
    from logos_desktop.generation.controller import GenerationController

    controller = GenerationController(window, **kwargs)
    window.generation = controller
    return controller
