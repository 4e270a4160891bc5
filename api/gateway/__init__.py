"""The JT/T 808 gateway: terminals report to haulwatch directly over TCP.

:class:`~haulwatch.api.gateway.server.Gateway` (the server) talks to two small
interfaces — a :class:`~haulwatch.api.gateway.sink.PointSink` (``await
ingest(points)``, durable on return) and a
:class:`~haulwatch.api.gateway.terminals.TerminalStore` (registrations and
auth codes) — and :func:`build_gateway` wires them to the HTTP service. The
frame codec is :mod:`haulwatch.ingest.jt808`; docs/jt808.md has the field
mapping and what is refused.
"""

from __future__ import annotations

from typing import Any

from haulwatch.api.gateway.config import GatewayConfig, GatewayConfigError
from haulwatch.api.gateway.server import Gateway, GatewayMetrics, location_to_point
from haulwatch.api.gateway.sink import BatchingSink, Outcome, PointSink, service_store
from haulwatch.api.gateway.terminals import (
    MemoryTerminalStore,
    SqlTerminalStore,
    Terminal,
    TerminalStore,
)

__all__ = [
    "BatchingSink", "Gateway", "GatewayConfig", "GatewayConfigError", "GatewayMetrics",
    "MemoryTerminalStore", "Outcome", "PointSink", "SqlTerminalStore", "Terminal",
    "TerminalStore", "build_gateway", "location_to_point", "service_store",
]


def known_plate_keys(svc: Any) -> set[str] | None:
    """Comparison keys of the plates in the service's vehicles.csv (None without it)."""
    from haulwatch.ingest.plates import normalize_plate

    dataset = getattr(getattr(svc, "registry", None), "dataset", None)
    vehicles = getattr(dataset, "vehicles", None)
    if vehicles is None or "vehicle_id" not in getattr(vehicles, "columns", ()):
        return None
    return {str(normalize_plate(str(v))) for v in vehicles["vehicle_id"].dropna()}


def known_vehicle_check(svc: Any) -> Any:
    """``plate -> bool``: is the plate (by its comparison key) in the service's vehicles.csv?"""
    from haulwatch.ingest.plates import normalize_plate

    keys = known_plate_keys(svc)
    if keys is None:
        return None
    return lambda plate: str(normalize_plate(plate)) in keys


def build_gateway(svc: Any, config: GatewayConfig) -> Any:
    """A gateway feeding the HTTP service: its store (points, auth codes) and live audit.

    Parameters
    ----------
    svc : haulwatch.api.deps.Service
        The running service (``svc.store.db`` holds the terminal table).
    config : GatewayConfig
        With ``config.process`` the TCP front end runs in a child process
        (:class:`~haulwatch.api.gateway.process.GatewayProcess`).

    Returns
    -------
    Gateway or GatewayProcess
        Not yet listening: ``await gateway.start()`` on the serving loop.
    """
    if config.process:
        from haulwatch.api.gateway.process import GatewayProcess

        dataset = getattr(getattr(svc, "registry", None), "dataset", None)
        runner = getattr(svc, "live_runner", None)
        return GatewayProcess(
            config, svc.settings.db_url, runner.submit if runner is not None else None,
            target_coord_system=str(getattr(dataset, "coord_system", "wgs84") or "wgs84").lower(),
            known_plates=known_plate_keys(svc))
    sink = BatchingSink(service_store(svc, coord_system=config.coord_system),
                        max_points=config.batch_max_points)
    return Gateway(config, sink, SqlTerminalStore(svc.store.db),
                   known_vehicle=known_vehicle_check(svc))


def serve_with_gateway(server: Any, app: Any, config: GatewayConfig) -> None:
    """Run a ``uvicorn.Server`` and the gateway on one event loop until the server stops.

    The gateway feeds ``app.state.service`` and is exposed as
    ``app.state.gateway``; ``GET /api/gateway`` is added to the app.

    Parameters
    ----------
    server : uvicorn.Server
        The HTTP server (not yet started).
    app : fastapi.FastAPI
        The application made by ``create_app``.
    config : GatewayConfig
        Gateway settings.
    """
    import asyncio
    import sys

    from haulwatch.api.gateway.router import router

    if not any(getattr(r, "path", "") == "/api/gateway" for r in app.router.routes):
        app.include_router(router)

    async def main() -> None:
        gw = build_gateway(app.state.service, config)
        app.state.gateway = gw
        shutdown = server.shutdown

        async def gateway_first(*args: Any, **kwargs: Any) -> None:
            # stop taking reports before the service (and its live audit) shuts down
            await gw.close()
            await shutdown(*args, **kwargs)

        server.shutdown = gateway_first
        await gw.start()
        print(f"haulwatch serve: JT/T 808 gateway listening on {config.host}:{gw.port}",
              file=sys.stderr, flush=True)
        try:
            await server.serve()
        finally:
            await gw.close()

    asyncio.run(main())
