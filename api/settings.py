"""Service settings, read from the environment in one place.

Every knob of ``haulwatch serve`` lives in :class:`Settings`; only
:meth:`Settings.from_env` (and the CLI, which builds a ``Settings`` from its
flags) reads the outside world. Nothing here opens a database or a socket.

Environment variables
---------------------
``HAULWATCH_DB_URL``
    ``sqlite:///path/to/file.db`` or ``postgresql://user:pass@host/db``; default
    ``sqlite:///$XDG_DATA_HOME/haulwatch/haulwatch.db`` (``~/.local/share/...``): a
    user data folder, never the current folder (a checkout stays clean).
``HAULWATCH_TOKENS``
    ``name:role:token,name:role:token`` (plain tokens; handy for tests and
    containers with a secret store).
``HAULWATCH_TOKENS_FILE``
    a file of lines ``name role sha256:<hex>`` (hashed tokens; ``#`` comments).
``HAULWATCH_DATASET``
    a dataset folder (docs/formats.md): its sites, routes, manifests and
    vehicles are the registry the live audit and the map use.
``HAULWATCH_VEHICLE_URL``
    the MAVLink URL of the drone (``tcp:127.0.0.1:5760``, ``udp:...``).
``HAULWATCH_DOCK``
    default dock (a ``nest`` site_id) for dispatches that do not name one.
``HAULWATCH_TIME_SCALE``
    simulator speed-up the flight timeouts are divided by (default 1).
``HAULWATCH_STREAM_QUEUE``
    events buffered per SSE client before a slow client is dropped (default 1000).
``HAULWATCH_KEEPALIVE_S``
    seconds between SSE keep-alive comments (default 15).
``HAULWATCH_LIVE_WAIT_S``, ``HAULWATCH_LIVE_LOOKBACK_S``
    see :class:`Settings` (defaults 30 and 86400).
``HAULWATCH_AUDIT_CONFIG``
    audit thresholds (TOML, as ``haulwatch audit --config``) for the live audit,
    so live and batch give the same alerts.
``HAULWATCH_MAX_BODY_BYTES``
    largest request body accepted; larger ones get 413 before parsing
    (default 8 MiB, :data:`haulwatch.ingest.limits.BODY_MAX_BYTES`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from haulwatch.errors import UserError
from haulwatch.ingest.limits import BODY_MAX_BYTES

ROLES: tuple[str, ...] = ("analyst", "dispatcher", "device", "admin")


class SettingsError(UserError, ValueError):
    """A setting has a value the service cannot use."""


@dataclass(frozen=True)
class TokenEntry:
    """One API token: who holds it, their role and the token's SHA-256 digest.

    Parameters
    ----------
    name : str
        Holder's name (recorded in status history as ``by``).
    role : str
        One of :data:`ROLES`.
    sha256_hex : str
        Lower-case hex SHA-256 digest of the token (the token itself is never kept).
    """

    name: str
    role: str
    sha256_hex: str


@dataclass(frozen=True)
class Settings:
    """Typed configuration of the dispatcher service.

    Parameters
    ----------
    db_url : str
        Store URL: ``sqlite:///file.db`` (``sqlite:///:memory:`` for a throw-away
        store, the default when ``Settings`` is built directly) or
        ``postgresql://...``; :meth:`from_env` defaults to :func:`default_db_url`.
    tokens : tuple of TokenEntry
        Accepted API tokens.
    dataset : Path or None
        Dataset folder whose registry (sites, routes, manifests, vehicles) the
        service uses; None serves alerts only (no live audit, no dispatch).
    vehicle_url : str or None
        MAVLink URL of the drone; None disables dispatch flights (missions are
        still planned and refused with reason ``no_vehicle``).
    dock_site_id : str or None
        Default dock for dispatches; None picks the nearest ``nest`` site.
    time_scale : float
        Simulator speed-up (flight timeouts shrink by this factor).
    stream_queue_size : int
        Events buffered per SSE client; a client that falls further behind is dropped.
    keepalive_s : float
        Seconds between SSE keep-alive comments.
    load_alerts : Path or None
        Alerts file (alerts.geojson / alerts.csv) imported at start-up.
    live_wait_s : float
        Longest a position push waits for the live audit run that includes it
        (its ``new_alerts``); the alerts are streamed either way.
    live_lookback_s : float
        On start-up, stored points of this many seconds before the newest are
        replayed into the live audit (its open windows survive a restart).
    max_body_bytes : int
        Largest request body accepted (413 before parsing otherwise).
    audit_config : Path or None
        TOML of audit thresholds for the live audit (the file ``haulwatch audit
        --config`` takes); None: the defaults.
    audit_overrides : tuple of (str, str)
        ``KEY=VALUE`` thresholds applied after ``audit_config`` (``--set``).
    """

    db_url: str = "sqlite:///:memory:"
    tokens: tuple[TokenEntry, ...] = ()
    dataset: Path | None = None
    vehicle_url: str | None = None
    dock_site_id: str | None = None
    time_scale: float = 1.0
    stream_queue_size: int = 1000
    keepalive_s: float = 15.0
    load_alerts: Path | None = None
    live_wait_s: float = 30.0
    live_lookback_s: float = 86_400.0
    max_body_bytes: int = BODY_MAX_BYTES
    audit_config: Path | None = None
    audit_overrides: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not (self.db_url.startswith("sqlite://") or self.db_url.startswith("postgresql://")
                or self.db_url.startswith("postgres://")):
            raise SettingsError(
                f"db_url: {self.db_url!r} is not supported; use sqlite:///FILE or postgresql://..."
            )
        if not self.time_scale > 0:
            raise SettingsError(f"time_scale: {self.time_scale!r} must be > 0")
        if self.stream_queue_size < 1:
            raise SettingsError(f"stream_queue_size: {self.stream_queue_size!r} must be >= 1")
        if not self.keepalive_s > 0:
            raise SettingsError(f"keepalive_s: {self.keepalive_s!r} must be > 0")
        if not self.live_wait_s >= 0:
            raise SettingsError(f"live_wait_s: {self.live_wait_s!r} must be >= 0")
        if not self.live_lookback_s >= 0:
            raise SettingsError(f"live_lookback_s: {self.live_lookback_s!r} must be >= 0")
        if not self.max_body_bytes >= 1024:
            raise SettingsError(f"max_body_bytes: {self.max_body_bytes!r} must be >= 1024")
        for entry in self.tokens:
            if entry.role not in ROLES:
                raise SettingsError(
                    f"token role: {entry.role!r} for {entry.name!r} is not one of {', '.join(ROLES)}"
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``HAULWATCH_*`` environment variables.

        Parameters
        ----------
        environ : mapping, optional
            Environment to read (default ``os.environ``).
        **overrides
            Field values that win over the environment (the CLI flags).

        Returns
        -------
        Settings

        Raises
        ------
        SettingsError
            When a variable has an unusable value (the message names it).
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {"db_url": env.get("HAULWATCH_DB_URL") or default_db_url(env)}
        tokens: list[TokenEntry] = []
        if env.get("HAULWATCH_TOKENS"):
            tokens.extend(parse_tokens(env["HAULWATCH_TOKENS"]))
        if env.get("HAULWATCH_TOKENS_FILE"):
            tokens.extend(read_tokens_file(Path(env["HAULWATCH_TOKENS_FILE"])))
        values["tokens"] = tuple(tokens)
        if env.get("HAULWATCH_DATASET"):
            values["dataset"] = Path(env["HAULWATCH_DATASET"])
        if env.get("HAULWATCH_VEHICLE_URL"):
            values["vehicle_url"] = env["HAULWATCH_VEHICLE_URL"]
        if env.get("HAULWATCH_DOCK"):
            values["dock_site_id"] = env["HAULWATCH_DOCK"]
        if env.get("HAULWATCH_AUDIT_CONFIG"):
            values["audit_config"] = Path(env["HAULWATCH_AUDIT_CONFIG"])
        if env.get("HAULWATCH_LOAD_ALERTS"):
            values["load_alerts"] = Path(env["HAULWATCH_LOAD_ALERTS"])
        for var, name, conv in (
            ("HAULWATCH_TIME_SCALE", "time_scale", float),
            ("HAULWATCH_STREAM_QUEUE", "stream_queue_size", int),
            ("HAULWATCH_KEEPALIVE_S", "keepalive_s", float),
            ("HAULWATCH_LIVE_WAIT_S", "live_wait_s", float),
            ("HAULWATCH_LIVE_LOOKBACK_S", "live_lookback_s", float),
            ("HAULWATCH_MAX_BODY_BYTES", "max_body_bytes", int),
        ):
            if env.get(var):
                try:
                    values[name] = conv(env[var])
                except ValueError:
                    raise SettingsError(
                        f"{var}: {env[var]!r} is not a valid {conv.__name__}"
                    ) from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def default_db_url(environ: Mapping[str, str] | None = None) -> str:
    """The store of ``haulwatch serve`` when none is given: a SQLite file in the user's data folder.

    ``$XDG_DATA_HOME/haulwatch/haulwatch.db``, else ``~/.local/share/haulwatch/haulwatch.db``
    (the folder is created when the store opens). Never the current folder, so running
    the service from a checkout leaves no file in the tree.
    """
    env = os.environ if environ is None else environ
    base = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else (
        Path(env.get("HOME") or Path.home()) / ".local" / "share")
    return f"sqlite:///{base / 'haulwatch' / 'haulwatch.db'}"


def hash_token(token: str) -> str:
    """Return the lower-case hex SHA-256 digest of a token."""
    import hashlib

    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_tokens(text: str) -> list[TokenEntry]:
    """Parse ``name:role:token,...`` into token entries.

    Raises
    ------
    SettingsError
        For an entry that is not ``name:role:token`` or has an unknown role.
    """
    entries = []
    for i, part in enumerate(p.strip() for p in text.split(",")):
        if not part:
            continue
        pieces = part.split(":", 2)
        if len(pieces) != 3 or not all(pieces):
            raise SettingsError(
                f"HAULWATCH_TOKENS: entry {i + 1} is not 'name:role:token' (got {len(pieces)} fields)"
            )
        name, role, token = pieces
        if role not in ROLES:
            raise SettingsError(
                f"HAULWATCH_TOKENS: role {role!r} of {name!r} is not one of {', '.join(ROLES)}"
            )
        entries.append(TokenEntry(name=name, role=role, sha256_hex=hash_token(token)))
    return entries


def read_tokens_file(path: Path) -> list[TokenEntry]:
    """Read a hashed-token file (lines ``name role sha256:<hex>``, ``#`` comments).

    Raises
    ------
    SettingsError
        For a missing file or a malformed line (named by its number).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"HAULWATCH_TOKENS_FILE: cannot read {str(path)!r}: {exc}") from None
    entries = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3:
            raise SettingsError(
                f"HAULWATCH_TOKENS_FILE line {lineno}: expected 'name role sha256:<hex>', "
                f"got {len(parts)} fields"
            )
        name, role, digest = parts
        if role not in ROLES:
            raise SettingsError(
                f"HAULWATCH_TOKENS_FILE line {lineno}: role {role!r} is not one of {', '.join(ROLES)}"
            )
        algo, _, hexd = digest.partition(":")
        hexd = hexd.lower()
        if algo != "sha256" or len(hexd) != 64 or any(c not in "0123456789abcdef" for c in hexd):
            raise SettingsError(
                f"HAULWATCH_TOKENS_FILE line {lineno}: digest must be 'sha256:' + 64 hex digits"
            )
        entries.append(TokenEntry(name=name, role=role, sha256_hex=hexd))
    return entries
