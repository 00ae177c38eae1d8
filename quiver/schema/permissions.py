"""Field permissions declared on the schema; what they allow is decided in resolvers.access."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from quiver.context import Info
from quiver.resolvers.access import sees_private_fields_of


class IsSelfOrAdmin(BasePermission):
    """The field belongs to the user it describes: only they and admins may read it."""

    message = "Only the user themself or an admin may see this"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return sees_private_fields_of(info.context.viewer, source.id)
