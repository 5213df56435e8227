"""``logos-desktop``: start the GUI.

    logos-desktop [FILES...]                  open the window, load the files
    logos-desktop --screenshot OUT.png [...]  render the window at its default size, save it, exit
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="logos-desktop", description="LOGOS Desktop")
    p.add_argument("files", nargs="*", help="structure files or a .logos project to open")
    p.add_argument("--screenshot", metavar="OUT.png", help="save a screenshot of the window and exit")
    p.add_argument("--model", help="GGUF model to load instead of the registry's default")
    p.add_argument("--no-engine", action="store_true", help="do not start the engine process")
    from engine import __version__

    p.add_argument("--version", action="version", version=f"logos-desktop {__version__}")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") \
            and sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM"):
        print("logos-desktop: no display found (DISPLAY is not set). Start it from a desktop session, "
              "or under Xvfb: xvfb-run -a logos-desktop", file=sys.stderr)
        return 2
    from PySide6.QtWidgets import QApplication

    from logos_desktop.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LOGOS Desktop")
    app.setOrganizationName("LOGOS Desktop")
    # a --screenshot run opens only what it is given and leaves the recent lists alone
    window = MainWindow(model=args.model, start_engine=not args.no_engine, remember=not args.screenshot)
    window.show()
    projects = [f for f in args.files if f.lower().endswith(".logos")]  # results projects
    for project in projects:
        window.generation.open_project(project)
    structures = [f for f in args.files if f not in projects]
    if structures:
        window.open_paths(structures)
    if args.screenshot:
        return window.save_screenshot_when_ready(args.screenshot, app)
    return app.exec()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
