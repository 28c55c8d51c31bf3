"""User-facing errors.

Every problem caused by what the user passed in (a file, a column, a label, an option, a
model name) is raised as :class:`AdvembedError` with a one-line message that names the bad
thing.  The command line prints ``advembed: error: <message>`` and exits with status 2, never a
traceback.
"""

from __future__ import annotations


class AdvembedError(Exception):
    """An error caused by user input or the environment, with a one-line message."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ResourceUnavailable(AdvembedError):
    """A registry or Debian package that cannot be fetched on this machine (offline, no
    ``apt-get``, not in the cache): the environment's problem, not the data's — tests skip on
    it and on nothing else."""
