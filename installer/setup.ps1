# LOGOS Desktop set-up for Windows (PowerShell). UNTESTED: no Windows machine was available to us.
# Same steps as installer/setup.sh: venv at .venv, pinned packages, llama.cpp build (CUDA when an
# NVIDIA GPU is present, CPU otherwise), cached wheel, then start the app or run the tests.
#
#   powershell -ExecutionPolicy Bypass -File installer\setup.ps1 app
#   powershell -ExecutionPolicy Bypass -File installer\setup.ps1 test
#   ... -Bundle D:\logos-bundle   (offline bundle made by installer/bundle on a connected machine)
param(
    [ValidateSet("app", "test", "setup", "doctor")] [string]$Action = "setup",
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
switch ($Action) {
    "app" { & (Join-Path $Venv "Scripts\logos-desktop.exe") }
    "test" { & $Py -m pytest; exit $LASTEXITCODE }
    "doctor" { & (Join-Path $Venv "Scripts\logos.exe") doctor }
}
