"""Who is calling: API keys and JWT bearer tokens resolved to a ``Viewer``."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import jwt

from quiver.config import Settings
from quiver.ids import decode_global_id, parse_pk
from quiver.models import ApiKey, Membership, Role, Team, User

API_KEY_PREFIX = "qvr_"
# Written at most this often, so authenticating does not turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class AuthenticationError(Exception):
    """The caller presented credentials that are not valid (a 401, never anonymous access)."""


@dataclass(frozen=True)
class Viewer:
    """The caller of one request; ``user`` is None for anonymous callers."""

    user: User | None = None
    team_roles: dict[int, Role] = field(default_factory=dict)

    @property
    def is_authenticated(self) -> bool:
        return self.user is not None

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.is_admin

    @property
    def user_id(self) -> int | None:
        return self.user.id if self.user is not None else None


ANONYMOUS = Viewer()


@dataclass(frozen=True)
class NewApiKey:
    secret: str
    prefix: str
    key_hash: str


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_api_key() -> NewApiKey:
    """A fresh key with 256 bits of entropy; only its hash and prefix are ever stored."""
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return NewApiKey(secret=secret, prefix=secret[:12], key_hash=hash_api_key(secret))


async def viewer_for_user(user: User) -> Viewer:
    memberships = await Membership.filter(user_id=user.id).values_list("team_id", "role")
    return Viewer(user=user, team_roles={team_id: Role(role) for team_id, role in memberships})


async def authenticate(authorization: str | None, settings: Settings) -> Viewer:
    """Resolve an ``Authorization`` header; no header means anonymous."""
    if not authorization:
        return ANONYMOUS
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("Authorization must be 'Bearer <api key or JWT>'")
    if token.count(".") == 2:
        user = await _user_from_jwt(token, settings)
    else:
        user = await _user_from_api_key(token)
    return await viewer_for_user(user)


async def _user_from_api_key(secret: str) -> User:
    # The key and its user in one query: this runs on every authenticated request.
    key = await ApiKey.get_or_none(key_hash=hash_api_key(secret), revoked_at=None).select_related(
        "user"
    )
    # The hash lookup already matched; compare again in constant time for good measure.
    if key is None or not hmac.compare_digest(key.key_hash, hash_api_key(secret)):
        raise AuthenticationError("Invalid or revoked API key")
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        await ApiKey.filter(id=key.id).update(last_used_at=now)
    return key.user


async def _user_from_jwt(token: str, settings: Settings) -> User:
    if not settings.jwt_secret:
        raise AuthenticationError("JWT authentication is not configured on this server")
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=["HS256"],
            audience=settings.jwt_audience or None,
            options={"require": ["sub", "exp"], "verify_aud": bool(settings.jwt_audience)},
        )
    except jwt.PyJWTError as exc:
        raise AuthenticationError(_jwt_refusal(exc)) from None
    user = await _user_from_subject(str(claims["sub"]))
    if user is None:
        raise AuthenticationError("The token's subject is not a known user")
    return user


def _jwt_refusal(error: jwt.PyJWTError) -> str:
    """Quiver's own words for why a JWT is refused: PyJWT's texts are not part of our API."""
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"The token has no '{error.claim}' claim"
    for kind, message in _JWT_REFUSALS:
        if isinstance(error, kind):
            return message
    return "The token is not valid"


# Checked in order: InvalidSignatureError is a DecodeError.
_JWT_REFUSALS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired"),
    (jwt.ImmatureSignatureError, "The token is not valid yet"),
    (jwt.InvalidSignatureError, "The token's signature is not valid"),
    (jwt.InvalidAlgorithmError, "The token must be signed with HS256"),
    (jwt.InvalidAudienceError, "The token is not for this server"),
    (jwt.exceptions.InvalidSubjectError, "The token's subject must be a string"),
    (jwt.DecodeError, "The token is not a well-formed JWT"),
)


async def _user_from_subject(subject: str) -> User | None:
    # ``sub`` may be the numeric user id, the user's global ID, or an e-mail address.
    if subject.isdigit():
        pk = parse_pk(subject)
        return await User.get_or_none(id=pk) if pk is not None else None
    if "@" in subject:
        return await User.get_or_none(email=subject)
    decoded = decode_global_id(subject, "User")
    return await User.get_or_none(id=decoded) if decoded is not None else None


async def create_user(name: str, *, email: str | None = None, is_admin: bool = False) -> User:
    """A user together with the personal team that owns what they create."""
    user = await User.create(name=name, email=email, is_admin=is_admin)
    team = await Team.create(name=name, personal_user=user)
    await Membership.create(user=user, team=team, role=Role.ADMIN)
    return user


async def ensure_admin_key(secret: str) -> User:
    """Make ``secret`` (from QUIVER_ADMIN_API_KEY) a working admin key; idempotent."""
    key_hash = hash_api_key(secret)
    key = await ApiKey.get_or_none(key_hash=key_hash)
    if key is not None:
        user = await User.get(id=key.user_id)
        if not user.is_admin:
            user.is_admin = True
            await user.save(update_fields=["is_admin"])
        if key.revoked_at is not None:
            key.revoked_at = None
            await key.save(update_fields=["revoked_at"])
        return user
    admin = await User.filter(is_admin=True).order_by("id").first()
    if admin is None:
        admin = await create_user("admin", is_admin=True)
    await ApiKey.create(user=admin, name="bootstrap", prefix=secret[:8], key_hash=key_hash)
    return admin
