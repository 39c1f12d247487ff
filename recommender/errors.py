"""Errors a caller can cause when asking about records, kept import-light for the command line."""

from __future__ import annotations


class UnknownIdError(KeyError):
    """An id that is not in the index: says which side was searched."""

    def __str__(self) -> str:
        return str(self.args[0])
