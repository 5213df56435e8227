"""installer/desktop.sh: the menu entry, icon and file associations, written and removed.

Each test runs the real script with HOME, XDG_DATA_HOME and XDG_CONFIG_HOME in a temporary
folder, and checks the result with the desktop's own tools: desktop-file-validate, the MIME
database update-mime-database builds (read back through Qt's QMimeDatabase, as a file manager
would), xdg-mime's default application, update-desktop-database's cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.fixtures.required import require_tool

if not sys.platform.startswith("linux"):
    pytest.skip("the freedesktop.org desktop integration is for Linux", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "installer" / "desktop.sh"
DESKTOP_ID = "logos-desktop.desktop"
MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"
# the extensions the issue names, and the type each must be (chemical-mime-data's names)
EXPECTED = {
    "logos": "application/x-logos-project",
    "pdb": "chemical/x-pdb",
    "cif": "chemical/x-cif",
    "mmcif": "chemical/x-mmcif",
    "sdf": "chemical/x-mdl-sdfile",
    "mol2": "chemical/x-mol2",
    "xyz": "chemical/x-xyz",
    "smi": "chemical/x-daylight-smiles",
}


def _env(home: Path, data: Path | None = None, config: Path | None = None, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "KDE_", "GNOME_")) and k not in ("DESKTOP_SESSION", "LOGOS_NO_DESKTOP_INTEGRATION")}
    env["HOME"] = str(home)
    if data is not None:
        env["XDG_DATA_HOME"] = str(data)
    if config is not None:
        env["XDG_CONFIG_HOME"] = str(config)
    env.update(extra)
    return env


def run(action: str, env: dict, script: Path = SCRIPT) -> subprocess.CompletedProcess:
    out = subprocess.run(["bash", str(script), action], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``folder``."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def read_group(text: str, group: str) -> dict[str, str]:
    """One [group] of a desktop entry / mimeapps.list, as key -> value."""
    out, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            current = line.strip("[]")
        elif current == group and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def exec_argv(value: str) -> list[str]:
    """The argument vector of an Exec value (desktop entry spec: string escapes, then quoting)."""
    text, i = "", 0
    while i < len(value):  # string-level escapes
        if value[i] == "\\" and i + 1 < len(value):
            text += {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(value[i + 1], "\\" + value[i + 1])
            i += 2
        else:
            text += value[i]
            i += 1
    argv, cur, quoted, started, i = [], "", False, False, 0
    while i < len(text):  # quoting: inside double quotes a backslash escapes the next character
        c = text[i]
        if quoted and c == "\\" and i + 1 < len(text):
            cur += text[i + 1]
            i += 2
            continue
        if c == '"':
            quoted, started = not quoted, True
        elif c == " " and not quoted:
            if cur or started:
                argv.append(cur)
            cur, started = "", False
        else:
            cur += c
        i += 1
    if cur or started:
        argv.append(cur)
    return [a.replace("%%", "%") for a in argv]


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


def test_install_writes_a_valid_entry_and_the_file_types(tmp_path, home, test_data):
    validate = require_tool("desktop-file-validate")
    require_tool("update-mime-database")
    require_tool("update-desktop-database")
    xdg_mime = require_tool("xdg-mime")
    data, config = tmp_path / "data", tmp_path / "config"   # XDG_DATA_HOME and XDG_CONFIG_HOME are honoured
    env = _env(home, data, config)
    out = run("install", env)
    assert "installed the menu entry" in out.stderr
    assert tree(home) == {}  # nothing under ~/.local or ~/.config when the XDG folders are set

    entry_path = data / "applications" / DESKTOP_ID
    check = subprocess.run([validate, str(entry_path)], capture_output=True, text=True)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check.stdout + check.stderr
    entry = read_group(entry_path.read_text(), "Desktop Entry")
    assert entry["Exec"] == f'{ROOT / ".venv" / "bin" / "logos-desktop"} %F'  # bare: xdg-mime reads the first word
    assert entry["TryExec"] == str(ROOT / ".venv" / "bin" / "logos-desktop")
    assert entry["Icon"] == "logos-desktop" and entry["Type"] == "Application"
    assert (data / "icons/hicolor/scalable/apps/logos-desktop.svg").read_bytes() \
        == (ROOT / "resources/icons/logos-desktop.svg").read_bytes()
    assert ET.parse(data / "icons/hicolor/scalable/mimetypes/application-x-logos-project.svg").getroot().tag \
        == "{http://www.w3.org/2000/svg}svg"

    # the MIME package: every extension declared, under the type the menu entry lists
    root = ET.parse(data / "mime" / "packages" / "logos-desktop.xml").getroot()
    globs = {g.get("pattern"): t.get("type") for t in root.iter(f"{MIME_NS}mime-type") for g in t.iter(f"{MIME_NS}glob")}
    for ext, mime in EXPECTED.items():
        assert globs.get(f"*.{ext}") == mime, ext
    listed = [t for t in entry["MimeType"].split(";") if t]
    assert sorted(listed) == sorted(set(EXPECTED.values()))

    # update-mime-database built the user's database: real files are recognised as a file manager sees them
    assert (data / "mime" / "mime.cache").is_file()
    samples = tmp_path / "samples"
    samples.mkdir()
    shutil.copy(test_data / "structures" / "1hvr.pdb", samples / "1hvr.pdb")
    shutil.copy(test_data / "structures" / "1YJP.cif", samples / "1yjp.cif")
    shutil.copy(test_data / "structures" / "1YJP.cif", samples / "1yjp.mmcif")
    shutil.copy(test_data / "structures" / "1ia1_ligand.sdf", samples / "ligand.sdf")
    shutil.copy(test_data / "structures" / "zinc_856218.mol2", samples / "zinc.mol2")
    (samples / "water.xyz").write_text("3\nwater\nO 0.0 0.0 0.117\nH 0.0 0.757 -0.467\nH 0.0 -0.757 -0.467\n")
    (samples / "aspirin.smi").write_text("CC(=O)Oc1ccccc1C(=O)O aspirin\n")
    from engine.store.project import Project

    Project.open(samples / "study.logos", create=True).close()
    probe = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom PySide6.QtCore import QMimeDatabase\ndb = QMimeDatabase()\n"
         "for f in sys.argv[1:]: print(f.rsplit('.', 1)[1], db.mimeTypeForFile(f).name())",
         *sorted(str(p) for p in samples.iterdir())],
        env=_env(home, data, config), capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    seen = dict(line.split() for line in probe.stdout.splitlines())
    assert seen == EXPECTED

    # the default application of each type is ours (no other default was set), as xdg-mime reads it
    mimeapps = read_group((config / "mimeapps.list").read_text(), "Default Applications")
    for mime in EXPECTED.values():
        assert mimeapps[mime] == f"{DESKTOP_ID};"
        q = subprocess.run([xdg_mime, "query", "default", mime], env=env, capture_output=True, text=True, timeout=30)
        assert q.stdout.strip() == DESKTOP_ID, (mime, q.stdout, q.stderr)
    # update-desktop-database's cache names the entry for each type (the "Open with" lists)
    cache = read_group((data / "applications" / "mimeinfo.cache").read_text(), "MIME Cache")
    for mime in EXPECTED.values():
        assert DESKTOP_ID in cache[mime].split(";")

    # a second install changes nothing
    before = tree(tmp_path)
    assert "up to date" in run("install", env).stderr
    assert tree(tmp_path) == before


def test_uninstall_removes_exactly_what_install_wrote(tmp_path, home):
    require_tool("update-mime-database")
    require_tool("update-desktop-database")
    xdg_mime = require_tool("xdg-mime")
    env = _env(home)  # the defaults: ~/.local/share and ~/.config
    # a fresh account: nothing at all is left
    run("install", env)
    assert (home / ".local/share/applications" / DESKTOP_ID).is_file()
    assert "removed the menu entry" in run("uninstall", env).stderr
    assert tree(home) == {}
    assert "nothing to remove" in run("uninstall", env).stderr

    # an account with its own types, entries and defaults: they are kept, byte for byte
    share, config = home / ".local/share", home / ".config"
    (share / "applications").mkdir(parents=True)
    pymol = tmp_path / "bin" / "pymol"   # xdg-mime honours a default only when its program exists
    pymol.parent.mkdir()
    pymol.write_text("#!/bin/sh\nexit 0\n")
    pymol.chmod(0o755)
    (share / "applications" / "pymol.desktop").write_text(
        f"[Desktop Entry]\nType=Application\nName=PyMOL\nExec={pymol} %F\nMimeType=chemical/x-pdb;\n")
    (share / "mime" / "packages").mkdir(parents=True)
    (share / "mime" / "packages" / "notes.xml").write_text(
        '<?xml version="1.0"?>\n<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">\n'
        '  <mime-type type="text/x-lab-notes"><comment>Lab notes</comment><glob pattern="*.labnotes"/></mime-type>\n'
        "</mime-info>\n")
    subprocess.run(["update-mime-database", str(share / "mime")], check=True, capture_output=True)
    subprocess.run(["update-desktop-database", str(share / "applications")], check=True, capture_output=True)
    config.mkdir()
    (config / "mimeapps.list").write_text(
        "[Added Associations]\ntext/plain=gedit.desktop;\n\n[Default Applications]\nchemical/x-pdb=pymol.desktop;\n")
    before = tree(home)

    run("install", env)
    mimeapps = read_group((config / "mimeapps.list").read_text(), "Default Applications")
    assert mimeapps["chemical/x-pdb"] == "pymol.desktop;"          # the user's choice is kept
    assert mimeapps["application/x-logos-project"] == f"{DESKTOP_ID};"
    q = subprocess.run([xdg_mime, "query", "default", "chemical/x-pdb"], env=env, capture_output=True, text=True)
    assert q.stdout.strip() == "pymol.desktop"
    q = subprocess.run([xdg_mime, "query", "default", "chemical/x-xyz"], env=env, capture_output=True, text=True)
    assert q.stdout.strip() == DESKTOP_ID
    assert (share / "mime" / "chemical" / "x-pdb.xml").is_file()
    run("uninstall", env)
    assert tree(home) == before


def test_a_default_the_user_changed_after_install_is_kept(tmp_path, home):
    env = _env(home)
    run("install", env)
    apps = home / ".config" / "mimeapps.list"
    apps.write_text(apps.read_text().replace(f"chemical/x-xyz={DESKTOP_ID};", "chemical/x-xyz=avogadro.desktop;"))
    run("uninstall", env)
    assert apps.read_text() == "[Default Applications]\nchemical/x-xyz=avogadro.desktop;\n"


def test_setup_sh_uninstall_desktop_removes_it(home):
    env = _env(home)
    run("install", env)
    out = subprocess.run(["bash", str(ROOT / "installer" / "setup.sh"), "uninstall-desktop"], env=env,
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "removed the menu entry" in out.stderr
    assert tree(home) == {}


def test_exec_line_quotes_a_path_with_spaces_and_signs(tmp_path, home):
    validate = require_tool("desktop-file-validate")
    odd = tmp_path / 'my "apps" $HOME 100% `x`\\y' / "logos-desktop"
    odd.parent.mkdir()
    odd.write_text("#!/bin/sh\nexit 0\n")
    odd.chmod(0o755)
    run("install", _env(home))   # first the checkout's program, then another one: a clean reinstall
    env = _env(home, LOGOS_DESKTOP_EXEC=str(odd))
    run("install", env)
    entry_path = home / ".local/share/applications" / DESKTOP_ID
    check = subprocess.run([validate, str(entry_path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    entry = read_group(entry_path.read_text(), "Desktop Entry")
    assert entry["Exec"].startswith('"')  # reserved characters: quoted (a plain path is left bare)
    assert exec_argv(entry["Exec"]) == [str(odd), "%F"]
    run("uninstall", env)
    assert tree(home) == {}


def test_skips_with_a_line_without_home_or_when_asked(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HOME"}
    out = run("install", env)
    assert "skipped: HOME is not set" in out.stderr
    home = tmp_path / "home"
    home.mkdir()
    out = run("install", _env(home, LOGOS_NO_DESKTOP_INTEGRATION="1"))
    assert "skipped: LOGOS_NO_DESKTOP_INTEGRATION" in out.stderr
    assert tree(home) == {}


def test_install_needs_the_program_it_points_to(home):
    out = subprocess.run(["bash", str(SCRIPT), "install"], env=_env(home, LOGOS_DESKTOP_EXEC="/nonexistent/logos-desktop"),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "[desktop] cannot continue: /nonexistent/logos-desktop not found: "
        "set LOGOS Desktop up first (bash installer/setup.sh setup)")
    assert tree(home) == {}
