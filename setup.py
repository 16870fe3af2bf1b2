"""Package layout that pyproject.toml cannot express: the repository's top-level ``weights/`` folder
is shipped as the package ``rawdev.weights`` (wheel and sdist), so an installed rawdev finds its
weights through :mod:`importlib.resources`. All other metadata is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["rawdev", "rawdev.*"]) + ["rawdev.weights"],
    package_dir={"rawdev.weights": "weights"},
    package_data={"rawdev.weights": ["*.safetensors", "*.md"]},
)
