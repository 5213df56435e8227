# LOGOS Desktop set-up for Windows (PowerShell). UNTESTED: no Windows machine was available to us.
# Same steps as installer/setup.sh: venv at .venv, pinned packages, llama.cpp build (CUDA when an
# NVIDIA GPU is present, CPU otherwise), cached wheel, then start the app or run the tests.
#
#   powershell -ExecutionPolicy Bypass -File installer\setup.ps1 app
#   powershell -ExecutionPolicy Bypass -File installer\setup.ps1 test
#   ... -Bundle D:\logos-bundle   (offline bundle made by installer/bundle on a connected machine)
#   powershell -ExecutionPolicy Bypass -File installer\setup.ps1 uninstall-desktop
#
# Desktop integration (UNTESTED, like the rest of this file): "setup" and "app" add a Start-menu
# shortcut and file types for the current user only (HKCU\Software\Classes: ProgIDs
# LOGOSDesktop.Project for .logos and LOGOSDesktop.Structure in "Open with" for .pdb .cif .mmcif .sdf
# .mol2 .xyz .smi, the default only where the extension has none); what was written is listed in
# %LOCALAPPDATA%\logos-desktop\desktop-integration.json and "uninstall-desktop" removes exactly that.
# Set LOGOS_NO_DESKTOP_INTEGRATION=1 to skip it.
param(
    [ValidateSet("app", "test", "setup", "doctor", "uninstall-desktop")] [string]$Action = "setup",
    [string]$Bundle = $env:LOGOS_BUNDLE,
    [ValidateSet("", "cpu", "cuda")] [string]$Backend = ""
)
$ErrorActionPreference = "Stop"
$Root = Split-Path -Parent $PSScriptRoot
Set-Location $Root
$Venv = Join-Path $Root ".venv"
$Py = Join-Path $Venv "Scripts\python.exe"
$Cache = if ($env:LOGOS_CACHE_DIR) { $env:LOGOS_CACHE_DIR } else { Join-Path $env:LOCALAPPDATA "logos-desktop\Cache" }
function Die($msg) { Write-Host "[setup] cannot continue: $msg"; exit 1 }

# ---------------------------------------------------------------- desktop integration (UNTESTED)
$DesktopDir = Join-Path $env:LOCALAPPDATA "logos-desktop"
$DesktopManifest = Join-Path $DesktopDir "desktop-integration.json"
$Shortcut = Join-Path $env:APPDATA "Microsoft\Windows\Start Menu\Programs\LOGOS Desktop.lnk"
$Classes = "HKCU:\Software\Classes"
$StructureExtensions = @(".pdb", ".cif", ".mmcif", ".sdf", ".mol2", ".xyz", ".smi")

function Notify-Shell {
    # SHChangeNotify(SHCNE_ASSOCCHANGED): Explorer rereads the file types
    try {
        Add-Type -Namespace LogosDesktop -Name Shell -MemberDefinition '[DllImport("shell32.dll")] public static extern void SHChangeNotify(int eventId, int flags, System.IntPtr item1, System.IntPtr item2);' -ErrorAction Stop
        [LogosDesktop.Shell]::SHChangeNotify(0x08000000, 0, [System.IntPtr]::Zero, [System.IntPtr]::Zero)
    } catch { }
}

function Install-Desktop {
    if ($env:LOGOS_NO_DESKTOP_INTEGRATION -and $env:LOGOS_NO_DESKTOP_INTEGRATION -ne "0") {
        Write-Host "[desktop] skipped: LOGOS_NO_DESKTOP_INTEGRATION is set"; return
    }
    if (Test-Path $DesktopManifest) { Uninstall-Desktop -Quiet }
    $pyw = Join-Path $Venv "Scripts\pythonw.exe"   # no console window
    if (-not (Test-Path $pyw)) { Write-Host "[desktop] skipped: $pyw not found"; return }
    New-Item -ItemType Directory -Force -Path $DesktopDir | Out-Null
    $made = @{ keys = @(); values = @(); files = @() }
    # the icon: resources\icons\logos-desktop.svg drawn by Qt into an .ico
    $ico = Join-Path $DesktopDir "logos-desktop.ico"
    $svg = Join-Path $Root "resources\icons\logos-desktop.svg"
    $code = "import sys`nfrom PySide6.QtGui import QGuiApplication, QImage, QPainter`nfrom PySide6.QtSvg import QSvgRenderer`n" +
            "app = QGuiApplication([sys.argv[0], '-platform', 'offscreen'])`nimage = QImage(256, 256, QImage.Format.Format_ARGB32)`n" +
            "image.fill(0)`npainter = QPainter(image)`nQSvgRenderer(sys.argv[1]).render(painter)`npainter.end()`n" +
            "sys.exit(0 if image.save(sys.argv[2], 'ico') else 1)"
    & $Py -c $code $svg $ico
    if ($LASTEXITCODE -eq 0) { $made.files += $ico } else { $ico = $null; Write-Host "[desktop] warning: no .ico made; the shortcut shows a generic icon" }
    # Start-menu shortcut
    $shell = New-Object -ComObject WScript.Shell
    $lnk = $shell.CreateShortcut($Shortcut)
    $lnk.TargetPath = $pyw
    $lnk.Arguments = "-m logos_desktop"
    $lnk.WorkingDirectory = $env:USERPROFILE
    $lnk.Description = "LOGOS Desktop"
    if ($ico) { $lnk.IconLocation = "$ico,0" }
    $lnk.Save()
    $made.files += $Shortcut
    # ProgIDs: opening a file runs the venv's pythonw -m logos_desktop "FILE" (a running window takes it)
    $command = "`"$pyw`" -m logos_desktop `"%1`""
    foreach ($prog in @(@("LOGOSDesktop.Project", "LOGOS Desktop project"), @("LOGOSDesktop.Structure", "Structure file (LOGOS Desktop)"))) {
        $key = "$Classes\$($prog[0])"
        if (-not (Test-Path $key)) { $made.keys += $key }
        New-Item -Force -Path "$key\shell\open\command" | Out-Null
        Set-Item -Path $key -Value $prog[1]
        Set-Item -Path "$key\shell\open\command" -Value $command
        if ($ico) { New-Item -Force -Path "$key\DefaultIcon" | Out-Null; Set-Item -Path "$key\DefaultIcon" -Value "$ico,0" }
    }
    foreach ($ext in @(".logos") + $StructureExtensions) {
        $prog = if ($ext -eq ".logos") { "LOGOSDesktop.Project" } else { "LOGOSDesktop.Structure" }
        $key = "$Classes\$ext"
        if (-not (Test-Path $key)) { New-Item -Force -Path $key | Out-Null; $made.keys += $key }
        if (-not (Test-Path "$key\OpenWithProgids")) { New-Item -Force -Path "$key\OpenWithProgids" | Out-Null; $made.keys += "$key\OpenWithProgids" }
        New-ItemProperty -Force -Path "$key\OpenWithProgids" -Name $prog -Value "" -PropertyType String | Out-Null
        $made.values += @{ key = "$key\OpenWithProgids"; name = $prog }
        # the default only where the extension has none, for this user or the machine
        $mine = (Get-Item -Path $key).GetValue("")
        $machine = $null
        if (Test-Path "HKLM:\Software\Classes\$ext") { $machine = (Get-Item -Path "HKLM:\Software\Classes\$ext").GetValue("") }
        if (-not $mine -and -not $machine) {
            Set-Item -Path $key -Value $prog
            $made.values += @{ key = $key; name = "(default)"; value = $prog }
        }
    }
    $made | ConvertTo-Json -Depth 4 | Set-Content -Encoding UTF8 $DesktopManifest
    Notify-Shell
    Write-Host "[desktop] Start-menu shortcut and file types for .logos $($StructureExtensions -join ' ') installed (untested on Windows)"
    Write-Host "[desktop] remove them with: powershell -ExecutionPolicy Bypass -File installer\setup.ps1 uninstall-desktop"
}

function Uninstall-Desktop([switch]$Quiet) {
    if (-not (Test-Path $DesktopManifest)) { if (-not $Quiet) { Write-Host "[desktop] nothing to remove: $DesktopManifest not found" }; return }
    $made = Get-Content -Raw $DesktopManifest | ConvertFrom-Json
    foreach ($v in @($made.values)) {
        if (-not (Test-Path $v.key)) { continue }
        if ($v.name -eq "(default)") {
            # only while it still names us: a default the user chose since is kept
            if ((Get-Item -Path $v.key).GetValue("") -eq $v.value) { Remove-ItemProperty -Path $v.key -Name "(default)" -ErrorAction SilentlyContinue }
        } else {
            Remove-ItemProperty -Path $v.key -Name $v.name -ErrorAction SilentlyContinue
        }
    }
    $keys = @($made.keys); [array]::Reverse($keys)
    foreach ($k in $keys) {
        if (-not (Test-Path $k)) { continue }
        $item = Get-Item -Path $k
        if ($k -like "*LOGOSDesktop.*") { Remove-Item -Recurse -Force -Path $k }            # our ProgIDs
        elseif ($item.SubKeyCount -eq 0 -and $item.ValueCount -eq 0) { Remove-Item -Force -Path $k }  # created empty
    }
    foreach ($f in @($made.files)) { Remove-Item -Force -ErrorAction SilentlyContinue -Path $f }
    Remove-Item -Force -Path $DesktopManifest
    if ((Test-Path $DesktopDir) -and -not (Get-ChildItem -Force $DesktopDir)) { Remove-Item -Force $DesktopDir }
    Notify-Shell
    if (-not $Quiet) { Write-Host "[desktop] removed the Start-menu shortcut and file types listed in $DesktopManifest" }
}

if ($Action -eq "uninstall-desktop") { Uninstall-Desktop; exit 0 }

# backend detection (untested)
if (-not $Backend) {
    if (Get-Command nvcc -ErrorAction SilentlyContinue) { $Backend = "cuda"; $Why = "NVIDIA CUDA compiler found" }
    elseif (Get-Command nvidia-smi -ErrorAction SilentlyContinue) { $Backend = "cuda"; $Why = "NVIDIA GPU found by nvidia-smi" }
    else { $Backend = "cpu"; $Why = "no NVIDIA GPU (nvcc/nvidia-smi)" }
} else { $Why = "asked for with -Backend" }
$CMake = if ($Backend -eq "cuda") { "-DGGML_NATIVE=OFF -DGGML_CUDA=on" } else { "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" }
Write-Host "[setup] llama.cpp backend: $Backend ($Why)"

if (-not (Test-Path $Py)) {
    $sys = Get-Command py -ErrorAction SilentlyContinue
    if (-not $sys) { Die "no Python launcher 'py' (install Python 3.11 from python.org)" }
    & py -3.11 -m venv $Venv; if ($LASTEXITCODE) { Die "could not create .venv with Python 3.11" }
}
$PipNet = @()
if ($Bundle) { $PipNet = @("--no-index", "--find-links", (Join-Path $Bundle "wheelhouse")) }
$Lock = Get-Content requirements\lock.txt | Where-Object { $_ -notmatch '^llama-cpp-python==' }
$LockFile = Join-Path $Venv "lock-no-llama.txt"; $Lock | Set-Content $LockFile
& $Py -m pip install -q @PipNet -r $LockFile; if ($LASTEXITCODE) { Die "pip could not install requirements\lock.txt" }
& $Py -m pip install -q --no-deps --no-build-isolation -e $Root; if ($LASTEXITCODE) { Die "pip could not install LOGOS Desktop" }

$LlamaVersion = ((Get-Content requirements\lock.txt | Select-String '^llama-cpp-python==(.*)').Matches[0].Groups[1].Value).Trim()
$WheelDir = Join-Path $Cache "wheels\llama-cpp-python-$LlamaVersion-$Backend"
$Wheel = Get-ChildItem -Path $WheelDir -Filter *.whl -ErrorAction SilentlyContinue | Select-Object -First 1
if ($Bundle) { $Wheel = Get-ChildItem -Path (Join-Path $Bundle "llama") -Filter *.whl | Select-Object -First 1 }
if (-not $Wheel) {
    if (-not (Get-Command cmake -ErrorAction SilentlyContinue)) { Die "cmake not found (install CMake and Visual Studio Build Tools)" }
    $env:CMAKE_ARGS = $CMake
    New-Item -ItemType Directory -Force -Path $WheelDir | Out-Null
    & $Py -m pip wheel --no-deps --no-binary llama-cpp-python -w $WheelDir "llama-cpp-python==$LlamaVersion"
    if ($LASTEXITCODE) { Die "building llama-cpp-python failed" }
    $Wheel = Get-ChildItem -Path $WheelDir -Filter *.whl | Select-Object -First 1
}
& $Py -m pip install -q --no-deps --force-reinstall $Wheel.FullName
if ($Action -in @("setup", "app")) {
    try { Install-Desktop } catch { Write-Host "[desktop] warning: Start-menu shortcut and file types not installed: $_" }
}
switch ($Action) {
    "app" { & (Join-Path $Venv "Scripts\logos-desktop.exe") }
    "test" { & $Py -m pytest; exit $LASTEXITCODE }
    "doctor" { & (Join-Path $Venv "Scripts\logos.exe") doctor }
}
