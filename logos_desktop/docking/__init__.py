"""Docking in the GUI (issue 21): Dock selected on the results table, ``logos dock`` in its own
process with its progress in the Jobs dock, the Vina score and PoseBusters badge in the table, the
pose in the pocket with its interactions, the run's summary (the paper's mean −Vina beside the
reference ligand), histograms and the chemical-space map.

``install_docking(window)`` adds the Docking dock and menu to a main window that has the
generation workflow installed.
"""

from __future__ import annotations


def install_docking(window):
    from logos_desktop.docking.controller import DockingController

    generation = getattr(window, "generation", None)
    if generation is None:
        return None
    controller = DockingController(window, generation)
    window.docking = controller
    return controller
