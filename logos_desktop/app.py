"""``logos-desktop``: start the GUI.

    logos-desktop [FILES...]                  open the window, load the files; when a LOGOS Desktop
                                              window is already open, hand the files to it and exit
    logos-desktop --new-window [FILES...]     a separate window (also LOGOS_NEW_WINDOW=1)
    logos-desktop --screenshot OUT.png [...]  render the window at its default size, save it, exit
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="logos-desktop", description="LOGOS Desktop")
    p.add_argument("files", nargs="*", help="structure files or a .logos project to open")
    p.add_argument("--screenshot", metavar="OUT.png", help="save a screenshot of the window and exit")
    p.add_argument("--model", help="GGUF model to load instead of the registry's default")
    p.add_argument("--no-engine", action="store_true", help="do not start the engine process")
    p.add_argument("--new-window", action="store_true",
                   help="open a separate window instead of handing the files to the LOGOS Desktop window "
                        "already open (also LOGOS_NEW_WINDOW=1; --model implies it)")
    from engine import __version__

    p.add_argument("--version", action="version", version=f"logos-desktop {__version__}")
    return p.parse_args(argv)


def open_files(window, files: list[str]) -> tuple[list[str], list]:
    """Open ``files`` in ``window``: a ``.logos`` file as the window's results project, the rest
    into the workspace. Returns the projects opened and the workspace items added."""
    projects = [f for f in files if f.lower().endswith(".logos")]  # results projects
    opened = [p for p in projects if window.generation.open_project(p)]
    structures = [f for f in files if f not in projects]
    added = window.open_paths(structures) if structures else []
    return opened, added


def open_from_another_launch(window, files: list[str]) -> None:
    """A later ``logos-desktop FILES`` (a file opened from the file manager) handed its files over:
    open them here and bring the window to the front."""
    if window.isMinimized():
        window.showNormal()
    window.show()
    window.raise_()
    window.activateWindow()
    if not files:
        print("logos-desktop: another launch raised this window", file=sys.stderr, flush=True)
        return
    opened, added = open_files(window, files)
    from PySide6.QtWidgets import QApplication

    QApplication.alert(window)  # where the window manager refuses to raise it, the task bar flashes
    names = [Path(p).name for p in files]
    print(f"logos-desktop: opened from another launch: {', '.join(names)} "
          f"({len(opened)} project{'s' if len(opened) != 1 else ''}, "
          f"{len(added)} object{'s' if len(added) != 1 else ''}); window: {window.windowTitle()}",
          file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") \
            and sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM"):
        print("logos-desktop: no display found (DISPLAY is not set). Start it from a desktop session, "
              "or under Xvfb: xvfb-run -a logos-desktop", file=sys.stderr)
        return 2
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from engine import paths
    from logos_desktop import single_instance

    app = QApplication.instance() or single_instance.Application(sys.argv[:1])
    app.setApplicationName("LOGOS Desktop")
    app.setOrganizationName("LOGOS Desktop")
    app.setDesktopFileName("logos-desktop")  # the menu entry installer/desktop.sh writes
    icon = paths.resources_dir() / "icons" / "logos-desktop.svg"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    # one window per user: a launch with files hands them to the window already open. --screenshot
    # runs and --new-window neither join nor listen; --model (another model) only listens when free.
    instance = None
    if not (args.screenshot or args.new_window or single_instance.new_window_requested()):
        instance = single_instance.SingleInstance()
        state = instance.start(single_instance.absolute_paths(args.files), join=not args.model)
        if state == "handed":
            pid = instance.answer.partition(" ")[2]
            n = len(args.files)
            what = f"handed {n} file{'s' if n != 1 else ''} to" if n else "raised"
            print(f"logos-desktop: {what} the LOGOS Desktop window already open (process {pid}); "
                  "for a separate window use --new-window")
            return 0
        if state != "listening":
            instance = None
    from logos_desktop.main_window import MainWindow

    # a --screenshot run opens only what it is given and leaves the recent lists alone
    window = MainWindow(model=args.model, start_engine=not args.no_engine, remember=not args.screenshot)
    window.show()
    open_files(window, args.files)
    if instance is not None:
        instance.set_handler(lambda files: open_from_another_launch(window, files))
        instance.watch_file_open_events(app)
    if args.screenshot:
        return window.save_screenshot_when_ready(args.screenshot, app)
    try:
        return app.exec()
    finally:
        if instance is not None:
            instance.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
