"""Settings of the JT/T 808 gateway, read from the environment in one place.

Environment variables (``haulwatch serve`` flags win over them):

``HAULWATCH_JT808_PORT``            TCP port (unset: no gateway)
``HAULWATCH_JT808_HOST``            interface (default: the HTTP ``--host``)
``HAULWATCH_JT808_MAX_CONNECTIONS`` connection cap (default 20000)
``HAULWATCH_JT808_IDLE_TIMEOUT_S``  close a connection with no valid frame for this long (default 180)
``HAULWATCH_JT808_MAX_FRAME_BYTES`` per-connection buffer for an unfinished frame (default 2106)
``HAULWATCH_JT808_LIFT_INFO_ID``    additional-information id of the dump-body lift state
                                    (default 0xE1; ``0x..`` or decimal)
``HAULWATCH_JT808_COORDS``          ``wgs84`` (the standard, default) or ``gcj02``
``HAULWATCH_JT808_REFUSE_UNKNOWN``  ``1``: refuse to register plates not in vehicles.csv
``HAULWATCH_JT808_PROCESS``         ``1``: run the TCP front end in its own process
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from haulwatch.errors import UserError

__all__ = ["GatewayConfig", "GatewayConfigError"]


class GatewayConfigError(UserError, ValueError):
    """A gateway setting has a value the gateway cannot use."""


@dataclass(frozen=True)
class GatewayConfig:
    """Typed configuration of the JT/T 808 gateway.

    Parameters
    ----------
    host : str, default "127.0.0.1"
        Interface to bind.
    port : int, default 6808
        TCP port (0 = any free port).
    max_connections : int, default 20000
        Connections beyond this are closed at once (counted ``connection_cap``).
    idle_timeout_s : float, default 180
        A connection that sends no valid frame for this long is closed
        (``idle_timeout``); a slow sender trickling bytes is cut the same way.
    max_frame_bytes : int, default 2106
        Escaped bytes kept for one unfinished frame (a full 2019 frame with
        every byte escaped fits); longer frames are dropped (``frame_too_long``).
    max_bad_frames : int, default 16
        Consecutive unreadable frames before the connection is closed.
    max_garbage_bytes : int, default 65536
        Bytes outside any frame before the connection is closed.
    write_timeout_s : float, default 10
        A peer that does not read our answers for this long is closed (``slow_reader``).
    max_terminals_per_connection : int, default 1000
        Distinct terminal phones on one connection (a platform forwarder
        multiplexes several); beyond it the connection is closed.
    subpackage_max_bytes : int, default 65536
        Body bytes held for incomplete sub-packaged messages per connection.
    subpackage_timeout_s : float, default 60
        Incomplete sub-packaged messages are dropped after this long.
    lift_info_id : int, default 0xE1
        Additional-information id carrying the dump-body lift state (BYTE, 0
        down, non-zero raised). Vendors differ; the standard leaves 0xE1–0xFF
        to them.
    coord_system : {"wgs84", "gcj02"}, default "wgs84"
        What the terminals send (the standard says WGS-84).
    refuse_unknown_vehicles : bool, default False
        Answer 0x8100 result 2 to plates not in vehicles.csv (default: accept
        and audit them, so ``unregistered_vehicle`` can fire).
    batch_max_points : int, default 5000
        Most points stored in one store transaction (reports arriving while a
        transaction runs are grouped into the next).
    max_inflight : int, default 64
        Location messages of one connection being stored at once (a terminal
        or forwarder that sends without waiting for each answer).
    process : bool, default False
        Run the TCP front end (sockets, framing, decoding, answers) in its own
        process; points are stored and audited in the service process
        (:mod:`haulwatch.api.gateway.process`). Uses a second core.
    """

    host: str = "127.0.0.1"
    port: int = 6808
    max_connections: int = 20000
    idle_timeout_s: float = 180.0
    max_frame_bytes: int = 2106
    max_bad_frames: int = 16
    max_garbage_bytes: int = 65536
    write_timeout_s: float = 10.0
    max_terminals_per_connection: int = 1000
    subpackage_max_bytes: int = 65536
    subpackage_timeout_s: float = 60.0
    lift_info_id: int = 0xE1
    coord_system: str = "wgs84"
    refuse_unknown_vehicles: bool = False
    batch_max_points: int = 5000
    max_inflight: int = 64
    process: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise GatewayConfigError(f"jt808 port: {self.port} is not in 0..65535")
        for name in ("max_connections", "max_bad_frames", "max_terminals_per_connection",
                     "batch_max_points", "max_inflight"):
            if getattr(self, name) < 1:
                raise GatewayConfigError(f"jt808 {name}: {getattr(self, name)} must be >= 1")
        for name in ("idle_timeout_s", "write_timeout_s", "subpackage_timeout_s"):
            if not getattr(self, name) > 0:
                raise GatewayConfigError(f"jt808 {name}: {getattr(self, name)} must be > 0")
        if self.max_frame_bytes < 64:
            raise GatewayConfigError(f"jt808 max_frame_bytes: {self.max_frame_bytes} must be >= 64")
        if self.max_garbage_bytes < 0 or self.subpackage_max_bytes < 0:
            raise GatewayConfigError("jt808 byte limits must be >= 0")
        if not 0 <= self.lift_info_id <= 255:
            raise GatewayConfigError(f"jt808 lift_info_id: {self.lift_info_id} is not a BYTE")
        if self.coord_system not in ("wgs84", "gcj02"):
            raise GatewayConfigError(
                f"jt808 coord_system: {self.coord_system!r} must be one of 'wgs84', 'gcj02'")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *,
                 defaults: Mapping[str, object] | None = None,
                 **overrides: object) -> GatewayConfig | None:
        """Build the configuration from ``HAULWATCH_JT808_*`` variables and overrides.

        ``defaults`` lose to the environment, ``overrides`` (flags; None = not
        given) win over it. Returns None when no port is given (no gateway).
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = dict(defaults or {})
        conv = {f.name: f.type for f in fields(cls)}
        for var, name in (("PORT", "port"), ("HOST", "host"),
                          ("MAX_CONNECTIONS", "max_connections"),
                          ("IDLE_TIMEOUT_S", "idle_timeout_s"),
                          ("MAX_FRAME_BYTES", "max_frame_bytes"),
                          ("LIFT_INFO_ID", "lift_info_id"), ("COORDS", "coord_system"),
                          ("REFUSE_UNKNOWN", "refuse_unknown_vehicles"),
                          ("PROCESS", "process")):
            raw = env.get(f"HAULWATCH_JT808_{var}")
            if not raw:
                continue
            kind = conv[name]
            try:
                if kind in ("int", int):
                    values[name] = int(raw, 0)
                elif kind in ("float", float):
                    values[name] = float(raw)
                elif kind in ("bool", bool):
                    values[name] = raw.strip().lower() in ("1", "true", "yes", "on")
                else:
                    values[name] = raw
            except ValueError:
                raise GatewayConfigError(
                    f"HAULWATCH_JT808_{var}: {raw!r} is not a valid {kind}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "port" not in values:
            return None
        return cls(**values)  # type: ignore[arg-type]
