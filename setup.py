"""Maps the project's top-level folders under one namespace.

golden/, quantize/, hw/ and sim/ install as binaryvit.golden, binaryvit.quantize,
binaryvit.hw and binaryvit.sim, so nothing lands in site-packages as a generic
top-level module named `sim` or `golden`. Everything else lives in pyproject.toml.
"""
from setuptools import find_packages, setup

FOLDERS = {"binaryvit": "binaryvit", "golden": "binaryvit.golden",
           "quantize": "binaryvit.quantize", "hw": "binaryvit.hw", "sim": "binaryvit.sim"}

packages = []
package_dir = {}
for folder, name in FOLDERS.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir)
