"""The version of eqdsl (pyproject.toml states the same), written into every generated module."""
__version__ = "0.1.0"
