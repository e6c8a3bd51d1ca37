"""One exception root for everything Innen raises on purpose.

Callers (DAG tasks, the demo, tests) catch :class:`InnenError` to tell an
expected, explained refusal from a bug.
"""


class InnenError(Exception):
    """Root of every error Innen raises deliberately; the message is for people."""


class ConfigError(InnenError):
    """A setting (environment variable, Connection, metadata row) is wrong or missing."""


class ReferenceNumberError(InnenError, ValueError):
    """A structured communication or RF reference is malformed or fails its check."""


class BankFileError(InnenError):
    """A bank file could not be produced or read; the message names the file and element."""


class ExportRejected(BankFileError):
    """A bank file failed its checks (XSD, hub data) and was not released."""
