"""The dispatcher service: ``create_app(settings)`` builds the FastAPI application.

One router per resource (alerts, positions, stream, missions, registry), a
:class:`~haulwatch.api.deps.Service` container made here at start-up (store,
event hub, tokens, registry, live audit, drone dispatch), and the web console
mounted at ``/`` when it is installed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

from fastapi import FastAPI

from haulwatch.api.deps import Clock, Service, ServiceDep, utc_now
from haulwatch.api.docs import mount_docs
from haulwatch.api.middleware import BodyLimit, install_error_handlers
from haulwatch.api.openapi import truthful_openapi
from haulwatch.api.schemas import Health
from haulwatch.api.services.auth import TokenRegistry
from haulwatch.api.services.events import EventHub
from haulwatch.api.services.store import Store
from haulwatch.api.settings import Settings

log = logging.getLogger("haulwatch.api")


def _version() -> str:
    try:
        return metadata.version("haulwatch")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def audit_config(settings: Settings) -> Any:
    """The live audit's thresholds: ``settings.audit_config`` then ``audit_overrides``.

    The one loader ``haulwatch audit --config/--set`` uses too
    (:meth:`haulwatch.routes.config.AuditConfig.load`), so live and batch agree.
    """
    from haulwatch.routes.config import AuditConfig

    return AuditConfig.load(settings.audit_config, dict(settings.audit_overrides))


def build_service(settings: Settings, *, clock: Clock | None = None) -> Service:
    """Open the store, load the registry and the start-up alerts, wire live path and drones.

    ``clock`` (default: the wall clock, UTC) is the service's one source of
    the current time; tests pass a fixed one.
    """
    config = audit_config(settings) if settings.dataset is not None else None  # fail fast
    store = Store(settings.db_url)
    service = Service(
        settings=settings,
        store=store,
        hub=EventHub(settings.stream_queue_size),
        tokens=TokenRegistry(settings.tokens),
        clock=clock if clock is not None else utc_now,
    )
    if settings.dataset is not None:
        from haulwatch.api.services.registry import load_registry

        service.registry = load_registry(settings.dataset)
        # Chinese summaries in the dataset's zone, sites by name (issue 11).
        store.display_timezone = service.registry.timezone
        store.site_names = {str(f["properties"].get("site_id")): str(f["properties"].get("name") or "")
                            for f in service.registry.sites.get("features", [])}
    if settings.load_alerts is not None:
        from haulwatch.api.services.alerts import import_file

        result = import_file(service, settings.load_alerts, by="startup")
        log.info("loaded %s: %d new, %d updated, %d unchanged", settings.load_alerts,
                 len(result.inserted), len(result.updated), result.unchanged)
    try:
        from haulwatch.api.services.dispatch import DispatchManager
    except ImportError:
        DispatchManager = None  # noqa: N806
    if DispatchManager is not None:
        service.dispatcher = DispatchManager(service)
    if service.registry is not None and service.registry.dataset is not None:
        from haulwatch.api.services.live import LiveRunner, restore_live
        from haulwatch.routes.live import LiveAuditor

        service.live = LiveAuditor(service.registry.dataset, config)
        replayed = restore_live(service, lookback_s=settings.live_lookback_s)
        if replayed:
            log.info("live audit: replayed %d stored points", replayed)
        service.live_runner = LiveRunner(service)
    return service


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """Build the haulwatch HTTP service.

    Parameters
    ----------
    settings : Settings, optional
        Configuration; default :meth:`Settings.from_env` (the ``HAULWATCH_*``
        environment variables).
    clock : callable, optional
        Returns the current tz-aware time (default: the wall clock, UTC);
        drone dispatch plans for it. Tests fix it.

    Returns
    -------
    FastAPI
        The application; its :class:`~haulwatch.api.deps.Service` is on
        ``app.state.service``.
    """
    settings = Settings.from_env() if settings is None else settings
    service = build_service(settings, clock=clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if service.live_runner is not None:
            service.live_runner.start()
        yield
        service.hub.shutdown()
        if service.live_runner is not None:
            service.live_runner.close()
        if service.dispatcher is not None:
            service.dispatcher.shutdown()
        service.store.close()

    app = FastAPI(
        title="haulwatch dispatcher API",
        version=_version(),
        description=(
            "Construction-waste haulage supervision ('two points, one line'): alerts from "
            "the audit and the live feed, their status, live events, and drone dispatch. "
            "Bearer tokens; roles analyst (read), dispatcher (read, status, dispatch), "
            "device (push positions), admin (all)."
        ),
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from vendored assets (api/docs.py)
        redoc_url=None,
    )
    mount_docs(app)
    app.openapi = lambda: truthful_openapi(app)  # type: ignore[method-assign]
    app.state.service = service
    app.state.tokens = service.tokens

    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    @app.get("/health", response_model=Health, tags=["health"], summary="Liveness (open)")
    def health(svc: ServiceDep) -> dict[str, Any]:
        """Service status, version and the number of stored alerts."""
        return {"status": "ok", "version": _version(), "alerts": svc.store.count_alerts()}

    import importlib

    for name in ("alerts", "positions", "stream", "missions", "registry"):
        module = importlib.import_module(f"haulwatch.api.routers.{name}")
        app.include_router(module.router)

    from haulwatch.api.tiles import install as install_console_config

    install_console_config(app)  # GET /api/console/config, /api/i18n/{lang}; tile hosts in the CSP
    try:
        from haulwatch.api.web_static import mount_web
    except ModuleNotFoundError as exc:
        if exc.name != "haulwatch.api.web_static":
            raise
    else:
        mount_web(app)
    return app
