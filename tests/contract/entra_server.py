"""An Entra ID tenant's token-validation surface, as a contract server (serve it with HttpsServer).

Answers what Entra answers: the OpenID metadata at `/{tenant}/v2.0/.well-known/openid-configuration`
(issuer `{authority}/{tenant}/v2.0`, `jwks_uri` `{authority}/{tenant}/discovery/v2.0/keys`) and
the JWKS there. Its RSA key is generated here; :meth:`EntraTenant.token` mints v2 access tokens
signed with it, as Entra would for a caller of the app registration.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.responses import JSONResponse

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "6c7a0b4e-2d1f-4c55-9a8e-0b9e4b1f5a01"  # the app registration of the reactor
APP_ID_URI = f"api://{CLIENT_ID}"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class EntraTenant:
    def __init__(self, tenant: str = TENANT) -> None:
        self.tenant = tenant
        self.authority = ""  # set once served: the server's https URL
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = hashlib.sha1(str(uuid.uuid4()).encode()).hexdigest()[:27]
        self.metadata_requests = 0
        self.app = FastAPI()
        self.app.get(f"/{tenant}/v2.0/.well-known/openid-configuration")(self._metadata)
        self.app.get(f"/{tenant}/discovery/v2.0/keys")(self._keys)

    @property
    def issuer(self) -> str:
        return f"{self.authority}/{self.tenant}/v2.0"

    def _metadata(self) -> JSONResponse:
        self.metadata_requests += 1
        base = f"{self.authority}/{self.tenant}"
        return JSONResponse(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": self.issuer,
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }
        )

    def _keys(self) -> JSONResponse:
        public = self.key.public_key().public_numbers()
        der = self.key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        thumb = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()
        key = {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": thumb, "n": _b64(public.n), "e": _b64(public.e)}
        return JSONResponse({"keys": [{**key, "issuer": self.issuer}]})

    def token(
        self,
        *,
        roles: list[str] | None = None,
        audience: str = CLIENT_ID,
        issuer: str | None = None,
        expires_in: int = 3600,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
    ) -> str:
        """A v2 access token for the app, as Entra issues it (sign with another ``key`` to forge one)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": issuer or self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + expires_in,
            "azp": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
            "oid": "0f9c1e6e-6e0e-4a53-8c0e-5a1f0e7b2c11",
            "preferred_username": "operator@contoso.example",
            "sub": "operator-subject",
            "tid": self.tenant,
            "ver": "2.0",
        }
        if roles is not None:
            claims["roles"] = roles
        pem = (key or self.key).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": kid or self.kid, "typ": "JWT"})
