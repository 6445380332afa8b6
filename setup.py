"""Install l2o: ``pip install -e .`` (add ``[test]`` for the test tools)."""

from glob import glob

from setuptools import find_packages, setup

with open("requirements.txt") as f:
    requirements = [line.strip() for line in f if line.strip() and not line.startswith("#")]

setup(
    name="l2o",
    version="0.1.0",
    description="Learned optimizers by Optimizer Amalgamation, on TensorFlow 2 / Keras 3",
    packages=find_packages(include=["l2o", "l2o.*"]),
    python_requires=">=3.10",
    install_requires=requirements,
    extras_require={"test": ["pytest>=7", "pytest-xdist>=3"]},
    data_files=[("share/l2o/presets", sorted(glob("presets/*.json")))],
)
