"""The service container and the dependency that hands it to the routers.

``create_app`` builds one :class:`Service` at start-up (never on import) and
puts it on ``app.state.service``; routers ask for it with ``svc: ServiceDep``.
Tests swap parts of it (or the whole) through ``app.dependency_overrides``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

if TYPE_CHECKING:
    from haulwatch.api.services.auth import TokenRegistry
    from haulwatch.api.services.events import EventHub
    from haulwatch.api.services.registry import Registry
    from haulwatch.api.services.store import Store
    from haulwatch.api.settings import Settings


def utc_now() -> datetime:
    """The wall clock, tz-aware UTC: the default :attr:`Service.clock`."""
    return datetime.now(timezone.utc)


Clock = Callable[[], datetime]
"""A callable returning the current time as a tz-aware datetime."""


@dataclass
class Service:
    """Everything a request may need: settings, store, event hub, registry, live path, drones.

    ``clock`` is the one place the service reads the current time from (drone
    dispatch plans for it: daylight, time windows); tests pass a fixed one.
    """

    settings: Settings
    store: Store
    hub: EventHub
    tokens: TokenRegistry
    registry: Registry | None = None
    live: Any | None = None
    dispatcher: Any | None = None
    live_runner: Any | None = None
    clock: Clock = field(default=utc_now)


def get_service(request: Request) -> Service:
    """The running app's :class:`Service`."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
