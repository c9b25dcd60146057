"""Bearer tokens and roles (``CS_API_TOKENS``): who is calling and what they may do.

Every configured token is compared with the presented one in constant time (all of them, so
the time taken says nothing about which matched); tokens are never logged or echoed.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Final

from serving.errors import ForbiddenError, UnauthorizedError
from wedsync_cs.settings import Role, TokenGrant

# What each role may do; a role's permissions include those of the roles before it.
_APP: Final = frozenset({"read", "trigger", "milestone", "model", "in_app"})
_AGENT: Final = _APP | {"worklist", "bulk_dry_run"}
_ADMIN: Final = _AGENT | {"bulk", "any_worklist", "kpis", "agents"}
PERMISSIONS: Final[dict[Role, frozenset[str]]] = {"app": _APP, "cs_agent": _AGENT, "admin": _ADMIN}


@dataclass(frozen=True)
class Principal:
    role: Role
    agent_id: str | None = None

    def may(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]

    def require(self, permission: str) -> None:
        if not self.may(permission):
            raise ForbiddenError(f"the {self.role} role may not do this ({permission})")


class TokenBook:
    """The configured tokens and what each grants."""

    def __init__(self, grants: dict[str, TokenGrant]) -> None:
        self._grants = [(token.encode(), grant) for token, grant in grants.items()]

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer <token>`` header.

        Raises:
            UnauthorizedError: no header, not a bearer token, or an unknown token.
        """
        if not authorization:
            raise UnauthorizedError("missing Authorization header: send 'Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthorizedError("the Authorization header must be 'Bearer <token>'")
        presented = token.strip().encode()
        found: TokenGrant | None = None
        for known, grant in self._grants:  # every token compared: constant time overall
            if hmac.compare_digest(known, presented):
                found = grant
        if found is None:
            raise UnauthorizedError("unknown token")
        return Principal(role=found.role, agent_id=found.agent_id)
