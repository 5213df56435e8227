"""The one compiled part of LOGOS Desktop: engine/runtime/_stepper.c, a decoding step's host work
(sampling and log-sum-exp) in C. Everything else is in pyproject.toml.

The extension is optional: without a C compiler (or Python's headers) the install still succeeds
and the engine samples with the numpy implementation, which draws the same samples, slower.
``logos doctor`` and the engine's backend report say which one is in use."""

import sys

from setuptools import Extension, setup

windows = sys.platform == "win32"
args = ["/O2"] if windows else ["-O3", "-std=c99", "-fno-math-errno", "-fno-trapping-math"]
link = []
if sys.platform.startswith("linux"):
    # OpenMP (GCC's libgomp, as llama.cpp's CPU backend on Linux): a step's draws then run on the
    # threads that llama_decode uses, which wait between two decodes
    args.append("-fopenmp")
    link.append("-fopenmp")
setup(ext_modules=[Extension("engine.runtime._stepper", ["engine/runtime/_stepper.c"],
                             extra_compile_args=args, extra_link_args=link, libraries=[] if windows else ["m"],
                             optional=True)])
