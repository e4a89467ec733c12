"""A token credential for contract servers: Entra cannot be reached here, the token is checked
by the contract server instead (it must arrive as a Bearer header)."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken

CONTRACT_TOKEN = "contract-test-token"


class StaticTokenCredential:
    """Implements azure.core.credentials.TokenCredential; records the scopes it was asked for."""

    def __init__(self, token: str = CONTRACT_TOKEN) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    def close(self) -> None:
        pass


class RefusingCredential:
    """Entra refusing the credential (as azure-identity reports it): no token is ever issued."""

    def __init__(self, reason: str = "AADSTS7000215: Invalid client secret provided.") -> None:
        self.reason = reason

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.exceptions import ClientAuthenticationError

        raise ClientAuthenticationError(message=self.reason)

    def close(self) -> None:
        pass
