"""Bearer-token authentication and role checks, as FastAPI dependencies.

Tokens come from :class:`haulwatch.api.settings.Settings` (only their SHA-256
digests are kept); :class:`~haulwatch.api.services.auth.TokenRegistry` looks
them up. Each role requirement is one ``Annotated`` alias, so a route
states what it needs in its signature (``who: Dispatcher``) and no route
repeats a check:

=============  =============================================
alias          roles allowed
=============  =============================================
``Reader``     analyst, dispatcher, admin
``Dispatcher`` dispatcher, admin
``Device``     device, admin
``Admin``      admin
``StreamReader`` as Reader, token also accepted as ``?access_token=``
=============  =============================================

401 (with ``WWW-Authenticate: Bearer``) means no or unknown token; 403 means
the token is valid but its role may not do this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from haulwatch.api.services.auth import Principal, TokenRegistry
from haulwatch.api.settings import ROLES

_bearer = HTTPBearer(
    auto_error=False,
    description="API token: `Authorization: Bearer <token>` (roles analyst, dispatcher, device, admin).",
)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _authenticate(request: Request, token: str | None, where: str) -> Principal:
    if not token:
        raise _unauthorized(f"authorization: missing bearer token ({where})")
    registry: TokenRegistry = request.app.state.tokens
    principal = registry.authenticate(token)
    if principal is None:
        raise _unauthorized("authorization: token is not valid")
    return principal


def _check_role(principal: Principal, roles: tuple[str, ...]) -> Principal:
    if principal.role not in roles:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=(
                f"role: {principal.name!r} has role {principal.role!r}; "
                f"this needs one of {', '.join(roles)}"
            ),
        )
    return principal


def require_roles(*roles: str, allow_query_token: bool = False) -> Callable[..., Principal]:
    """Build a dependency that authenticates the request and checks its role.

    Parameters
    ----------
    *roles : str
        Roles allowed (each one of :data:`haulwatch.api.settings.ROLES`).
    allow_query_token : bool, default False
        Also accept the token as ``?access_token=`` (for EventSource clients,
        which cannot set headers).

    Returns
    -------
    callable
        A FastAPI dependency returning the :class:`Principal`.
    """
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"roles: {unknown or roles!r} must be a non-empty subset of {ROLES}")

    if allow_query_token:

        def dependency_q(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
            access_token: Annotated[
                str | None,
                Query(description="API token, for clients that cannot send headers (EventSource)."),
            ] = None,
        ) -> Principal:
            token = credentials.credentials if credentials is not None else access_token
            principal = _authenticate(
                request, token, "Authorization: Bearer header or access_token query parameter"
            )
            return _check_role(principal, roles)

        return dependency_q

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        token = credentials.credentials if credentials is not None else None
        principal = _authenticate(request, token, "Authorization: Bearer header")
        return _check_role(principal, roles)

    return dependency


Reader = Annotated[Principal, Depends(require_roles("analyst", "dispatcher", "admin"))]
StreamReader = Annotated[
    Principal, Depends(require_roles("analyst", "dispatcher", "admin", allow_query_token=True))
]
Dispatcher = Annotated[Principal, Depends(require_roles("dispatcher", "admin"))]
Device = Annotated[Principal, Depends(require_roles("device", "admin"))]
Admin = Annotated[Principal, Depends(require_roles("admin"))]
