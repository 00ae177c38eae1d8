"""What an import or export could not carry over, counted per kind of loss."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Loss:
    code: str
    message: str
    count: int


class LossReport:
    """Counts losses by code: ``add("ROTATION_DROPPED", "rotation dropped for {n} box(es)")``."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._messages: dict[str, tuple[str, str]] = {}

    def add(self, code: str, one: str, many: str | None = None, n: int = 1) -> None:
        if n <= 0:
            return
        self._counts[code] = self._counts.get(code, 0) + n
        self._messages.setdefault(code, (one, many or one))

    def count(self, code: str) -> int:
        return self._counts.get(code, 0)

    def losses(self) -> list[Loss]:
        result = []
        for code, n in self._counts.items():
            one, many = self._messages[code]
            result.append(Loss(code, (one if n == 1 else many).format(n=n), n))
        return result

    def lines(self) -> list[str]:
        return [loss.message for loss in self.losses()]

    def __bool__(self) -> bool:
        return bool(self._counts)
