"""factorlab: learn the Twelve-Factor App by doing."""

__version__ = "0.1.0"
