#!/usr/bin/env bash
# LOGOS Desktop desktop integration, for the current user only (no root needed):
# a menu entry with an icon, and file associations for .logos projects and structure files.
#
#   bash installer/desktop.sh install     write the menu entry, icon and file associations
#   bash installer/desktop.sh uninstall   remove exactly what `install` wrote (its manifest says what)
#
# installer/setup.sh runs `install` after `setup` and `app`, and `uninstall` for `uninstall-desktop`.
#
# Linux (freedesktop.org): $XDG_DATA_HOME (default ~/.local/share)
#   applications/logos-desktop.desktop            the menu entry; Exec runs the venv's logos-desktop %F
#   icons/hicolor/scalable/apps/logos-desktop.svg the icon (resources/icons/logos-desktop.svg)
#   icons/hicolor/scalable/mimetypes/application-x-logos-project.svg
#   mime/packages/logos-desktop.xml               MIME types: application/x-logos-project (*.logos) and
#                                                 the chemical/x-* types of structure files
#   logos-desktop/desktop-integration.manifest    what was written, for `uninstall`
# and in $XDG_CONFIG_HOME/mimeapps.list (default ~/.config) LOGOS Desktop becomes the default
# application of each of these types that has no default yet (a default the user chose is kept).
# update-mime-database and update-desktop-database run when they are installed (Debian packages
# shared-mime-info and desktop-file-utils); without them the files are still written.
#
# macOS (UNTESTED: no Mac was available to us): ~/Applications/LOGOS Desktop.app, a small bundle
# whose launcher runs the venv's logos-desktop, with the same document types in its Info.plist.
# Windows: see installer/setup.ps1 (also untested).
#
# Environment: LOGOS_DESKTOP_EXEC (the program the entry runs; default .venv/bin/logos-desktop),
#              LOGOS_NO_DESKTOP_INTEGRATION=1 (install does nothing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP_ID="logos-desktop"
DESKTOP_ID="$APP_ID.desktop"
ICON_SRC="$ROOT/resources/icons/logos-desktop.svg"
EXEC="${LOGOS_DESKTOP_EXEC:-$ROOT/.venv/bin/logos-desktop}"
PROJECT_TYPE="application/x-logos-project"
# the structure types, named as the chemical-mime-data package names them (shared-mime-info 2.2
# itself defines none of them; it maps *.pdb to Palm databases and *.smi to SMIL/SAMI subtitles)
STRUCTURE_TYPES="chemical/x-pdb chemical/x-cif chemical/x-mmcif chemical/x-mdl-sdfile chemical/x-mol2 chemical/x-xyz chemical/x-daylight-smiles"
ALL_TYPES="$PROJECT_TYPE $STRUCTURE_TYPES"
EXTENSIONS="logos pdb cif mmcif sdf mol2 xyz smi"

say() { printf '[desktop] %s\n' "$*" >&2; }
die() { printf '[desktop] cannot continue: %s\n' "$*" >&2; exit 1; }

ACTION="${1:-}"
case "$ACTION" in
  install|uninstall) ;;
  -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
  *) die "usage: bash installer/desktop.sh install|uninstall" ;;
esac

if [ -z "${HOME:-}" ] || [ ! -d "${HOME:-/nonexistent}" ]; then
  say "skipped: HOME is not set or is not a folder, so there is no user menu to add LOGOS Desktop to"
  exit 0
fi
if [ "$ACTION" = install ] && [ -n "${LOGOS_NO_DESKTOP_INTEGRATION:-}" ] && [ "${LOGOS_NO_DESKTOP_INTEGRATION}" != 0 ]; then
  say "skipped: LOGOS_NO_DESKTOP_INTEGRATION is set (no menu entry or file associations written)"
  exit 0
fi

# ---------------------------------------------------------------- XDG folders
xdg_dir() {  # $1: the variable's value, $2: the default; a relative value is ignored (XDG spec)
  case "$1" in /*) printf '%s' "$1" ;; *) printf '%s' "$2" ;; esac
}
DATA="$(xdg_dir "${XDG_DATA_HOME:-}" "$HOME/.local/share")"
CONFIG="$(xdg_dir "${XDG_CONFIG_HOME:-}" "$HOME/.config")"
MANIFEST="$DATA/$APP_ID/desktop-integration.manifest"
MIMEAPPS="$CONFIG/mimeapps.list"

# ---------------------------------------------------------------- the manifest
# One record a line: "dir PATH" (a folder install created), "file PATH" (a file install wrote),
# "default TYPE" (a mimeapps.list default install added), "section" (install added the
# [Default Applications] header), "mimeapps" (install created mimeapps.list).
RECORDS=()
record() { RECORDS+=("$*"); }

make_dir() {  # mkdir -p that records each folder it creates, outermost first
  local d="$1" missing=()
  while [ ! -d "$d" ]; do missing=("$d" "${missing[@]+"${missing[@]}"}"); d="$(dirname "$d")"; done
  for d in "${missing[@]+"${missing[@]}"}"; do mkdir "$d"; record "dir $d"; done
}

write_file() {  # $1: destination; the content comes on stdin
  make_dir "$(dirname "$1")"
  cat > "$1.tmp.$$"
  mv -f "$1.tmp.$$" "$1"
  record "file $1"
}

# ---------------------------------------------------------------- mimeapps.list
# Only lines of the [Default Applications] group are read or written; everything else is copied as it is.
has_default() {  # $1: type; true when mimeapps.list names any default application for it
  [ -f "$MIMEAPPS" ] || return 1
  awk -v t="$1" '
    /^[ \t]*\[/ { sec = ($0 ~ /^[ \t]*\[Default Applications\][ \t]*$/); next }
    sec { line = $0; sub(/[ \t]*=.*/, "", line); sub(/^[ \t]+/, "", line); if (line == t) found = 1 }
    END { exit found ? 0 : 1 }' "$MIMEAPPS"
}

add_defaults() {  # $@: types to make ours, inserted right under the group header
  [ $# -gt 0 ] || return 0
  local lines="" t
  for t in "$@"; do lines="$lines$t=$DESKTOP_ID;"$'\n'; record "default $t"; done
  if [ ! -f "$MIMEAPPS" ]; then
    make_dir "$(dirname "$MIMEAPPS")"
    printf '[Default Applications]\n%s' "$lines" > "$MIMEAPPS"
    record "mimeapps"; record "section"
  elif grep -q '^[ \t]*\[Default Applications\][ \t]*$' "$MIMEAPPS"; then
    awk -v add="$lines" '{ print } !done && /^[ \t]*\[Default Applications\][ \t]*$/ { printf "%s", add; done = 1 }' \
      "$MIMEAPPS" > "$MIMEAPPS.tmp.$$"
    cat "$MIMEAPPS.tmp.$$" > "$MIMEAPPS"; rm -f "$MIMEAPPS.tmp.$$"
  else
    { [ -s "$MIMEAPPS" ] && [ -n "$(tail -c1 "$MIMEAPPS")" ] && echo; printf '[Default Applications]\n%s' "$lines"; } >> "$MIMEAPPS"
    record "section"
  fi
}

remove_defaults() {  # $1: space-separated types; a line is removed only while it still names us
  [ -f "$MIMEAPPS" ] || return 0
  awk -v types=" $1 " -v id="$DESKTOP_ID;" '
    /^[ \t]*\[/ { sec = ($0 ~ /^[ \t]*\[Default Applications\][ \t]*$/); print; next }
    sec { k = $0; v = $0; sub(/[ \t]*=.*/, "", k); sub(/^[ \t]+/, "", k); sub(/^[^=]*=[ \t]*/, "", v)
          sub(/[ \t]+$/, "", v); if (index(types, " " k " ") && (v == id || v == substr(id, 1, length(id) - 1))) next }
    { print }' "$MIMEAPPS" > "$MIMEAPPS.tmp.$$"
  cat "$MIMEAPPS.tmp.$$" > "$MIMEAPPS"; rm -f "$MIMEAPPS.tmp.$$"
}

remove_empty_section() {  # the [Default Applications] header install added, when nothing is left under it
  [ -f "$MIMEAPPS" ] || return 0
  awk '
    { lines[NR] = $0 }
    END {
      for (i = 1; i <= NR; i++) {
        if (lines[i] ~ /^[ \t]*\[Default Applications\][ \t]*$/) {
          empty = 1
          for (j = i + 1; j <= NR && lines[j] !~ /^[ \t]*\[/; j++) if (lines[j] !~ /^[ \t]*$/) empty = 0
          if (empty) { for (k = i; k < j; k++) skip[k] = 1; if (i > 1 && lines[i - 1] ~ /^[ \t]*$/) skip[i - 1] = 1 }
        }
      }
      for (i = 1; i <= NR; i++) if (!skip[i]) print lines[i]
    }' "$MIMEAPPS" > "$MIMEAPPS.tmp.$$"
  cat "$MIMEAPPS.tmp.$$" > "$MIMEAPPS"; rm -f "$MIMEAPPS.tmp.$$"
}

# ---------------------------------------------------------------- the files (Linux)
desktop_escape() {  # a string value of a desktop entry: backslash, newline, tab
  local s="${1//\\/\\\\}"; s="${s//$'\n'/\\n}"; printf '%s' "${s//$'\t'/\\t}"
}
exec_arg() {  # one argument of an Exec key (desktop entry spec: quoting, then string escapes)
  local s="${1//%/%%}" c quote=0
  for c in ' ' $'\t' $'\n' '"' "'" '\' '>' '<' '~' '|' '&' ';' '$' '*' '?' '#' '(' ')' '`'; do
    case "$s" in *"$c"*) quote=1; break ;; esac   # the spec's reserved characters
  done
  if [ "$quote" = 0 ]; then desktop_escape "$s"; return; fi  # quoted only when it must be (xdg-mime reads it bare)
  s="${s//\\/\\\\}"; s="${s//\"/\\\"}"; s="${s//\`/\\\`}"; s="${s//\$/\\\$}"
  desktop_escape "\"$s\""
}

desktop_entry() {
  local types="" t
  for t in $ALL_TYPES; do types="$types$t;"; done
  cat <<EOF
[Desktop Entry]
Type=Application
Version=1.4
Name=LOGOS Desktop
GenericName=Molecular design
Comment=Generate, view and dock molecules, proteins and materials
Exec=$(exec_arg "$EXEC") %F
TryExec=$(desktop_escape "$EXEC")
Icon=$APP_ID
Terminal=false
StartupNotify=true
StartupWMClass=$APP_ID
Categories=Science;Chemistry;Biology;
Keywords=chemistry;molecule;protein;structure;PDB;SMILES;docking;
MimeType=$types
Actions=new-window;

[Desktop Action new-window]
Name=New Window
Exec=$(exec_arg "$EXEC") --new-window
EOF
}

mime_xml() {
  cat <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- LOGOS Desktop (installer/desktop.sh): the project type, and the structure types it opens.
     The chemical/x-* names are those of the chemical-mime-data package; shared-mime-info itself
     does not define them. *.pdb is also a Palm database and *.smi a SMIL or SAMI file in
     shared-mime-info, at the same glob weight: the magic below tells a PDB file by its records. -->
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="application/x-logos-project">
    <comment>LOGOS Desktop project</comment>
    <sub-class-of type="application/vnd.sqlite3"/>
    <generic-icon name="x-office-document"/>
    <glob pattern="*.logos"/>
  </mime-type>
  <mime-type type="chemical/x-pdb">
    <comment>Protein Data Bank structure</comment>
    <sub-class-of type="text/plain"/>
    <magic priority="50">
      <match type="string" offset="0" value="HEADER"/>
      <match type="string" offset="0" value="REMARK"/>
      <match type="string" offset="0" value="CRYST1"/>
      <match type="string" offset="0" value="ATOM  "/>
      <match type="string" offset="0" value="HETATM"/>
      <match type="string" offset="0" value="COMPND"/>
      <match type="string" offset="0" value="TITLE "/>
      <match type="string" offset="0" value="MODEL "/>
      <match type="string" offset="0" value="EXPDTA"/>
      <match type="string" offset="0" value="AUTHOR"/>
    </magic>
    <glob pattern="*.pdb"/>
  </mime-type>
  <mime-type type="chemical/x-cif">
    <comment>Crystallographic Information File</comment>
    <sub-class-of type="text/plain"/>
    <glob pattern="*.cif"/>
  </mime-type>
  <mime-type type="chemical/x-mmcif">
    <comment>Macromolecular CIF structure</comment>
    <sub-class-of type="text/plain"/>
    <glob pattern="*.mmcif"/>
  </mime-type>
  <mime-type type="chemical/x-mdl-sdfile">
    <comment>MDL structure-data file</comment>
    <sub-class-of type="text/plain"/>
    <glob pattern="*.sdf"/>
    <glob pattern="*.sd"/>
  </mime-type>
  <mime-type type="chemical/x-mol2">
    <comment>Tripos Mol2 structure</comment>
    <sub-class-of type="text/plain"/>
    <glob pattern="*.mol2"/>
  </mime-type>
  <mime-type type="chemical/x-xyz">
    <comment>XYZ coordinates</comment>
    <sub-class-of type="text/plain"/>
    <glob pattern="*.xyz"/>
  </mime-type>
  <mime-type type="chemical/x-daylight-smiles">
    <comment>SMILES strings</comment>
    <sub-class-of type="text/plain"/>
    <glob pattern="*.smi"/>
    <glob pattern="*.smiles"/>
  </mime-type>
</mime-info>
EOF
}

refresh_databases() {
  if command -v update-mime-database >/dev/null 2>&1; then
    [ -d "$DATA/mime/packages" ] && update-mime-database "$DATA/mime" >/dev/null 2>&1 \
      || say "warning: update-mime-database failed; file types apply after the next log-in"
  else
    say "update-mime-database not found (Debian package shared-mime-info): file types apply once it runs"
  fi
  if command -v update-desktop-database >/dev/null 2>&1; then
    [ -d "$DATA/applications" ] && update-desktop-database -q "$DATA/applications" >/dev/null 2>&1 \
      || say "warning: update-desktop-database failed; the menu refreshes after the next log-in"
  else
    say "update-desktop-database not found (Debian package desktop-file-utils): the menu refreshes after the next log-in"
  fi
}

# files the databases generate from what we wrote; removed only when nothing else is left to generate them from
MIME_GENERATED="aliases generic-icons globs globs2 icons magic mime.cache subclasses treemagic types version XMLnamespaces"

linux_install() {
  [ -f "$ICON_SRC" ] || die "the icon is missing: $ICON_SRC"
  [ -x "$EXEC" ] || die "$EXEC not found: set LOGOS Desktop up first (bash installer/setup.sh setup)"
  local entry xml
  entry="$(desktop_entry)"; xml="$(mime_xml)"
  if [ -f "$MANIFEST" ] && [ "$(cat "$DATA/applications/$DESKTOP_ID" 2>/dev/null)" = "$entry" ] \
      && [ "$(cat "$DATA/mime/packages/$APP_ID.xml" 2>/dev/null)" = "$xml" ] \
      && cmp -s "$ICON_SRC" "$DATA/icons/hicolor/scalable/apps/$APP_ID.svg"; then
    say "menu entry and file associations are up to date ($DATA/applications/$DESKTOP_ID)"
    return 0
  fi
  [ -f "$MANIFEST" ] && uninstall_records quiet   # a clean reinstall keeps the manifest exact
  RECORDS=()
  make_dir "$DATA/$APP_ID"
  write_file "$DATA/applications/$DESKTOP_ID" <<<"$entry"   # not a pipe: write_file records in this shell
  write_file "$DATA/mime/packages/$APP_ID.xml" <<<"$xml"
  write_file "$DATA/icons/hicolor/scalable/apps/$APP_ID.svg" < "$ICON_SRC"
  write_file "$DATA/icons/hicolor/scalable/mimetypes/${PROJECT_TYPE//\//-}.svg" < "$ICON_SRC"
  local t new=()
  for t in $ALL_TYPES; do has_default "$t" || new+=("$t"); done
  add_defaults "${new[@]+"${new[@]}"}"
  # the per-type files update-mime-database writes for our types (it never deletes them itself)
  local media gen=()
  for t in $ALL_TYPES; do
    media="$DATA/mime/${t%%/*}"
    [ -d "$media" ] || gen+=("gendir $media")
    [ -e "$DATA/mime/$t.xml" ] || gen+=("generated $DATA/mime/$t.xml")
  done
  refresh_databases
  for t in "${gen[@]+"${gen[@]}"}"; do
    case " ${RECORDS[*]} " in *" $t "*) continue ;; esac
    [ -e "${t#* }" ] && record "$t"
  done
  printf '%s\n' "${RECORDS[@]}" > "$MANIFEST"
  touch "$DATA/icons/hicolor" 2>/dev/null || true  # icon caches notice a changed folder
  say "installed the menu entry $DATA/applications/$DESKTOP_ID (runs $EXEC) and file types for .${EXTENSIONS// /, .}"
  if [ ${#new[@]} -gt 0 ]; then
    say "LOGOS Desktop opens by default: ${new[*]} (in $MIMEAPPS; defaults you had chosen are kept)"
  fi
  say "remove them with: bash installer/setup.sh uninstall-desktop"
}

uninstall_records() {  # $1: "quiet" to say nothing (reinstall)
  local line kind path types="" dirs=() generated=() gendirs=() mimeapps=0 section=0
  while IFS= read -r line; do
    kind="${line%% *}"; path="${line#* }"
    case "$kind" in
      file) rm -f "$path" ;;
      dir) dirs=("$path" "${dirs[@]+"${dirs[@]}"}") ;;   # innermost first
      generated) generated+=("$path") ;;
      gendir) gendirs+=("$path") ;;
      default) types="$types $path" ;;
      mimeapps) mimeapps=1 ;;
      section) section=1 ;;
    esac
  done < "$MANIFEST"
  rm -f "$MANIFEST"
  [ -n "$types" ] && remove_defaults "$types"
  [ "$section" = 1 ] && remove_empty_section
  if [ "$mimeapps" = 1 ] && [ -f "$MIMEAPPS" ] && ! grep -q '[^[:space:]]' "$MIMEAPPS"; then rm -f "$MIMEAPPS"; fi
  # the generated databases: regenerated without our types, or removed when we made their folder
  local d created=" ${dirs[*]+"${dirs[*]}"} " f t
  if [ -d "$DATA/mime" ]; then
    if [[ "$created" == *" $DATA/mime "* ]] && [ -z "$(ls -A "$DATA/mime/packages" 2>/dev/null)" ]; then
      for f in $MIME_GENERATED; do rm -f "$DATA/mime/$f"; done
      for d in "$DATA/mime"/*/; do   # per-type XML that update-mime-database writes (chemical/x-pdb.xml...)
        [ -d "$d" ] && [ "$d" != "$DATA/mime/packages/" ] && rm -rf "$d"
      done
    elif command -v update-mime-database >/dev/null 2>&1 && [ -d "$DATA/mime/packages" ]; then
      update-mime-database "$DATA/mime" >/dev/null 2>&1 || true
      for f in "${generated[@]+"${generated[@]}"}"; do   # unless another package still defines the type
        t="${f#"$DATA/mime/"}"; t="${t%.xml}"
        grep -qs "type=\"$t\"" "$DATA/mime/packages"/*.xml || rm -f "$f"
      done
      for d in "${gendirs[@]+"${gendirs[@]}"}"; do rmdir "$d" 2>/dev/null || true; done
    fi
  fi
  if [ -d "$DATA/applications" ]; then
    if [[ "$created" == *" $DATA/applications "* ]] && [ "$(ls -A "$DATA/applications")" = mimeinfo.cache ]; then
      rm -f "$DATA/applications/mimeinfo.cache"
    elif command -v update-desktop-database >/dev/null 2>&1; then
      update-desktop-database -q "$DATA/applications" >/dev/null 2>&1 || true
    fi
  fi
  for d in "${dirs[@]+"${dirs[@]}"}"; do rmdir "$d" 2>/dev/null || true; done
  [ "${1:-}" = quiet ] || say "removed the menu entry and file associations listed in $MANIFEST"
}

linux_uninstall() {
  if [ ! -f "$MANIFEST" ]; then
    say "nothing to remove: no desktop integration was installed for this user ($MANIFEST not found)"
    return 0
  fi
  uninstall_records
}

# ---------------------------------------------------------------- macOS (UNTESTED)
MAC_APP="$HOME/Applications/LOGOS Desktop.app"
LSREGISTER="/System/Library/Frameworks/CoreServices.framework/Frameworks/LaunchServices.framework/Support/lsregister"

mac_install() {  # UNTESTED: written from Apple's bundle documentation, never run on a Mac
  [ -x "$EXEC" ] || die "$EXEC not found: set LOGOS Desktop up first (bash installer/setup.sh setup)"
  rm -rf "$MAC_APP"
  mkdir -p "$MAC_APP/Contents/MacOS" "$MAC_APP/Contents/Resources"
  printf '#!/bin/sh\n# LOGOS Desktop launcher (installer/desktop.sh)\nexec "%s" "$@"\n' "$EXEC" > "$MAC_APP/Contents/MacOS/logos-desktop"
  chmod 755 "$MAC_APP/Contents/MacOS/logos-desktop"
  # the icon: resources/icons/logos-desktop.svg drawn by Qt into an .icns (Qt's icns image plugin)
  "$(dirname "$EXEC")/python" - "$ICON_SRC" "$MAC_APP/Contents/Resources/logos-desktop.icns" <<'PY' 2>/dev/null \
    || say "warning: could not make the .icns icon; the app shows a generic icon"
import sys
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer
app = QGuiApplication([sys.argv[0], "-platform", "offscreen"])
image = QImage(512, 512, QImage.Format.Format_ARGB32)
image.fill(0)
painter = QPainter(image)
QSvgRenderer(sys.argv[1]).render(painter)
painter.end()
sys.exit(0 if image.save(sys.argv[2], "icns") else 1)
PY
  local docs="" ext role
  for ext in $EXTENSIONS; do
    role="Viewer"; [ "$ext" = logos ] && role="Editor"
    docs="$docs    <dict><key>CFBundleTypeName</key><string>.$ext file</string><key>CFBundleTypeRole</key><string>$role</string>"
    docs="$docs<key>LSHandlerRank</key><string>$([ "$ext" = logos ] && echo Owner || echo Alternate)</string>"
    docs="$docs<key>CFBundleTypeExtensions</key><array><string>$ext</string></array></dict>"$'\n'
  done
  cat > "$MAC_APP/Contents/Info.plist" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>CFBundleName</key><string>LOGOS Desktop</string>
  <key>CFBundleIdentifier</key><string>local.logos-desktop</string>
  <key>CFBundleExecutable</key><string>logos-desktop</string>
  <key>CFBundleIconFile</key><string>logos-desktop</string>
  <key>CFBundlePackageType</key><string>APPL</string>
  <key>CFBundleInfoDictionaryVersion</key><string>6.0</string>
  <key>NSHighResolutionCapable</key><true/>
  <key>CFBundleDocumentTypes</key>
  <array>
$docs  </array>
</dict>
</plist>
EOF
  [ -x "$LSREGISTER" ] && "$LSREGISTER" -f "$MAC_APP" >/dev/null 2>&1 || true
  say "installed $MAC_APP (UNTESTED on macOS); remove it with: bash installer/setup.sh uninstall-desktop"
}

mac_uninstall() {
  if [ ! -d "$MAC_APP" ]; then say "nothing to remove: $MAC_APP not found"; return 0; fi
  [ -x "$LSREGISTER" ] && "$LSREGISTER" -u "$MAC_APP" >/dev/null 2>&1 || true
  rm -rf "$MAC_APP"
  say "removed $MAC_APP"
}

# ---------------------------------------------------------------- dispatch
case "$(uname -s)" in
  Linux) if [ "$ACTION" = install ]; then linux_install; else linux_uninstall; fi ;;
  Darwin) if [ "$ACTION" = install ]; then mac_install; else mac_uninstall; fi ;;
  *) say "skipped: desktop integration is written for Linux (and, untested, macOS), not $(uname -s)"
     say "on Windows run: powershell -ExecutionPolicy Bypass -File installer\\setup.ps1 setup" ;;
esac
