"""Lineage in GraphQL: external entities, edges, graphs, ``lineage`` and ``recordLineage``."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from quiver import models
from quiver.context import Context, Info
from quiver.ids import encode_global_id
from quiver.models import ExternalKind, LineageRelation, NodeKind
from quiver.resolvers import lineage as ops
from quiver.resolvers.errors import ArgumentError
from quiver.resolvers.lineage import LineageDirection, NodeRef
from quiver.schema.errors import UserError, mutation, user_errors_field
from quiver.schema.node import Node, global_id_resolver, node_loader
from quiver.schema.scalars import JSON

if TYPE_CHECKING:
    from quiver.schema.datasets import Dataset
    from quiver.schema.users import Team
    from quiver.schema.versions import Version

strawberry.enum(ExternalKind, description="What an external entity is.")
strawberry.enum(
    LineageRelation,
    description="How the target came from the source: COPIED_FROM, MERGED_FROM, VERSION_OF "
    "and CONVERTED_FROM are recorded automatically (the target was copied, merged, versioned "
    "or converted from the source); USED_BY and PRODUCED are recorded by callers (the source "
    "was used by, or produced, the target).",
)
strawberry.enum(LineageDirection, description="Which way to walk lineage.")

_TYPE_OF_KIND = {
    NodeKind.DATASET: "Dataset",
    NodeKind.VERSION: "Version",
    NodeKind.EXTERNAL: "ExternalEntity",
}


@strawberry.type(description="An experiment, model or deployment that lives in another system.")
class ExternalEntity(Node):
    id: strawberry.ID = strawberry.field(
        resolver=global_id_resolver("ExternalEntity"), description="The global ID."
    )
    kind: ExternalKind = strawberry.field(description="EXPERIMENT, MODEL or DEPLOYMENT.")
    external_id: str = strawberry.field(description="Its ID in the system it lives in.")
    name: str | None = strawberry.field(description="A name for people.")
    attributes: JSON | None = strawberry.field(description="Free JSON (URLs, metrics, …).")
    created_at: datetime = strawberry.field(description="When it was first recorded.")

    @strawberry.field(
        description="The team it belongs to: (kind, externalId) names one entity per team. "
        "Null for entities recorded before teams owned them.",
        graphql_type=Annotated["Team", strawberry.lazy("quiver.schema.users")] | None,
    )
    def owner(
        self, root: strawberry.Parent[models.ExternalEntity], info: Info
    ) -> Awaitable[models.Team | None] | None:
        if root.owner_team_id is None:
            return None
        return info.context.loaders.team_by_id.load(root.owner_team_id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, models.ExternalEntity)


@node_loader("ExternalEntity")
async def _load_external(context: Context, pk: int) -> models.ExternalEntity | None:
    return await context.loaders.external_entity_by_id.load(pk)


# Datasets and versions show their lineage, so their modules import this one: the union
# names them lazily, and the import cycle exists for the type checker only.
LineageNode = Annotated[
    Annotated["Dataset", strawberry.lazy("quiver.schema.datasets")]
    | Annotated["Version", strawberry.lazy("quiver.schema.versions")]
    | ExternalEntity,
    strawberry.union("LineageNode", description="Something data comes from or goes to."),
]


@strawberry.type(description="Data flowed from source to target.")
class LineageEdge:
    relation: LineageRelation = strawberry.field(description="How it flowed.")
    created_at: datetime = strawberry.field(description="When it was recorded.")

    @strawberry.field(description="Global ID of the upstream node.")
    def source(self, root: strawberry.Parent[models.LineageEdge]) -> strawberry.ID:
        return _global_id(NodeKind(root.source_kind), root.source_id)

    @strawberry.field(description="Global ID of the downstream node.")
    def target(self, root: strawberry.Parent[models.LineageEdge]) -> strawberry.ID:
        return _global_id(NodeKind(root.target_kind), root.target_id)


LineageRow = models.Dataset | models.Version | models.ExternalEntity


@strawberry.type(description="Nodes reachable from a root (the first node) and their edges.")
class LineageGraph:
    nodes: list[LineageRow] = strawberry.field(
        description="The root first, then by distance.", graphql_type=list[LineageNode]
    )
    edges: list[models.LineageEdge] = strawberry.field(
        description="Edges between those nodes.", graphql_type=list[LineageEdge]
    )


def _global_id(kind: NodeKind, pk: int) -> strawberry.ID:
    return strawberry.ID(encode_global_id(_TYPE_OF_KIND[kind], pk))


async def lineage_of(
    info: Info, root: NodeRef, direction: LineageDirection, depth: int
) -> LineageGraph:
    loaders = info.context.loaders
    graph = await ops.walk(root, direction, depth, loaders)
    rows = [await ops.load_node(loaders, ref) for ref in graph.nodes]
    return LineageGraph(nodes=[row for row in rows if row is not None], edges=graph.edges)


@strawberry.input(description="An experiment, model or deployment, upserted by kind and ID.")
class ExternalEntityInput:
    kind: ExternalKind = strawberry.field(description="What it is.")
    external_id: str = strawberry.field(description="Its ID in its own system (1-255 chars).")
    name: str | None = strawberry.field(default=None, description="A name; updates it if given.")
    attributes: JSON | None = strawberry.field(
        default=None, description="Free JSON; replaces the recorded attributes if given."
    )
    team_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The team whose entity this is (recording it or changing it needs the "
        "WRITE role in the team); null means your personal team. Each team has its own "
        "entity for a (kind, externalId).",
    )


@strawberry.input(description="One end of an edge: give exactly one of id and external.")
class LineageEndpointInput:
    id: strawberry.ID | None = strawberry.field(
        default=None, description="A Dataset, Version or ExternalEntity ID."
    )
    external: ExternalEntityInput | None = strawberry.field(
        default=None, description="An external entity, created if new."
    )


@strawberry.input(description="Record that the source was used by, or produced, the target.")
class RecordLineageInput:
    source: LineageEndpointInput = strawberry.field(description="Upstream: where data came from.")
    target: LineageEndpointInput = strawberry.field(description="Downstream: what came of it.")
    relation: LineageRelation = strawberry.field(description="USED_BY or PRODUCED.")


@strawberry.type(description="Result of recordLineage.")
class LineagePayload:
    edge: models.LineageEdge | None = strawberry.field(
        default=None, description="The edge.", graphql_type=LineageEdge | None
    )
    source: LineageRow | None = strawberry.field(
        default=None, description="Its source.", graphql_type=LineageNode | None
    )
    target: LineageRow | None = strawberry.field(
        default=None, description="Its target.", graphql_type=LineageNode | None
    )
    user_errors: list[UserError] = user_errors_field()


def _endpoint(given: LineageEndpointInput) -> ops.Endpoint:
    external = None
    if given.external is not None:
        external = ops.ExternalSpec(
            kind=given.external.kind,
            external_id=given.external.external_id,
            name=given.external.name,
            attributes=given.external.attributes,
            team_id=given.external.team_id,
        )
    return ops.Endpoint(id=given.id, external=external)


@strawberry.type
class LineageQuery:
    @strawberry.field(
        description="The lineage graph around a dataset, version or external entity: "
        "UPSTREAM (where it came from), DOWNSTREAM (what came of it) or BOTH, up to `depth` "
        "edges away (at most 10)."
    )
    async def lineage(
        self,
        info: Info,
        id: strawberry.ID,
        direction: LineageDirection = LineageDirection.BOTH,
        depth: int = 3,
    ) -> LineageGraph:
        root = NodeRef.from_global_id(id)
        if root is None or await ops.load_node(info.context.loaders, root) is None:
            raise ArgumentError.not_found(
                "id", "`id` is not a dataset, version or external entity you can read"
            )
        return await lineage_of(info, root, direction, depth)


@strawberry.type
class LineageMutation:
    @mutation(
        description="Record an edge to or from an external entity, dataset or version "
        "(READ on a source dataset, WRITE on a target one)."
    )
    async def record_lineage(self, info: Info, input: RecordLineageInput) -> LineagePayload:
        edge, source, target = await ops.record_lineage(
            info.context.viewer, _endpoint(input.source), _endpoint(input.target), input.relation
        )
        return LineagePayload(edge=edge, source=source, target=target)
