"""setup.cfg holds the metadata; this adds what it cannot say: the repository's top-level
``models/`` (the released zoo: MANIFEST.json, model cards, small weights) is installed as the
package-data folder ``released`` of ``ecg_keras`` (``ecg_keras.zoo.INSTALLED``)."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["ecg_keras", "ecg_keras.*"]) + ["ecg_keras.released"],
      package_dir={"ecg_keras.released": "models"})
