"""``haulwatch serve``: run the dispatcher HTTP service (API, live feed, web console)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from haulwatch.api.cli.options import tcp_port

_EPILOG = """\
examples (from a checkout; roles: analyst, dispatcher, device, admin):
  haulwatch audit data/demo --out out/demo
  export HAULWATCH_TOKENS="desk:dispatcher:$(openssl rand -hex 16)"
  haulwatch serve --dataset data/demo --load-alerts out/demo/alerts.geojson --port 8000
  haulwatch sim --home 29.99660,120.54914 &
  haulwatch serve --dataset data/demo --vehicle-url tcp:127.0.0.1:5760 --dock N1
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` sub-command."""
    p = subparsers.add_parser(
        "serve",
        help="run the dispatcher service (HTTP API + web console)",
        description=(
            "Serve alerts, the live position feed, events and drone dispatch over HTTP.\n"
            "Tokens come from HAULWATCH_TOKENS ('name:role:token,...') or\n"
            "HAULWATCH_TOKENS_FILE (lines 'name role sha256:<hex>'); flags override the\n"
            "HAULWATCH_* environment variables."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=tcp_port, default=8000,
                   help="TCP port 0..65535 (default 8000; 0 = any free port, shown at start-up)")
    p.add_argument("--db", dest="db_url", default=None,
                   help="store URL: sqlite:///FILE or postgresql://... (default: HAULWATCH_DB_URL, else "
                        "~/.local/share/haulwatch/haulwatch.db, never the current folder)")
    p.add_argument("--dataset", type=Path, default=None,
                   help="dataset folder whose sites/routes/manifests the live audit and map use")
    p.add_argument("--vehicle-url", default=None,
                   help="MAVLink URL of the drone, e.g. tcp:127.0.0.1:5760")
    p.add_argument("--dock", dest="dock_site_id", default=None,
                   help="default dock (nest site_id) for dispatches")
    p.add_argument("--time-scale", type=float, default=None,
                   help="simulator speed-up factor flight timeouts are divided by (default 1)")
    p.add_argument("--load-alerts", type=Path, default=None,
                   help="alerts.geojson / alerts.csv of a batch audit to import at start-up")
    p.add_argument("--config", "-c", type=Path, default=None, metavar="TOML",
                   help="audit thresholds for the live audit, the file 'haulwatch audit --config' "
                        "takes (also HAULWATCH_AUDIT_CONFIG): live and batch give the same alerts")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="override one threshold after --config, e.g. --set gap_max_s=900")
    p.add_argument("--shutdown-timeout-s", type=float, default=5.0,
                   help="on Ctrl-C, how long open requests may take to finish before they are "
                        "cancelled (event streams end at once; default 5)")
    p.add_argument("--jt808-port", type=tcp_port, default=None,
                   help="also accept JT/T 808 truck terminals on this TCP port (e.g. 6808; "
                        "settings: HAULWATCH_JT808_*, docs/jt808.md)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from haulwatch.api.app import create_app
    from haulwatch.api.cli.options import parse_overrides
    from haulwatch.api.settings import Settings

    # a SettingsError (a UserError) is answered by haulwatch.api.cli.main: one line, exit 2
    settings = Settings.from_env(
        db_url=args.db_url, dataset=args.dataset, vehicle_url=args.vehicle_url,
        dock_site_id=args.dock_site_id, time_scale=args.time_scale,
        load_alerts=args.load_alerts, audit_config=args.config,
        audit_overrides=tuple(parse_overrides(args.overrides).items()) or None)
    if not settings.tokens:
        print("haulwatch serve: warning: no tokens configured (HAULWATCH_TOKENS or "
              "HAULWATCH_TOKENS_FILE); every /api endpoint will answer 401", file=sys.stderr)
    app = create_app(settings)
    hub = app.state.service.hub

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            hub.shutdown()  # end event streams at once, or shutdown waits for every browser
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="info",
                            timeout_graceful_shutdown=args.shutdown_timeout_s)
    from haulwatch.api.gateway import GatewayConfig, serve_with_gateway

    gateway = GatewayConfig.from_env(port=args.jt808_port,
                                     defaults={"host": args.host, "process": True})
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        if gateway is not None:
            serve_with_gateway(Server(config), app, gateway)
        else:
            Server(config).run()
    return 0
