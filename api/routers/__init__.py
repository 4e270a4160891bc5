"""HTTP routers, one per resource: parse, authorize, call a service, shape the answer.

``alerts``, ``positions``, ``stream``, ``missions``, ``registry``; shared error
shapes in ``errors``. Nothing here holds state or does the work: that is
:mod:`haulwatch.api.services`.
"""
