"""The service container and the dependency that hands it to the routers.

``create_app`` builds one :class:`Service` at start-up (never on import) and
puts it on ``app.state.service``; routers ask for it with ``svc: ServiceDep``.
Tests swap parts of it (or the whole) through ``app.dependency_overrides``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

if TYPE_CHECKING:
    from haulwatch.api.auth import TokenRegistry
    from haulwatch.api.routers_registry import Registry
    from haulwatch.api.routers_stream import EventHub
    from haulwatch.api.settings import Settings
    from haulwatch.api.store import Store


@dataclass
class Service:
    """Everything a request may need: settings, store, event hub, registry, live path, drones."""

    settings: Settings
    store: Store
    hub: EventHub
    tokens: TokenRegistry
    registry: Registry | None = None
    live: Any | None = None
    dispatcher: Any | None = None
    live_runner: Any | None = None


def get_service(request: Request) -> Service:
    """The running app's :class:`Service`."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
