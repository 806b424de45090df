"""Package discovery: every ``reenact*`` package found on disk, plus the data folders that pyproject.toml maps
into the package (``weights/`` as ``reenact._weights``, ``configs/`` as ``reenact._configs``). Everything
else is declared in pyproject.toml."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["reenact", "reenact.*"]) + ["reenact._weights", "reenact._configs"])
