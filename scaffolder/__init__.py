"""scaffolder: writes fine-tuning projects, checks them across files, commits them and proves they train."""

__version__ = "0.1.0"
