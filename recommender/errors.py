"""The errors a user can cause (a bad file, an unknown id, a damaged index, an impossible request).

Each says what to change; the command line prints it as one message and the service answers it as a 4xx,
never a traceback. Every one of them is a ``TechmatchError``; the embedders' own four (an unknown model
spec, a model that will not load, a damaged static embedding, damaged tuned e5 weights) live below this
package and are listed beside it in ``USER_ERRORS``.
"""

from __future__ import annotations

from embeddings.contrastive import TunedModelError
from embeddings.factory import UnknownModelError
from embeddings.sentence_transformer import ModelLoadError
from embeddings.static import StaticModelError


class TechmatchError(Exception):
    """Base of every error caused by what the user gave or asked for."""


class UserError(TechmatchError):
    """A request that cannot be done as asked (conflicting options, a value out of range, ...)."""


class UnknownIdError(TechmatchError, KeyError):
    """An id that is not in the index: says which side was searched."""

    def __str__(self) -> str:
        return str(self.args[0])


class EmptyIndexError(TechmatchError):
    """A search or triage that needs records of a side that holds none yet (e.g. no needs to push to)."""


USER_ERRORS: tuple[type[BaseException], ...] = (TechmatchError, UnknownModelError, ModelLoadError, StaticModelError,
                                              TunedModelError)
