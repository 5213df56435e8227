"""LOGOS Desktop training: datasets in the grammar, torch training and LoRA, export to GGUF."""

import os as _os

# OpenMP threads that spin while waiting burn the CPU they wait for when the machine is busy
# (measured on a shared 2-core machine: 41 tok/s spinning vs 228 tok/s passive, same model).
# Must be set before torch loads libgomp; an explicit user setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
