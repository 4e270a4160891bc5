"""haulwatch: supervision of construction-waste haulage ("two points, one line", 两点一线).

Truck GPS and electronic transfer manifests in, evidence-grade alerts out, served
live, with a drone sent to look. The rooms, lowest first (imports point down):

- :mod:`haulwatch.geo`     array primitives: CRS, datums, cleaning, stops, zones
- :mod:`haulwatch.ingest`  reading, validation, dataset assembly, synthetic fleets
- :mod:`haulwatch.routes`  the audit: trips, manifests, corridors, dumps -> alerts
- :mod:`haulwatch.drone`   missions: plan, schedule, MAVLink link, simulator
- :mod:`haulwatch.api`     the faces: HTTP service, console, command line, store

This root holds only the version and the error root; it imports no room, so
``import haulwatch`` stays cheap and every room may import it.
"""

from __future__ import annotations

from haulwatch.errors import HaulwatchError, UserError

__version__ = "0.2.0"

__all__ = ["HaulwatchError", "UserError", "__version__"]
