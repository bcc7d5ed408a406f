"""Errors that are the user's to fix, as opposed to bugs.

A `UserError` says what the user gave (a config value, a data file, a workdir) or what their
settings did (a run that diverged), names the value and says what to do instead; launch.py
prints it as one line. Any other exception escaping an experiment is a bug and keeps its
traceback. The subclasses also derive from the built-in exception a caller would expect
(ValueError, FileNotFoundError, ...), so `except ValueError` keeps working.

This module imports nothing, so every layer (data, models, optim, train) may raise these.
"""


class UserError(Exception):
    """Bad input or a run ended by the user's settings; the message names the value and a
    remedy, on one line."""


class ConfigError(UserError, ValueError):
    """A config value of the wrong type, non-finite, out of range, or an unknown name."""


class DataError(UserError, ValueError):
    """A data file that cannot be used: wrong shapes, no examples, non-numeric or non-finite
    values, not an .npz archive."""


class DataFileNotFoundError(UserError, FileNotFoundError):
    """A data file that does not exist."""


class DataKeyError(UserError, KeyError):
    """A data file without an array the caller asked for."""

    def __str__(self) -> str:  # KeyError's str() is the repr of its argument
        return str(self.args[0]) if self.args else ""


class WorkdirError(UserError, OSError):
    """A run directory that cannot be created or written."""


class ExperimentFileError(UserError, ImportError):
    """An experiment file that cannot be imported (a syntax error, an import that fails)."""
