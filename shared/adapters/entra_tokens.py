"""Entra ID access tokens for the ops routes, validated in-app with PyJWT: signature (the tenant's
JWKS, found through its OpenID metadata), issuer, audience, expiry, and an app role."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import requests

from shared.errors import Forbidden, ServiceUnavailable, Unauthorized
from shared.settings import OpsAuthSettings

log = logging.getLogger("modelops.auth")
KEYS_TTL_SECONDS = 3600.0  # Entra rolls keys over weeks ahead; an unknown kid refreshes sooner
MIN_REFRESH_SECONDS = 60.0  # at most one forced refresh a minute, whatever tokens arrive
LEEWAY_SECONDS = 60


@dataclass(frozen=True)
class Operator:
    """Who a valid operator token names (for the log; never the token)."""

    subject: str
    name: str


class EntraTokenValidator:
    """Validates bearer tokens of one tenant; the OpenID metadata and keys are fetched and cached."""

    def __init__(
        self,
        settings: OpsAuthSettings,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not settings.tenant_id:
            raise ValueError("an Entra tenant id is required")
        self.settings = settings
        self.metadata_url = f"{settings.authority}/{settings.tenant_id}/v2.0/.well-known/openid-configuration"
        self._session = session or requests.Session()
        self._clock = clock
        self._lock = threading.Lock()
        self._issuer = ""
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")

    def validate(self, token: str) -> Operator:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is not a JWT", field="Authorization") from None
        key, issuer = self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=list(self.settings.audiences),
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(
                f"the bearer token is not valid for this app: {self._why(exc)}", field="Authorization"
            ) from None
        subject = str(claims.get("oid") or claims.get("sub") or "?")
        name = str(claims.get("preferred_username") or claims.get("app_displayname") or claims.get("azp") or subject)
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or self.settings.role not in roles:
            raise Forbidden(
                f"the token of {name} does not carry the app role {self.settings.role}; "
                "assign that role to the user, group or client application in Entra ID",
                field="Authorization",
            )
        return Operator(subject=subject, name=name)

    def _why(self, exc: jwt.PyJWTError) -> str:
        audiences = " or ".join(self.settings.audiences)
        if isinstance(exc, jwt.InvalidAudienceError):
            return f"its audience is not this app (expected {audiences}); request a token for {audiences}"
        if isinstance(exc, jwt.InvalidIssuerError):
            return f"it was not issued by tenant {self.settings.tenant_id} (expected issuer {self._issuer})"
        if isinstance(exc, jwt.ExpiredSignatureError):
            return "it has expired; get a new token"
        if isinstance(exc, jwt.ImmatureSignatureError):
            return "it is not valid yet (nbf/iat in the future); check the clock"
        if isinstance(exc, jwt.InvalidSignatureError):
            return "its signature does not verify with the tenant's signing keys"
        return str(exc)

    def _key(self, kid: str) -> tuple[Any, str]:
        with self._lock:
            age = self._clock() - self._fetched_at
            if age > KEYS_TTL_SECONDS or (kid not in self._keys and age > MIN_REFRESH_SECONDS):
                self._refresh()
            if kid not in self._keys:
                raise Unauthorized(f"the bearer token is signed by an unknown key {kid!r}", field="Authorization")
            return self._keys[kid], self._issuer

    def _refresh(self) -> None:
        try:
            metadata = self._get(self.metadata_url)
            keys = jwt.PyJWKSet.from_dict(self._get(str(metadata["jwks_uri"])))
        except (requests.RequestException, ValueError, KeyError, jwt.PyJWTError) as exc:
            log.warning("cannot fetch the Entra signing keys from %s: %s", self.metadata_url, exc)
            if self._keys:  # keep validating with the keys we have; try again in a minute
                self._fetched_at = self._clock() - KEYS_TTL_SECONDS + MIN_REFRESH_SECONDS
                return
            raise ServiceUnavailable(
                f"the Entra signing keys of tenant {self.settings.tenant_id} cannot be fetched now; try again",
                field="Authorization",
            ) from None
        self._issuer = str(metadata["issuer"])
        self._keys = {k.key_id: k.key for k in keys.keys if k.key_id}
        self._fetched_at = self._clock()

    def _get(self, url: str) -> dict[str, Any]:
        response = self._session.get(url, timeout=10)
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return body
