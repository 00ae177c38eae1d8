"""Where data came from and where it went: edges between datasets, versions and outsiders."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from quiver.models.enums import ExternalKind, LineageRelation
from quiver.models.users import Team, User


class NodeKind(StrEnum):
    DATASET = "DATASET"
    VERSION = "VERSION"
    EXTERNAL = "EXTERNAL"


class ExternalEntity(Model):
    """An experiment, model or deployment that lives in another system.

    Each team has its own: a (kind, external id) names one entity in a team, so no team
    can rename or re-describe another's. Entities recorded before teams owned them have
    none, and nobody can change them any more.
    """

    id = fields.BigIntField(primary_key=True)
    owner_team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="external_entities", null=True, on_delete=fields.SET_NULL
    )
    owner_team_id: int | None
    kind = fields.CharEnumField(ExternalKind, max_length=16)
    external_id = fields.CharField(max_length=255)
    name = fields.CharField(max_length=255, null=True)
    attributes: fields.JSONField[Any] = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "quiver_external_entity"
        unique_together = (("owner_team", "kind", "external_id"),)


class LineageEdge(Model):
    id = fields.BigIntField(primary_key=True)
    source_kind = fields.CharEnumField(NodeKind, max_length=16)
    source_id = fields.BigIntField()
    target_kind = fields.CharEnumField(NodeKind, max_length=16)
    target_id = fields.BigIntField()
    relation = fields.CharEnumField(LineageRelation, max_length=16)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="lineage_edges", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "quiver_lineage_edge"
        unique_together = (("source_kind", "source_id", "target_kind", "target_id", "relation"),)
        indexes = (
            Index(fields=("source_kind", "source_id")),
            Index(fields=("target_kind", "target_id")),
        )
