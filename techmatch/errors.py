"""The errors a user can cause (bad files, bad ids, wrong index): shown as messages, never tracebacks."""

from __future__ import annotations

from embeddings.factory import UnknownModelError
from embeddings.sentence_transformer import ModelLoadError
from recommender.ann.base import IndexLoadError
from recommender.errors import UnknownIdError
from recommender.records import RecordFileError


class UserError(Exception):
    """Any other problem with what the user asked for, with a message that says what to change."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    RecordFileError, IndexLoadError, UnknownModelError, ModelLoadError, UserError, UnknownIdError,
)
