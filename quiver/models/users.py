"""People, the teams they belong to, and the API keys they authenticate with."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from quiver.models.enums import Role


class User(Model):
    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=127)
    email = fields.CharField(max_length=254, null=True, unique=True)
    is_admin = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    memberships: fields.ReverseRelation[Membership]
    api_keys: fields.ReverseRelation[ApiKey]

    class Meta:
        table = "quiver_user"


class Team(Model):
    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=127)
    # A user's personal team owns what they create unless they name another team.
    personal_user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="personal_teams", null=True, on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    memberships: fields.ReverseRelation[Membership]

    class Meta:
        table = "quiver_team"


class Membership(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="memberships", on_delete=fields.CASCADE
    )
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="memberships", on_delete=fields.CASCADE
    )
    role = fields.CharEnumField(Role, max_length=8)
    created_at = fields.DatetimeField(auto_now_add=True)

    user_id: int
    team_id: int

    class Meta:
        table = "quiver_membership"
        unique_together = (("user", "team"),)


class ApiKey(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="api_keys", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=127)
    # The visible start of the key, so people can tell keys apart; never enough to use it.
    prefix = fields.CharField(max_length=16)
    # SHA-256 of the whole key: keys carry 256 bits of entropy, so a fast hash is safe.
    key_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    user_id: int

    class Meta:
        table = "quiver_api_key"
