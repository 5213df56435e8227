"""The llama.cpp runtime: the only part of LOGOS Desktop that imports ``llama_cpp``."""
