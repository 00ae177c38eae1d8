"""Live events: the bus that carries them between processes, and what publishes them."""

from __future__ import annotations

from quiver.config import Settings
from quiver.events.bus import (
    RESYNC,
    Event,
    EventBus,
    Resync,
    Subscription,
    current_bus,
    install_bus,
    publish,
)

__all__ = [
    "RESYNC",
    "Event",
    "EventBus",
    "Resync",
    "Subscription",
    "bus_for",
    "current_bus",
    "install_bus",
    "publish",
]


def bus_for(settings: Settings) -> EventBus:
    """Redis when ``redis_url`` is set, else PostgreSQL's LISTEN/NOTIFY on PostgreSQL, else
    in process (one server: nothing to fan out to)."""
    if settings.redis_url:
        from quiver.events.redis_bus import RedisBus

        return RedisBus(settings.redis_url)
    if settings.database_url.startswith(("postgres://", "postgresql://", "asyncpg://")):
        from quiver.events.postgres_bus import PostgresBus

        return PostgresBus(settings.database_url)
    return EventBus()
