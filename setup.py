"""The one compiled part of LOGOS Desktop: engine/runtime/_stepper.c, a decoding step's host work
(sampling and log-sum-exp) in C. Everything else is in pyproject.toml.

The extension is optional: without a C compiler (or Python's headers) the install still succeeds
and the engine samples with the numpy implementation, which draws the same samples, slower.
``logos doctor`` and the engine's backend report say which one is in use."""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

windows = sys.platform == "win32"
args = ["/O2"] if windows else ["-O3", "-std=c99", "-fno-math-errno", "-fno-trapping-math"]
# OpenMP (GCC's libgomp, as llama.cpp's CPU backend on Linux): a step's draws then run on the
# threads that llama_decode uses, which wait between two decodes
OPENMP = ["-fopenmp"] if sys.platform.startswith("linux") else []


class BuildExt(build_ext):
    """Built with OpenMP where the compiler has it, else without (the draws then in one thread)."""

    def build_extension(self, ext):
        if not OPENMP:
            return super().build_extension(ext)
        base_args, base_link = list(ext.extra_compile_args), list(ext.extra_link_args)
        ext.extra_compile_args, ext.extra_link_args = base_args + OPENMP, base_link + OPENMP
        try:
            return super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - e.g. a compiler without OpenMP
            print(f"building {ext.name} with OpenMP failed ({exc}); building it without", file=sys.stderr)
            ext.extra_compile_args, ext.extra_link_args = base_args, base_link
            return super().build_extension(ext)


setup(cmdclass={"build_ext": BuildExt},
      ext_modules=[Extension("engine.runtime._stepper", ["engine/runtime/_stepper.c"],
                             extra_compile_args=args, libraries=[] if windows else ["m"], optional=True)])
