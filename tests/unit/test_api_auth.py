"""Bearer tokens and roles."""

from __future__ import annotations

import pytest

from serving.api.auth import PERMISSIONS, Principal, TokenBook
from serving.errors import ForbiddenError, UnauthorizedError
from wedsync_cs.settings import Settings


def _book() -> TokenBook:
    settings = Settings(
        api_tokens={"t-app": "app", "t-agent": {"role": "cs_agent", "agentId": "agent_01"}}
    )
    return TokenBook(settings.api_tokens)


def test_a_known_token_gives_its_role_and_agent() -> None:
    book = _book()
    assert book.authenticate("Bearer t-app") == Principal(role="app")
    assert book.authenticate("bearer t-agent") == Principal(role="cs_agent", agent_id="agent_01")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic dDpw", "Bearer t-ap", "t-app"])
def test_a_missing_or_wrong_token_is_unauthorized(header) -> None:
    with pytest.raises(UnauthorizedError):
        _book().authenticate(header)


def test_roles_include_the_roles_below_them() -> None:
    assert PERMISSIONS["app"] < PERMISSIONS["cs_agent"] < PERMISSIONS["admin"]
    Principal(role="app").require("trigger")
    with pytest.raises(ForbiddenError):
        Principal(role="app").require("bulk")
    with pytest.raises(ForbiddenError):
        Principal(role="cs_agent").require("kpis")


def test_a_token_with_an_unknown_role_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="role"):
        Settings(api_tokens={"t": "superuser"})
