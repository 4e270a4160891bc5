"""The OpenAPI document, made to tell the whole truth.

FastAPI lists what each route declares. Some answers come from the layers
around every route, and are added here to every operation they can reach:

- ``401``/``403`` on every operation that needs a token (the role check);
- ``400`` (body not decodable as UTF-8 JSON) and ``413`` (body over
  ``HAULWATCH_MAX_BODY_BYTES``, :class:`haulwatch.api.middleware.BodyLimit`)
  on every operation with a request body;
- ``404`` on every operation with a path parameter (nothing has that id);
- ``422`` on every operation with parameters or a body (the validation
  answer, :func:`haulwatch.api.middleware.install_error_handlers`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_ERROR_SCHEMA = {
    "title": "ErrorBody", "type": "object", "required": ["detail"],
    "description": "An error: what field, what is wrong.",
    "properties": {"detail": {"title": "Detail", "description": (
        "a message, or a list of {loc: [where, field...], msg: reason, type: code}")}},
}
_ADDED = {
    "400": "the body is not UTF-8 JSON",
    "401": "missing or invalid token",
    "403": "the token's role may not do this",
    "404": "nothing has the id in the path",
    "413": "the body is larger than HAULWATCH_MAX_BODY_BYTES (checked before parsing)",
    "422": "a field is invalid: detail names it (loc) and says why (msg)",
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def truthful_openapi(app: FastAPI) -> dict[str, Any]:
    """Build (once) and return the app's OpenAPI document with the shared answers added."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes, tags=app.openapi_tags, servers=app.servers)
    doc.setdefault("components", {}).setdefault("schemas", {}).setdefault("ErrorBody",
                                                                            _ERROR_SCHEMA)
    for item in doc.get("paths", {}).values():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = op.setdefault("responses", {})
            wanted = []
            if op.get("security"):
                wanted += ["401", "403"]
            if "requestBody" in op:
                wanted += ["400", "413", "422"]
            if op.get("parameters"):
                wanted.append("422")
                if any(p.get("in") == "path" for p in op["parameters"]):
                    wanted.append("404")
            for code in wanted:
                responses.setdefault(code, _error(_ADDED[code]))
    app.openapi_schema = doc
    return doc
