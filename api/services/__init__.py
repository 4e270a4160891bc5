"""The services the routers call: they hold state and do the work, and know nothing of HTTP.

=============  ====================================================================
module         holds
=============  ====================================================================
``store``      :class:`~haulwatch.api.services.store.Store`: alerts with status
               history, missions, ingested points (``store_sql``: the SQL schema)
``auth``       :class:`~haulwatch.api.services.auth.TokenRegistry` (token lookup)
``events``     :class:`~haulwatch.api.services.events.EventHub` (server-sent events)
``alerts``     alert import (request bodies, files) and status changes
``positions``  pushed points: validated point by point, stored idempotently
``live``       :class:`~haulwatch.api.services.live.LiveRunner`: the live audit
``dispatch``   :class:`~haulwatch.api.services.dispatch.DispatchManager`: drones
``fleet``      the drone fleet's queue and scheduler (``HAULWATCH_DRONES``)
``registry``   :func:`~haulwatch.api.services.registry.load_registry`: sites, routes
=============  ====================================================================
"""
