"""The one compiled part: collect._streamcopy (the rollout's copy into the ring, see
collect/_streamcopy.c). Optional: where it cannot be built (no C compiler), the install goes
on and the ring is filled with numpy's copy instead. Everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("collect._streamcopy", ["collect/_streamcopy.c"], optional=True)])
