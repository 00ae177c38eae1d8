"""Users, teams and API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from quiver.auth import Viewer, create_user, generate_api_key
from quiver.ids import decode_global_id
from quiver.models import ApiKey, Membership, Role, Team, User
from quiver.resolvers.access import (
    api_key_for,
    require_admin,
    require_user,
    team_for,
    user_for,
)
from quiver.resolvers.errors import ErrorCode, Problem, Refused
from quiver.resolvers.validation import check_short_text, raise_if_any


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str


def _check_label(name: str, field: tuple[str, ...], label: str) -> list[Problem]:
    if not name.strip():
        return [Problem(field, f"{label} cannot be empty", ErrorCode.INVALID)]
    # Names of users, teams and keys are columns of 127 characters.
    return check_short_text(name, field, label, limit=127)


async def create_api_key(viewer: Viewer, *, name: str, user_id: str | None) -> IssuedKey:
    """A new key for the caller (or, for admins, for anyone); the secret is shown once."""
    caller = require_user(viewer)
    raise_if_any(_check_label(name, ("input", "name"), "Name"))
    owner = caller
    if user_id is not None and decode_global_id(user_id, "User") != caller.id:
        if not viewer.is_admin:
            raise Refused.forbidden(("input", "userId"), "Only admins create keys for others")
        owner = await user_for(viewer, user_id, ("input", "userId"))
    new_key = generate_api_key()
    api_key = await ApiKey.create(
        user_id=owner.id, name=name.strip(), prefix=new_key.prefix, key_hash=new_key.key_hash
    )
    return IssuedKey(api_key=api_key, secret=new_key.secret)


async def revoke_api_key(viewer: Viewer, global_id: str) -> ApiKey:
    require_user(viewer)
    api_key = await api_key_for(viewer, global_id, ("input", "id"))
    if api_key.revoked_at is None:
        api_key.revoked_at = datetime.now(UTC)
        await api_key.save(update_fields=["revoked_at"])
    return api_key


async def create_user_as_admin(viewer: Viewer, *, name: str, email: str | None) -> User:
    require_admin(viewer, "Only admins create users")
    problems = _check_label(name, ("input", "name"), "Name")
    if email is not None and ("@" not in email or len(email) > 254):
        problems.append(Problem(("input", "email"), "Not an e-mail address", ErrorCode.INVALID))
    raise_if_any(problems)
    try:
        async with in_transaction():
            return await create_user(name.strip(), email=email)
    except IntegrityError:
        raise Refused.conflict(("input", "email"), "A user with this e-mail exists") from None


async def create_team(viewer: Viewer, *, name: str) -> Team:
    user = require_user(viewer)
    raise_if_any(_check_label(name, ("input", "name"), "Name"))
    async with in_transaction():
        team = await Team.create(name=name.strip())
        await Membership.create(user_id=user.id, team_id=team.id, role=Role.ADMIN)
    return team


async def add_team_member(viewer: Viewer, *, team_id: str, user_id: str, role: Role) -> Team:
    """Add a user to a team, or change their role there; needs ADMIN in the team."""
    require_user(viewer)
    team = await team_for(viewer, team_id, ("input", "teamId"), needed=Role.ADMIN)
    user = await user_for(viewer, user_id, ("input", "userId"))
    updated = await Membership.filter(team_id=team.id, user_id=user.id).update(role=role)
    if not updated:
        await Membership.create(team_id=team.id, user_id=user.id, role=role)
    return team
