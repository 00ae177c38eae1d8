"""Who may see and change what: the one place permissions are decided.

Each resource has a queryset of the rows a viewer may read (``visible_*``); loaders and
HTTP endpoints are built on them, so no resolver decides visibility itself. Something a
caller cannot read is NOT_FOUND (or null), exactly like something that does not exist.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any, TypeVar

from tortoise.expressions import Q, Subquery
from tortoise.models import Model
from tortoise.queryset import QuerySet

from quiver.auth import Viewer
from quiver.ids import decode_global_id, global_id_type
from quiver.models import (
    Annotation,
    ApiKey,
    Blob,
    BlobGrant,
    Dataset,
    DatasetFile,
    DatasetShare,
    DirectUpload,
    ExternalEntity,
    Job,
    Label,
    LineageEdge,
    Membership,
    NodeKind,
    Role,
    Sample,
    Team,
    Upload,
    User,
    Version,
    VersionAnnotation,
    VersionEntry,
    VersionLabel,
    VersionSample,
    Visibility,
)
from quiver.resolvers.errors import ErrorCode, FieldPath, Refused

M = TypeVar("M", bound=Model)


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


# People and teams belong to no dataset. Signed-in callers may look any of them up (to share
# a dataset with someone); anonymous callers see only those a public dataset shows: its
# owner team and that team's members, and the creators of it and of its versions. External
# entities belong to a team: its members see them, and anyone sees those joined by an edge
# to a dataset or version they can read. Every path (node, typed fields, lineage, HTTP)
# loads them through these querysets.


def visible_teams(viewer: Viewer) -> QuerySet[Team]:
    """Teams the viewer may see."""
    if viewer.is_authenticated:
        return Team.all()
    return Team.filter(id__in=Subquery(visible_datasets(viewer).values("owner_team_id")))


def visible_memberships(viewer: Viewer) -> QuerySet[Membership]:
    """Memberships of the teams the viewer may see."""
    if viewer.is_authenticated:
        return Membership.all()
    return Membership.filter(team_id__in=Subquery(visible_teams(viewer).values("id")))


def visible_users(viewer: Viewer) -> QuerySet[User]:
    """Users the viewer may see (their e-mail is decided by ``sees_private_fields_of``)."""
    if viewer.is_authenticated:
        return User.all()
    datasets = visible_datasets(viewer)
    return User.filter(
        Q(id__in=Subquery(visible_memberships(viewer).values("user_id")))
        | Q(id__in=Subquery(datasets.filter(created_by_id__isnull=False).values("created_by_id")))
        | Q(
            id__in=Subquery(
                readable_versions(viewer)
                .filter(created_by_id__isnull=False)
                .values("created_by_id")
            )
        )
    )


def sees_private_fields_of(viewer: Viewer, user_id: int) -> bool:
    """Whether the viewer may read a user's e-mail and API keys: the user themself or admins."""
    return viewer.is_admin or (viewer.user_id is not None and viewer.user_id == user_id)


def _none(model: type[M]) -> QuerySet[M]:
    return model.filter(id__in=[])


def visible_api_keys(viewer: Viewer) -> QuerySet[ApiKey]:
    """The viewer's own keys; every key for admins; none for anonymous callers."""
    if viewer.is_admin:
        return ApiKey.all()
    return ApiKey.filter(user_id=viewer.user_id) if viewer.user is not None else _none(ApiKey)


def visible_uploads(viewer: Viewer) -> QuerySet[Upload]:
    """Uploads the viewer started; every upload for admins; none for anonymous callers."""
    if viewer.is_admin:
        return Upload.all()
    return Upload.filter(user_id=viewer.user_id) if viewer.user is not None else _none(Upload)


def visible_direct_uploads(viewer: Viewer) -> QuerySet[DirectUpload]:
    """Direct-to-S3 uploads the viewer started; every one for admins; none for anonymous."""
    if viewer.is_admin:
        return DirectUpload.all()
    if viewer.user is None:
        return _none(DirectUpload)
    return DirectUpload.filter(user_id=viewer.user_id)


def visible_external_entities(viewer: Viewer) -> QuerySet[ExternalEntity]:
    """External entities the viewer may see: those of the viewer's teams, and those joined
    by a lineage edge to a dataset or version the viewer can read (anonymous callers: only
    these); every one for admins. An entity of another tenant that touches nothing the
    viewer can read is NOT_FOUND, like one that does not exist."""
    if viewer.is_admin:
        return ExternalEntity.all()
    datasets = Subquery(visible_datasets(viewer).values("id"))
    versions = Subquery(readable_versions(viewer).values("id"))
    external = NodeKind.EXTERNAL
    downstream = LineageEdge.filter(
        Q(source_kind=NodeKind.DATASET, source_id__in=datasets)
        | Q(source_kind=NodeKind.VERSION, source_id__in=versions),
        target_kind=external,
    ).values("target_id")
    upstream = LineageEdge.filter(
        Q(target_kind=NodeKind.DATASET, target_id__in=datasets)
        | Q(target_kind=NodeKind.VERSION, target_id__in=versions),
        source_kind=external,
    ).values("source_id")
    linked = Q(id__in=Subquery(downstream)) | Q(id__in=Subquery(upstream))
    if viewer.user is None:
        return ExternalEntity.filter(linked)
    return ExternalEntity.filter(linked | Q(owner_team_id__in=list(viewer.team_roles)))


def visible_jobs(viewer: Viewer) -> QuerySet[Job]:
    """Jobs of datasets the viewer may read, and jobs the viewer started whose dataset is
    gone; every job for admins."""
    if viewer.is_admin:
        return Job.all()
    readable = Q(dataset_id__in=Subquery(visible_datasets(viewer).values("id")))
    if viewer.user is None:
        return Job.filter(readable)
    return Job.filter(readable | Q(dataset_id=None, created_by_id=viewer.user_id))


async def job_for(viewer: Viewer, global_id: str, field: FieldPath) -> Job:
    """The job named by ``global_id`` if the viewer may read it; NOT_FOUND otherwise."""
    pk = decode_global_id(global_id, "Job")
    job = await visible_jobs(viewer).get_or_none(id=pk) if pk is not None else None
    if job is None:
        raise Refused.not_found(field, "No job with this id")
    return job


async def require_job_control(viewer: Viewer, job: Job, needed: Role, field: FieldPath) -> None:
    """Refuse to cancel, retry or delete a job unless the viewer started it or holds
    ``needed`` (what starting a job of its kind needs, and at least WRITE: a reader may
    start an export but not stop someone else's) on its dataset."""
    require_user(viewer)
    if viewer.is_admin or job.created_by_id == viewer.user_id:
        return
    dataset = await Dataset.get_or_none(id=job.dataset_id) if job.dataset_id else None
    if dataset is None:
        raise Refused.forbidden(field, "Only whoever started this job may change it")
    await require_role(viewer, dataset, Role.WRITE if needed == Role.READ else needed, field)


def visible_files(viewer: Viewer) -> QuerySet[DatasetFile]:
    """Working-set files of the datasets the viewer may read."""
    return DatasetFile.filter(dataset_id__in=Subquery(visible_datasets(viewer).values("id")))


def visible_version_entries(viewer: Viewer) -> QuerySet[VersionEntry]:
    """Files of the versions the viewer may read."""
    return VersionEntry.filter(version_id__in=Subquery(readable_versions(viewer).values("id")))


# Labels, samples and annotations belong to a dataset (or a version of it): whoever may read
# the dataset reads them; changing them needs WRITE on it (``dataset_for``, ``require_role``).


def visible_labels(viewer: Viewer) -> QuerySet[Label]:
    """Labels of the datasets the viewer may read."""
    return Label.filter(dataset_id__in=Subquery(visible_datasets(viewer).values("id")))


def visible_samples(viewer: Viewer) -> QuerySet[Sample]:
    """Samples of the datasets the viewer may read."""
    return Sample.filter(dataset_id__in=Subquery(visible_datasets(viewer).values("id")))


def visible_annotations(viewer: Viewer) -> QuerySet[Annotation]:
    """Annotations of the datasets the viewer may read."""
    return Annotation.filter(dataset_id__in=Subquery(visible_datasets(viewer).values("id")))


def visible_version_labels(viewer: Viewer) -> QuerySet[VersionLabel]:
    """Labels of the versions the viewer may read."""
    return VersionLabel.filter(version_id__in=Subquery(readable_versions(viewer).values("id")))


def visible_version_samples(viewer: Viewer) -> QuerySet[VersionSample]:
    """Samples of the versions the viewer may read."""
    return VersionSample.filter(version_id__in=Subquery(readable_versions(viewer).values("id")))


def visible_version_annotations(viewer: Viewer) -> QuerySet[VersionAnnotation]:
    """Annotations of the versions the viewer may read."""
    return VersionAnnotation.filter(version_id__in=Subquery(readable_versions(viewer).values("id")))


async def label_for(viewer: Viewer, global_id: str, needed: Role, field: FieldPath) -> Label:
    """The label named by ``global_id`` if the viewer holds ``needed`` on its dataset."""
    pk = decode_global_id(global_id, "Label")
    label = await visible_labels(viewer).get_or_none(id=pk) if pk is not None else None
    if label is None:
        raise Refused.not_found(field, "No label with this id")
    await require_role(viewer, await Dataset.get(id=label.dataset_id), needed, field)
    return label


async def job_behind_signed_link(global_id: str) -> Job | None:
    """The job whose result a signed link names, whoever follows it (as for files: the
    link was minted for a reader of the job, and is the permission until it expires)."""
    pk = decode_global_id(global_id, "Job")
    return await Job.get_or_none(id=pk) if pk is not None else None


async def file_behind_signed_link(global_id: str) -> DatasetFile | VersionEntry | None:
    """The file a signed link names, whoever follows it: links are minted only for callers
    who can read the file, and the link (its signature checked before this is asked) is the
    permission until it expires. None once the file no longer exists."""
    kind = global_id_type(global_id)
    pk = decode_global_id(global_id, kind)
    if pk is None:
        return None
    if kind == "File":
        return await DatasetFile.get_or_none(id=pk)
    if kind == "VersionFile":
        return await VersionEntry.get_or_none(id=pk)
    return None


_BLOB_BATCH = 500


async def readable_blobs(viewer: Viewer, sha256s: Collection[str]) -> set[str]:
    """Of these stored blobs, those the viewer may read: named by a file or version of a
    dataset it can read, or sent by the viewer itself (a grant, a finished tus upload).

    Bytes are stored once for everyone, so this, not storage, is what keeps the transfer
    API from telling a caller that some other tenant holds a given content.
    """
    wanted = sorted(set(sha256s))
    readable: set[str] = set()
    for start in range(0, len(wanted), _BLOB_BATCH):
        batch = wanted[start : start + _BLOB_BATCH]
        if viewer.is_admin:
            found = await Blob.filter(sha256__in=batch).values_list("sha256", flat=True)
            readable.update(str(sha256) for sha256 in found)
            continue
        queries: list[QuerySet[Any]] = [
            visible_files(viewer).filter(blob_id__in=batch),
            visible_version_entries(viewer).filter(blob_id__in=batch),
        ]
        if viewer.user_id is not None:
            queries.append(BlobGrant.filter(user_id=viewer.user_id, blob_id__in=batch))
            queries.append(Upload.filter(user_id=viewer.user_id, blob_id__in=batch))
        for query in queries:
            pending = [sha256 for sha256 in batch if sha256 not in readable]
            if not pending:
                break
            rows = (
                await query.filter(blob_id__in=pending).distinct().values_list("blob_id", flat=True)
            )
            readable.update(str(sha256) for sha256 in rows)
    return readable


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


async def may_send_files(viewer: Viewer, dataset_ids: Sequence[str] | None) -> bool:
    """Whether the file parts of a multipart request may be read (spooled) at all: only when
    the operation's upload mutations all name datasets the viewer may write to. Otherwise
    the parts are left unread, and each mutation refuses as it would with them."""
    if not dataset_ids or viewer.user is None:
        return False
    for global_id in dict.fromkeys(dataset_ids):
        pk = decode_global_id(global_id, "Dataset")
        dataset = await visible_datasets(viewer).get_or_none(id=pk) if pk is not None else None
        role = await role_on(viewer, dataset) if dataset is not None else None
        if role is None or not role.includes(Role.WRITE):
            return False
    return True


async def require_role(viewer: Viewer, dataset: Dataset, needed: Role, field: FieldPath) -> None:
    """Refuse unless the viewer holds ``needed`` on a dataset it can already see."""
    role = await role_on(viewer, dataset)
    if role is None or not role.includes(needed):
        if viewer.user is None:
            require_user(viewer)
        raise Refused.forbidden(field, f"This needs the {needed.value} role on the dataset")


async def team_for(
    viewer: Viewer, global_id: str, field: FieldPath, *, needed: Role | None = None
) -> Team:
    """The team named by ``global_id``, if the viewer may see it and holds ``needed`` in it."""
    pk = decode_global_id(global_id, "Team")
    team = await visible_teams(viewer).get_or_none(id=pk) if pk is not None else None
    if team is None:
        raise Refused.not_found(field, "No team with this id")
    if needed is not None and not can_act_for_team(viewer, team.id, needed):
        require_user(viewer)
        raise Refused.forbidden(field, f"This needs the {needed.value} role in the team")
    return team


async def user_for(viewer: Viewer, global_id: str, field: FieldPath) -> User:
    """The user named by ``global_id``, if the viewer may see them."""
    pk = decode_global_id(global_id, "User")
    user = await visible_users(viewer).get_or_none(id=pk) if pk is not None else None
    if user is None:
        raise Refused.not_found(field, "No user with this id")
    return user


async def api_key_for(viewer: Viewer, global_id: str, field: FieldPath) -> ApiKey:
    """The API key named by ``global_id``, if it is the viewer's own (or the viewer is admin)."""
    pk = decode_global_id(global_id, "ApiKey")
    api_key = await visible_api_keys(viewer).get_or_none(id=pk) if pk is not None else None
    if api_key is None:
        raise Refused.not_found(field, "No API key with this id")
    return api_key


def require_admin(viewer: Viewer, message: str) -> None:
    """Refuse unless the viewer administers this server."""
    require_user(viewer)
    if not viewer.is_admin:
        raise Refused.forbidden(None, message)


async def personal_team(viewer: Viewer, field: FieldPath) -> Team:
    """The signed-in caller's personal team: what they make belongs to it unless they name
    another."""
    user = require_user(viewer)
    team = await Team.get_or_none(personal_user_id=user.id)
    if team is None:
        raise Refused.invalid(field, "You have no personal team; name a team")
    return team
