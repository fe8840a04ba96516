"""The package's own exception tree; backend and sandbox errors are mapped into it at the boundary.

::

    PassKError
    ├── TaskFormatError      a dataset line or a decorated task is malformed (carries file:line)
    ├── ModelSpecError       an unknown or unusable ``--model`` spec
    ├── BackendError         generation failed (network, server, engine)
    │   ├── BackendUnavailable   an extra, a key or a GPU is missing
    │   └── SamplesPending       samples are paid for but not here yet (a pending Batch API job)
    ├── RecordingError       a replay file is unreadable or malformed (carries file:line)
    ├── StoreError           the sample store cannot be read, written or locked
    │   └── StoreLockTimeout     another process held a stream lock too long without progress
    ├── SandboxError         the sandbox itself failed (not the candidate)
    │   └── SandboxUnavailable   the sandbox cannot start here (a required isolation level)
    └── SamplesUnavailable   an item's samples could not be drawn (its message says why)
        └── SamplesNotYet        ... because they are still pending: the next run collects them
"""

from __future__ import annotations


class PassKError(Exception):
    """Base class of every error raised by pytest-passk."""


class TaskFormatError(PassKError):
    """A task definition (dataset line, decorator arguments) is malformed."""

    def __init__(self, where: str, what: str, fix: str) -> None:
        self.where = where
        self.what = what
        self.fix = fix
        super().__init__(f"{where}: {what}; {fix}")


class ModelSpecError(PassKError):
    """A model spec cannot be resolved to a backend."""


class BackendError(PassKError):
    """Generation failed inside a backend."""


class BackendUnavailable(BackendError):
    """A backend cannot start here: a missing extra, API key or GPU."""


class SamplesPending(BackendError):
    """Samples are paid for and on their way (a Batch API job still running), not failed: the
    next run collects them. The session ends without judging, and says so.
    """


class RecordingError(PassKError):
    """A file of recorded samples is unreadable or malformed."""


class StoreError(PassKError):
    """The sample store cannot be read, written or locked."""


class SandboxError(PassKError):
    """The sandbox failed to run a candidate for reasons that are not the candidate's fault."""


class SandboxUnavailable(SandboxError):
    """The sandbox cannot start here: a required isolation level is missing, or the OS refused."""


class SamplesUnavailable(PassKError):
    """Samples could not be drawn: a backend or the store failed (the message says which)."""


class SamplesNotYet(SamplesUnavailable):
    """An item's samples are pending (:class:`SamplesPending`): the run ends, nothing is lost."""
