"""The package version, in a module of its own: importable by every layer without ``ecg_keras/__init__.py``
(which imports the public API from the layers above), and read statically by setuptools."""
__version__ = "0.1.0"
