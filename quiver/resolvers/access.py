"""Who may see and change a dataset: the one place permissions are decided."""

from __future__ import annotations

from collections.abc import Iterable

from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from quiver.auth import Viewer
from quiver.ids import decode_global_id
from quiver.models import Dataset, DatasetShare, Role, User, Version, Visibility
from quiver.resolvers.errors import ErrorCode, FieldPath, Refused


def visible_datasets(viewer: Viewer) -> QuerySet[Dataset]:
    """Every dataset the viewer may read, deleted ones included (callers filter status)."""
    datasets = Dataset.all()
    if viewer.is_admin:
        return datasets
    public = Q(visibility=Visibility.PUBLIC)
    if viewer.user is None:
        return datasets.filter(public)
    shared = viewer_shares(viewer).values("dataset_id")
    return datasets.filter(
        public | Q(owner_team_id__in=list(viewer.team_roles)) | Q(id__in=Subquery(shared))
    )


def readable_versions(viewer: Viewer) -> QuerySet[Version]:
    """Versions of datasets the viewer may read: live ones, and deleted ones kept for lineage."""
    return Version.filter(dataset_id__in=Subquery(visible_datasets(viewer).values("id")))


def viewer_shares(viewer: Viewer) -> QuerySet[DatasetShare]:
    """Grants made to the viewer directly or to one of the viewer's teams."""
    user_id = viewer.user.id if viewer.user is not None else None
    return DatasetShare.filter(Q(user_id=user_id) | Q(team_id__in=list(viewer.team_roles)))


def strongest_role(viewer: Viewer, dataset: Dataset, shared: Iterable[Role]) -> Role | None:
    """The viewer's role on ``dataset`` given the roles shared with them; None: no access."""
    if viewer.is_admin:
        return Role.ADMIN
    roles = list(shared)
    if dataset.visibility == Visibility.PUBLIC:
        roles.append(Role.READ)
    if (team_role := viewer.team_roles.get(dataset.owner_team_id)) is not None:
        roles.append(team_role)
    return max(roles, key=lambda role: role.rank, default=None)


async def role_on(viewer: Viewer, dataset: Dataset) -> Role | None:
    """The strongest role the viewer holds on ``dataset``, or None when it cannot read it."""
    shared: list[Role] = []
    if viewer.user is not None and not viewer.is_admin:
        rows = (
            await viewer_shares(viewer).filter(dataset_id=dataset.id).values_list("role", flat=True)
        )
        shared = [Role(str(role)) for role in rows]
    return strongest_role(viewer, dataset, shared)


def can_act_for_team(viewer: Viewer, team_id: int, needed: Role) -> bool:
    """Whether the viewer may create or move things into ``team_id``."""
    if viewer.is_admin:
        return True
    role = viewer.team_roles.get(team_id)
    return role is not None and role.includes(needed)


def require_user(viewer: Viewer) -> User:
    """The signed-in user, or an UNAUTHENTICATED refusal."""
    if viewer.user is None:
        raise Refused.one(
            None, "Sign in with an API key or token to do this", ErrorCode.UNAUTHENTICATED
        )
    return viewer.user


async def dataset_for(viewer: Viewer, global_id: str, needed: Role, field: FieldPath) -> Dataset:
    """The dataset named by ``global_id`` if the viewer holds ``needed`` on it.

    A dataset the viewer cannot read is NOT_FOUND, exactly like one that does not exist,
    so private datasets never leak their existence.
    """
    pk = decode_global_id(global_id, "Dataset")
    dataset = await visible_datasets(viewer).get_or_none(id=pk) if pk is not None else None
    if dataset is None:
        raise Refused.not_found(field, "No dataset with this id")
    await require_role(viewer, dataset, needed, field)
    return dataset


async def require_role(viewer: Viewer, dataset: Dataset, needed: Role, field: FieldPath) -> None:
    """Refuse unless the viewer holds ``needed`` on a dataset it can already see."""
    role = await role_on(viewer, dataset)
    if role is None or not role.includes(needed):
        if viewer.user is None:
            require_user(viewer)
        raise Refused.forbidden(field, f"This needs the {needed.value} role on the dataset")
