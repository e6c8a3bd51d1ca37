"""One exception root for everything Innen raises on purpose.

Callers (DAG tasks, the demo, tests) catch :class:`InnenError` to tell an
expected, explained refusal from a bug.
"""


class InnenError(Exception):
    """Root of every error Innen raises deliberately; the message is for people."""


class ConfigError(InnenError):
    """A setting (environment variable, Connection, metadata row) is wrong or missing."""


class Unavailable(InnenError):
    """Something Innen needs did not answer just now (the database): a retry may cure it.

    Tasks turn Innen's refusals into failures without a retry; this one they let through to Airflow's retries.
    """


class DatabaseUnavailable(ConfigError, Unavailable):
    """The database could not be reached: down, restarting, or (indistinguishably) a wrong host in the setting."""


class ReferenceNumberError(InnenError, ValueError):
    """A structured communication or RF reference is malformed or fails its check."""


class BankFileError(InnenError):
    """A bank file could not be produced or read; the message names the file and element."""


class ExportRejected(BankFileError):
    """A bank file failed its checks (XSD, hub data) and was not released."""


ECHOED = 40  # characters of a bad value a refusal repeats: enough to find it in the file, never the whole file


def echoed(value: str, width: int = ECHOED) -> str:
    """``value`` as a refusal quotes it: its repr, cut after ``width`` characters (then with its length).

    A refusal's text goes to logs, to the quarantine's reason file and to the person who reads it; a value of a
    million characters must not become a message of a million characters.

    >>> echoed("12,50")
    "'12,50'"
    >>> echoed("2026-13-45" * 10)
    "'2026-13-452026-13-452026-13-452026-13-45'… (100 characters)"
    """
    if len(value) <= width:
        return repr(value)
    return f"{value[:width]!r}… ({len(value)} characters)"
