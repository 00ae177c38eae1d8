"""Users, teams, memberships and API keys."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.permission import PermissionExtension

from quiver import models
from quiver.context import Context, Info
from quiver.models import Role
from quiver.resolvers import users as ops
from quiver.schema.errors import UserError, mutation, user_errors_field
from quiver.schema.node import Node, global_id_resolver, node_loader
from quiver.schema.permissions import IsSelfOrAdmin

strawberry.enum(Role, description="What a member or grantee may do.")


@strawberry.type(description="Someone who uses Quiver.")
class User(Node):
    name: str = strawberry.field(description="Display name.")
    email: str | None = strawberry.field(
        description="E-mail address; visible to the user themself and to admins only.",
        extensions=[
            PermissionExtension(
                permissions=[IsSelfOrAdmin()], fail_silently=True, use_directives=False
            )
        ],
    )
    is_admin: bool = strawberry.field(description="Whether the user administers this server.")

    id: strawberry.ID = strawberry.field(
        resolver=global_id_resolver("User"), description="The global ID of the user."
    )

    @strawberry.field(
        description="Teams the user belongs to.",
        graphql_type=list[Annotated["Team", strawberry.lazy(__name__)]],
    )
    async def teams(self, root: strawberry.Parent[models.User], info: Info) -> list[models.Team]:
        memberships = await info.context.loaders.memberships_by_user_id.load(root.id)
        teams = await info.context.loaders.team_by_id.load_many([m.team_id for m in memberships])
        return [team for team in teams if team is not None]

    @strawberry.field(
        description="The user's API keys (never their secrets); for the user and admins.",
        graphql_type=list[Annotated["ApiKey", strawberry.lazy(__name__)]],
        extensions=[
            PermissionExtension(
                permissions=[IsSelfOrAdmin()], fail_silently=True, use_directives=False
            )
        ],
    )
    def api_keys(
        self, root: strawberry.Parent[models.User], info: Info
    ) -> Awaitable[list[models.ApiKey]]:
        return info.context.loaders.api_keys_by_user_id.load(root.id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, models.User)


@strawberry.type(description="A member of a team and the role they hold there.")
class TeamMember:
    role: Role = strawberry.field(description="The member's role in the team.")

    @strawberry.field(description="The member.", graphql_type=User)
    def user(
        self, root: strawberry.Parent[models.Membership], info: Info
    ) -> Awaitable[models.User | None]:
        return info.context.loaders.user_by_id.load(root.user_id)


@strawberry.type(description="A group of users that owns datasets.")
class Team(Node):
    name: str = strawberry.field(description="Team name.")

    id: strawberry.ID = strawberry.field(
        resolver=global_id_resolver("Team"), description="The global ID of the team."
    )

    @strawberry.field(
        description="Everyone in the team with their role.", graphql_type=list[TeamMember]
    )
    def members(
        self, root: strawberry.Parent[models.Team], info: Info
    ) -> Awaitable[list[models.Membership]]:
        return info.context.loaders.memberships_by_team_id.load(root.id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, models.Team)


@strawberry.type(description="A key that authenticates scripts; its secret is shown only once.")
class ApiKey(Node):
    name: str = strawberry.field(description="What the key is for.")
    prefix: str = strawberry.field(description="The first characters of the key, to tell it apart.")
    created_at: datetime = strawberry.field(description="When the key was made.")
    last_used_at: datetime | None = strawberry.field(description="Last use, to the minute.")
    revoked_at: datetime | None = strawberry.field(description="When it was revoked, if it was.")

    id: strawberry.ID = strawberry.field(
        resolver=global_id_resolver("ApiKey"), description="The global ID of the key."
    )

    @strawberry.field(description="Whose key it is.", graphql_type=User)
    def user(
        self, root: strawberry.Parent[models.ApiKey], info: Info
    ) -> Awaitable[models.User | None]:
        return info.context.loaders.user_by_id.load(root.user_id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, models.ApiKey)


# Who sees which users, teams and keys is decided in resolvers.access; the loaders apply it.
@node_loader("User")
async def _load_user(context: Context, pk: int) -> models.User | None:
    return await context.loaders.user_by_id.load(pk)


@node_loader("Team")
async def _load_team(context: Context, pk: int) -> models.Team | None:
    return await context.loaders.team_by_id.load(pk)


@node_loader("ApiKey")
async def _load_api_key(context: Context, pk: int) -> models.ApiKey | None:
    return await context.loaders.api_key_by_id.load(pk)


@strawberry.input(description="A new API key.")
class CreateApiKeyInput:
    name: str = strawberry.field(description="What the key is for.")
    user_id: strawberry.ID | None = strawberry.field(
        default=None, description="Whose key; defaults to the caller (admins may name anyone)."
    )


@strawberry.input(description="The key to revoke.")
class RevokeApiKeyInput:
    id: strawberry.ID = strawberry.field(description="The key's global ID.")


@strawberry.input(description="A new user (admins only).")
class CreateUserInput:
    name: str = strawberry.field(description="Display name.")
    email: str | None = strawberry.field(default=None, description="E-mail address.")


@strawberry.input(description="A new team; the caller becomes its ADMIN.")
class CreateTeamInput:
    name: str = strawberry.field(description="Team name.")


@strawberry.input(description="Add a user to a team or change their role there.")
class AddTeamMemberInput:
    team_id: strawberry.ID = strawberry.field(description="The team.")
    user_id: strawberry.ID = strawberry.field(description="The user.")
    role: Role = strawberry.field(description="The role to hold.")


@strawberry.type(description="Result of an API key mutation.")
class ApiKeyPayload:
    api_key: models.ApiKey | None = strawberry.field(
        default=None, description="The key.", graphql_type=ApiKey | None
    )
    secret: str | None = strawberry.field(
        default=None, description="The whole key, returned once when it is created; store it."
    )
    user_errors: list[UserError] = user_errors_field()


@strawberry.type(description="Result of a user mutation.")
class UserPayload:
    user: models.User | None = strawberry.field(
        default=None, description="The user.", graphql_type=User | None
    )
    user_errors: list[UserError] = user_errors_field()


@strawberry.type(description="Result of a team mutation.")
class TeamPayload:
    team: models.Team | None = strawberry.field(
        default=None, description="The team.", graphql_type=Team | None
    )
    user_errors: list[UserError] = user_errors_field()


@strawberry.type
class UserQuery:
    @strawberry.field(
        description="The signed-in user; null for anonymous callers.", graphql_type=User | None
    )
    def viewer(self, info: Info) -> models.User | None:
        return info.context.viewer.user


@strawberry.type
class UserMutation:
    @mutation(description="Create an API key; the secret is in the payload, once.")
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> ApiKeyPayload:
        issued = await ops.create_api_key(
            info.context.viewer, name=input.name, user_id=input.user_id
        )
        return ApiKeyPayload(api_key=issued.api_key, secret=issued.secret)

    @mutation(description="Revoke an API key; requests using it fail from now on.")
    async def revoke_api_key(self, info: Info, input: RevokeApiKeyInput) -> ApiKeyPayload:
        return ApiKeyPayload(api_key=await ops.revoke_api_key(info.context.viewer, input.id))

    @mutation(description="Create a user with a personal team (admins only).")
    async def create_user(self, info: Info, input: CreateUserInput) -> UserPayload:
        user = await ops.create_user_as_admin(
            info.context.viewer, name=input.name, email=input.email
        )
        return UserPayload(user=user)

    @mutation(description="Create a team; the caller becomes its ADMIN.")
    async def create_team(self, info: Info, input: CreateTeamInput) -> TeamPayload:
        return TeamPayload(team=await ops.create_team(info.context.viewer, name=input.name))

    @mutation(description="Add a user to a team, or change their role there.")
    async def add_team_member(self, info: Info, input: AddTeamMemberInput) -> TeamPayload:
        team = await ops.add_team_member(
            info.context.viewer, team_id=input.team_id, user_id=input.user_id, role=input.role
        )
        return TeamPayload(team=team)
