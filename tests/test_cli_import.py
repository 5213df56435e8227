"""A sub-command whose module fails to import is never dropped silently: ``logos --help`` and that
command fail with one line naming it; the other commands, and the ``training`` entry point, work."""

from __future__ import annotations

import subprocess
import sys

import pytest

import engine.cli as cli


@pytest.fixture
def broken_command(tmp_path, monkeypatch):
    (tmp_path / "logos_broken_cmd.py").write_text("import vina_not_installed_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, "logos_broken_cmd"])
    monkeypatch.setitem(cli.MODULE_WORDS, "logos_broken_cmd", ("dockx",))


@pytest.mark.parametrize("argv", [["--help"], [], ["dockx", "--help"], ["--version"]])
def test_a_broken_sub_command_fails_help_loudly(broken_command, capsys, argv):
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 1
    assert ("logos: error: the 'dockx' command (logos_broken_cmd) cannot be loaded: ModuleNotFoundError: "
            "No module named 'vina_not_installed_here'; this installation is incomplete") in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_other_commands_still_run_and_say_what_is_broken(broken_command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["project", "--help"])
    assert done.value.code == 0
    captured = capsys.readouterr()
    assert "cannot be loaded" in captured.err and "usage: logos project" in captured.out


def test_a_module_that_raises_while_registering_is_reported(tmp_path, monkeypatch, capsys):
    (tmp_path / "logos_bad_register.py").write_text("def register(sub):\n    raise RuntimeError('bad table')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, "logos_bad_register"])
    assert cli.main(["--help"]) == 1
    assert "(logos_bad_register) cannot be loaded: RuntimeError: bad table" in capsys.readouterr().err


def test_the_shipped_commands_and_the_training_entry_point_load():
    parser = cli.build_parser()
    assert parser.broken == []
    proc = subprocess.run([sys.executable, "-m", "engine", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    for word in ("generate", "project", "models", "dock", "encode", "train"):
        assert word in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "engine", "train", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "usage: logos train" in proc.stdout, proc.stderr
