"""Who a result should be pushed to: an enterprise (through one of its needs) or a fund, with the reason."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass
class PushTarget:
    """One recipient of a push and why; ``need_id`` is the need that makes an enterprise a recipient."""

    kind: Literal["enterprise", "fund"]
    id: str
    name: str
    score: float
    reason: str
    need_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["score"] = round(self.score, 4)
        return out
