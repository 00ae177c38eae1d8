"""Lineage: where data came from and where it went, as edges between datasets, versions
and external entities (experiments, models, deployments).

Every edge points downstream: ``source`` is where the data came from, ``target`` what
came of it. Copy, merge and new versions record theirs automatically (``COPIED_FROM``,
``MERGED_FROM``, ``VERSION_OF``: the target was copied from, merged from, or is a version
of the source); callers record ``USED_BY`` and ``PRODUCED`` (the source was used by, or
produced, the target) through ``record_lineage``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from quiver.auth import Viewer
from quiver.ids import decode_global_id, global_id_type
from quiver.models import (
    Dataset,
    ExternalEntity,
    ExternalKind,
    LineageEdge,
    LineageRelation,
    NodeKind,
    Role,
    User,
    Version,
)
from quiver.resolvers.access import (
    personal_team,
    readable_versions,
    require_role,
    require_user,
    team_for,
    visible_datasets,
    visible_external_entities,
)
from quiver.resolvers.errors import ArgumentError, ErrorCode, FieldPath, Problem, Refused
from quiver.resolvers.validation import check_short_text, raise_if_any

if TYPE_CHECKING:
    from quiver.resolvers.loaders import Loaders

MAX_DEPTH = 10
MAX_EXTERNAL_ID = 255
RECORDABLE = (LineageRelation.USED_BY, LineageRelation.PRODUCED)
_KIND_OF_TYPE = {
    "Dataset": NodeKind.DATASET,
    "Version": NodeKind.VERSION,
    "ExternalEntity": NodeKind.EXTERNAL,
}


class LineageDirection(StrEnum):
    UPSTREAM = "UPSTREAM"
    DOWNSTREAM = "DOWNSTREAM"
    BOTH = "BOTH"


NodeRow = Dataset | Version | ExternalEntity


@dataclass(frozen=True)
class NodeRef:
    kind: NodeKind
    pk: int

    @classmethod
    def dataset(cls, pk: int) -> NodeRef:
        return cls(NodeKind.DATASET, pk)

    @classmethod
    def version(cls, pk: int) -> NodeRef:
        return cls(NodeKind.VERSION, pk)

    @classmethod
    def from_global_id(cls, global_id: str) -> NodeRef | None:
        kind = _KIND_OF_TYPE.get(global_id_type(global_id) or "")
        pk = decode_global_id(global_id) if kind is not None else None
        return cls(kind, pk) if kind is not None and pk is not None else None


async def record_edge(
    source: NodeRef, target: NodeRef, relation: LineageRelation, user: User | None
) -> LineageEdge:
    """Add an edge, or return the existing one: recording twice changes nothing."""
    where: dict[str, Any] = {
        "source_kind": source.kind,
        "source_id": source.pk,
        "target_kind": target.kind,
        "target_id": target.pk,
        "relation": relation,
    }
    existing = await LineageEdge.filter(**where).first()
    if existing is not None:
        return existing
    try:
        # A savepoint, so a concurrent duplicate does not spoil the caller's transaction.
        async with in_transaction():
            return await LineageEdge.create(
                **where, created_by_id=user.id if user is not None else None
            )
    except IntegrityError:
        return await LineageEdge.get(**where)


async def forget_node(node: NodeRef) -> None:
    """Drop every edge touching a node that is going away."""
    await LineageEdge.filter(
        Q(source_kind=node.kind, source_id=node.pk) | Q(target_kind=node.kind, target_id=node.pk)
    ).delete()


async def forget_dataset(dataset_pk: int) -> None:
    """Drop the edges of a dataset removed for good, and of its versions."""
    ids = [version.id for version in await Version.filter(dataset_id=dataset_pk).only("id")]
    await forget_node(NodeRef.dataset(dataset_pk))
    if ids:
        await LineageEdge.filter(
            Q(source_kind=NodeKind.VERSION, source_id__in=ids)
            | Q(target_kind=NodeKind.VERSION, target_id__in=ids)
        ).delete()


@dataclass(frozen=True)
class ExternalSpec:
    kind: ExternalKind
    external_id: str
    name: str | None = None
    attributes: Any = None
    team_id: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """One end of an edge to record: a node by global ID, or an external entity."""

    id: str | None = None
    external: ExternalSpec | None = None


async def record_lineage(
    viewer: Viewer, source: Endpoint, target: Endpoint, relation: LineageRelation
) -> tuple[LineageEdge, NodeRow, NodeRow]:
    """Record that ``source`` was used by, or produced, ``target``.

    Reading a dataset is enough to say what used it; saying where a dataset or version
    came from (it is the target) needs WRITE on it. External entities are upserted by
    (kind, externalId).
    """
    user = require_user(viewer)
    if relation not in RECORDABLE:
        raise Refused.invalid(
            ("input", "relation"),
            f"{relation.value} edges are recorded automatically; record USED_BY or PRODUCED",
        )
    async with in_transaction():
        source_ref, source_row = await _endpoint(viewer, source, ("input", "source"), Role.READ)
        target_ref, target_row = await _endpoint(viewer, target, ("input", "target"), Role.WRITE)
        if source_ref == target_ref:
            raise Refused.invalid(("input", "target"), "An edge needs two different nodes")
        edge = await record_edge(source_ref, target_ref, relation, user)
    return edge, source_row, target_row


async def _endpoint(
    viewer: Viewer, endpoint: Endpoint, field: FieldPath, needed: Role
) -> tuple[NodeRef, NodeRow]:
    if (endpoint.id is None) == (endpoint.external is None):
        raise Refused.invalid(field, "Give exactly one of id and external")
    if endpoint.external is not None:
        entity = await _upsert_external(viewer, endpoint.external, field)
        return NodeRef(NodeKind.EXTERNAL, entity.id), entity
    ref = NodeRef.from_global_id(endpoint.id or "")
    id_field = (*field, "id")
    row: NodeRow | None = None
    if ref is not None and ref.kind == NodeKind.DATASET:
        row = await visible_datasets(viewer).get_or_none(id=ref.pk)
        if row is not None:
            await require_role(viewer, row, needed, id_field)
    elif ref is not None and ref.kind == NodeKind.VERSION:
        row = await readable_versions(viewer).get_or_none(id=ref.pk)
        if row is not None:
            await require_role(viewer, await Dataset.get(id=row.dataset_id), needed, id_field)
    elif ref is not None:
        row = await visible_external_entities(viewer).get_or_none(id=ref.pk)
    if ref is None or row is None:
        raise Refused.not_found(id_field, "No dataset, version or external entity with this id")
    return ref, row


async def _upsert_external(viewer: Viewer, spec: ExternalSpec, field: FieldPath) -> ExternalEntity:
    """The team's entity of (kind, externalId), made or updated: only the team's writers
    may, so no tenant renames or re-describes another's."""
    external_id = spec.external_id.strip()
    problems = check_short_text(spec.name, (*field, "external", "name"), "Name")
    if not external_id or len(external_id) > MAX_EXTERNAL_ID:
        message = f"externalId must be 1-{MAX_EXTERNAL_ID} characters"
        problems.append(Problem((*field, "external", "externalId"), message, ErrorCode.INVALID))
    if spec.attributes is not None and not isinstance(spec.attributes, dict):
        message = "attributes must be a JSON object"
        problems.append(Problem((*field, "external", "attributes"), message, ErrorCode.INVALID))
    raise_if_any(problems)
    team_field = (*field, "external", "teamId")
    if spec.team_id is not None:
        team = await team_for(viewer, spec.team_id, team_field, needed=Role.WRITE)
    else:
        team = await personal_team(viewer, team_field)
    entity, created = await ExternalEntity.get_or_create(
        owner_team_id=team.id,
        kind=spec.kind,
        external_id=external_id,
        defaults={"name": spec.name, "attributes": spec.attributes},
    )
    if not created and (spec.name is not None or spec.attributes is not None):
        # Given fields update the entity; omitted ones stay as recorded before.
        if spec.name is not None:
            entity.name = spec.name
        if spec.attributes is not None:
            entity.attributes = spec.attributes
        await entity.save(update_fields=["name", "attributes"])
    return entity


@dataclass
class Graph:
    """Nodes reached from a root and the edges between them, root first."""

    nodes: list[NodeRef] = field(default_factory=list)
    edges: list[LineageEdge] = field(default_factory=list)


async def walk(root: NodeRef, direction: LineageDirection, depth: int, loaders: Loaders) -> Graph:
    """Breadth-first from ``root``, at most ``depth`` edges away: one edge query per level.

    Nodes the viewer cannot see are neither returned nor walked through, and edges to
    them are left out, so a graph never reveals what its reader may not read.
    """
    if depth < 0 or depth > MAX_DEPTH:
        raise ArgumentError(f"`depth` must be between 0 and {MAX_DEPTH}")
    graph = Graph(nodes=[root])
    seen = {root}
    seen_edges: set[int] = set()
    frontier = [root]
    for _ in range(depth):
        if not frontier:
            break
        edges = await _edges_touching(frontier, direction)
        candidates = {
            ref for edge in edges for ref in (_source(edge), _target(edge)) if ref not in seen
        }
        allowed = await visible_nodes(loaders, candidates)
        frontier = sorted(allowed, key=lambda ref: (ref.kind.value, ref.pk))
        seen.update(allowed)
        graph.nodes.extend(frontier)
        for edge in edges:
            if edge.id not in seen_edges and _source(edge) in seen and _target(edge) in seen:
                seen_edges.add(edge.id)
                graph.edges.append(edge)
    return graph


async def _edges_touching(
    frontier: Iterable[NodeRef], direction: LineageDirection
) -> list[LineageEdge]:
    by_kind: dict[NodeKind, list[int]] = {}
    for ref in frontier:
        by_kind.setdefault(ref.kind, []).append(ref.pk)
    condition = Q()
    for kind, pks in by_kind.items():
        if direction in (LineageDirection.DOWNSTREAM, LineageDirection.BOTH):
            condition |= Q(source_kind=kind, source_id__in=pks)
        if direction in (LineageDirection.UPSTREAM, LineageDirection.BOTH):
            condition |= Q(target_kind=kind, target_id__in=pks)
    return await LineageEdge.filter(condition).order_by("id")


def _source(edge: LineageEdge) -> NodeRef:
    return NodeRef(NodeKind(edge.source_kind), edge.source_id)


def _target(edge: LineageEdge) -> NodeRef:
    return NodeRef(NodeKind(edge.target_kind), edge.target_id)


async def load_node(loaders: Loaders, ref: NodeRef) -> NodeRow | None:
    """The row behind a node if the viewer may see it (through the request's loaders)."""
    if ref.kind == NodeKind.DATASET:
        return await loaders.dataset_by_id.load(ref.pk)
    if ref.kind == NodeKind.VERSION:
        return await loaders.version_by_id.load(ref.pk)
    return await loaders.external_entity_by_id.load(ref.pk)


async def visible_nodes(loaders: Loaders, refs: Iterable[NodeRef]) -> set[NodeRef]:
    """Which of ``refs`` the viewer may see; loaded together, so in one batch per kind."""
    wanted = list(refs)
    rows = await asyncio.gather(*(load_node(loaders, ref) for ref in wanted))
    return {ref for ref, row in zip(wanted, rows, strict=True) if row is not None}
