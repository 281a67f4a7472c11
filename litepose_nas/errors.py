"""Error types shared by the package.

Every error a user can cause by passing a bad file or value derives from :class:`InputError`
(a ``ValueError``); the CLI prints it on one line and exits with status 2. Failures of a job that
was started with valid input derive from :class:`JobError` and exit with status 1.
"""
from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a file, field or value the user can fix."""


class ArchError(InputError):
    """An architecture (or search space) is malformed or lies outside its search space."""


class SpaceError(ArchError):
    """A search-space definition is malformed."""


class TableError(InputError):
    """A latency table is malformed, for another space, or lacks a configuration."""


class DataError(InputError):
    """A dataset folder, annotation file or image is missing or malformed."""


class CheckpointError(InputError):
    """A checkpoint cannot be read safely or does not fit the model."""


class PredictorError(InputError):
    """A predictor file is malformed or belongs to another search space."""


class JobError(RuntimeError):
    """A long job failed at run time (exit status 1)."""
