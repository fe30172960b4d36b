"""The clock services read. Pure modules never read one: time comes to them as ``as_of``."""

from __future__ import annotations

from typing import Any, Protocol


class Clock(Protocol):
    """What services need of a reactor's clock (twisted.internet.task.Clock in tests)."""

    def seconds(self) -> float: ...

    def callLater(self, delay: float, f: Any, *args: Any, **kwargs: Any) -> Any: ...  # noqa: N802
