"""Who holds which token: the token registry behind the HTTP role checks (:mod:`haulwatch.api.auth`)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from haulwatch.api.settings import TokenEntry


@dataclass(frozen=True)
class Principal:
    """Who made a request: the token holder's name and role."""

    name: str
    role: str


class TokenRegistry:
    """The accepted tokens; looks a presented token up in constant time.

    Parameters
    ----------
    entries : iterable of TokenEntry
        Name, role and SHA-256 digest of each accepted token.
    """

    def __init__(self, entries: Iterable[TokenEntry]) -> None:
        self._entries = tuple(entries)
        self._digests = tuple(bytes.fromhex(e.sha256_hex) for e in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, token: str) -> Principal | None:
        """Return the principal holding ``token``, or None when no entry matches.

        Every entry is compared (``hmac.compare_digest`` on SHA-256 digests), so
        the time taken does not reveal which entry or how much of it matched.
        """
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        found: TokenEntry | None = None
        for entry, digest in zip(self._entries, self._digests, strict=True):
            if hmac.compare_digest(presented, digest) and found is None:
                found = entry
        return None if found is None else Principal(name=found.name, role=found.role)
