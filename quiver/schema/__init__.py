"""The GraphQL surface: types, inputs, payloads; ``build_schema`` assembles them."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext
from tortoise.models import Model

from quiver.config import Settings
from quiver.context import Info
from quiver.schema.archives import ArchiveMutation
from quiver.schema.commits import CommitMutation
from quiver.schema.datasets import Dataset, DatasetMutation, DatasetQuery
from quiver.schema.extensions import limit_extensions
from quiver.schema.files import File, FileMutation
from quiver.schema.interchange import InterchangeMutation
from quiver.schema.jobs import Job, JobMutation, JobQuery
from quiver.schema.label_mutations import LabelMutation
from quiver.schema.labels import Label, Sample
from quiver.schema.lineage import ExternalEntity, LineageMutation, LineageQuery
from quiver.schema.node import Node, resolve_node
from quiver.schema.scalars import SCALAR_MAP
from quiver.schema.subscriptions import Subscription
from quiver.schema.transfers import TransferMutation
from quiver.schema.users import ApiKey, Team, User, UserMutation, UserQuery
from quiver.schema.versions import Version, VersionMutation, VersionQuery


@strawberry.type(description="Read the dataset graph.")
class Query(DatasetQuery, VersionQuery, LineageQuery, UserQuery, JobQuery):
    @strawberry.field(
        description="Any object by its global ID; null if unknown or hidden.",
        graphql_type=Node | None,
    )
    async def node(self, info: Info, id: strawberry.ID) -> Model | None:
        return await resolve_node(info, id)


@strawberry.type(description="Change the dataset graph.")
class Mutation(
    DatasetMutation,
    TransferMutation,
    FileMutation,
    ArchiveMutation,
    CommitMutation,
    VersionMutation,
    LineageMutation,
    UserMutation,
    LabelMutation,
    InterchangeMutation,
    JobMutation,
):
    pass


class QuiverSchema(strawberry.federation.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log nothing here: faults are logged once, with the request id, where they are
        masked (``MaskInternalErrors``), and a caller's mistake (a bad cursor, a too-deep
        query) is the caller's to read in the response, not a server event."""


def build_schema(settings: Settings | None = None) -> strawberry.federation.Schema:
    settings = settings or Settings()
    return QuiverSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Dataset, File, Version, ExternalEntity, User, Team, ApiKey, Label, Sample, Job],
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        federation_version="2.7",
        extensions=limit_extensions(
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_tokens,
        ),
    )


schema = build_schema()
