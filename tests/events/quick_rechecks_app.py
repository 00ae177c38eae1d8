"""Quiver's app whose quiet live streams read their rows and check their caller's rights
again every half second instead of every five: what a quiet stream notices (a revoked API
key) is then seen within about a second, and a test of it waits that long, not five."""

from __future__ import annotations

from quiver.app import app
from quiver.resolvers import subscriptions

subscriptions.QUIET_READ_INTERVAL = 0.5

__all__ = ["app"]
