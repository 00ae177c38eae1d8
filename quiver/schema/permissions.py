"""Field permissions declared on the schema (row visibility lives in resolvers.access)."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from quiver.context import Info


class IsSelfOrAdmin(BasePermission):
    """The field belongs to the user it describes: only they and admins may read it."""

    message = "Only the user themself or an admin may see this"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = info.context.viewer
        return viewer.is_admin or (viewer.user_id is not None and viewer.user_id == source.id)
