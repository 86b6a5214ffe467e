"""A proxy's result: a value with a status, or a failure with its status and message. Free of torch, so that the
store and the metrics can be imported (and read) without it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

STATUSES = ("ok", "nan", "inf", "oom", "error", "timeout")  # what a store keeps: results the cell caused
# a proxy that cannot run on this kind of model (see zeronas.models.contract): a fact about the model, not the cell,
# so never stored
UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class Score:
    proxy: str
    value: float | None  # None unless status == "ok"
    status: str
    message: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
