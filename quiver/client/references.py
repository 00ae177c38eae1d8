"""``team/dataset@v3/path``: how a user names a dataset, a version of it and a path."""

from __future__ import annotations

from dataclasses import dataclass

from quiver.client.errors import QuiverError


@dataclass(frozen=True)
class Reference:
    dataset: str
    team: str | None = None
    version: int | None = None  # None: the working set
    path: str = ""

    def __str__(self) -> str:
        team = f"{self.team}/" if self.team else ""
        version = f"@v{self.version}" if self.version is not None else ""
        return f"{team}{self.dataset}{version}"


def parse_version(text: str) -> int:
    digits = text[1:] if text[:1] in "vV" else text
    if not digits.isdigit() or int(digits) < 1:
        raise QuiverError(f"{text!r} is not a version (v1, v2, …)", code="INVALID")
    return int(digits)


def parse_reference(text: str, *, with_path: bool = False) -> Reference:
    """``[team/]dataset[@vN]`` (and ``/path`` after it when ``with_path``)."""
    text = text.strip("/")
    parts = text.split("/")
    team: str | None = None
    if with_path:
        # team/dataset needs the @version or a second segment to be told from dataset/path;
        # a path's first segment never carries "@", so "team/ds@v1/x" is unambiguous.
        if len(parts) > 1 and "@" in parts[1] and "@" not in parts[0]:
            team, head, rest = parts[0], parts[1], parts[2:]
        else:
            head, rest = parts[0], parts[1:]
    else:
        if len(parts) > 2:
            raise QuiverError(f"{text!r} is not [team/]dataset[@vN]", code="INVALID")
        team, head, rest = (parts[0], parts[1], []) if len(parts) == 2 else (None, parts[0], [])
    name, _, version = head.partition("@")
    if not name:
        raise QuiverError(f"{text!r} names no dataset", code="INVALID")
    return Reference(
        dataset=name,
        team=team,
        version=parse_version(version) if version else None,
        path="/".join(rest),
    )
