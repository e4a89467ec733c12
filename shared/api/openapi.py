"""The OpenAPI document as the app really answers, and Swagger UI 5 (which renders OpenAPI 3.1)
served from the files of the installed `fastapi-swagger` package (no CDN: `/api/docs` works offline)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from shared.api.opsauth import SCHEME, OpsGuard
from shared.config.schema import ReactorConfig
from shared.ingest.sources import webhook_sources

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "problems"],
    "properties": {
        "error": {"type": "string", "description": "what was wrong and how to fix it"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "problem"],
                "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
            },
        },
    },
}
REASONS = {
    "400": "malformed request: invalid JSON, duplicate keys, wrong types (booleans are strict), unknown fields",
    "401": "missing or invalid credential (webhook signature, or the operator bearer token)",
    "403": "a valid operator token without the required app role",
    "404": "no such event, action, deployment target or source",
    "409": "the state refuses it: nothing kept to roll back to, or an approval decided already, expired or not"
    " waiting yet (the error says which)",
    "413": "body larger than MODELOPS_MAX_BODY_BYTES",
    "503": "something the answer needs cannot be reached now: the Entra signing keys, a source registry",
}
# every route's answers beside its success codes (DESIGN section 5); guarded ops routes add 401/403 (and 503, Entra)
ANSWERS: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("post", "/api/hooks/mlflow"): (("200", "202"), ("400", "401", "413")),
    ("post", "/api/hooks/databricks"): (("200", "202"), ("400", "401", "413")),
    ("post", "/api/hooks/eventgrid"): (("200", "202"), ("400", "413")),
    ("post", "/api/hooks/{source}"): (("200", "202"), ("400", "401", "404", "413")),
    ("options", "/api/hooks/eventgrid"): (("200",), ("400",)),
    ("get", "/api/health"): (("200",), ()),
    ("get", "/api/events"): (("200",), ("400",)),
    ("get", "/api/events/{event_id}"): (("200",), ("404",)),
    ("post", "/api/events/{event_id}/replay"): (("202",), ("400", "404", "413")),
    ("get", "/api/actions"): (("200",), ("400",)),
    ("get", "/api/actions/{action_id}"): (("200",), ("404",)),
    ("post", "/api/actions"): (("200", "202"), ("400", "413")),
    ("get", "/api/deployments"): (("200",), ()),
    ("post", "/api/cleanup"): (("200",), ("400", "413")),
    ("post", "/api/plan"): (("200",), ("400", "413")),
    ("post", "/api/deployments/{target}/rollback"): (("200", "202"), ("400", "404", "409", "413")),
    ("get", "/api/status"): (("200",), ("400", "404", "503")),
    ("get", "/api/approvals"): (("200",), ()),
    # deciding takes the approver credential even where the ops routes are open reads
    ("post", "/api/actions/{action_id}/approve"): (("200",), ("400", "401", "403", "404", "409", "413")),
}


def document(app: FastAPI, guard: OpsGuard, config: ReactorConfig) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    components["schemas"].pop("HTTPValidationError", None)
    components["schemas"].pop("ValidationError", None)
    if guard.enforced:
        components["securitySchemes"] = {
            SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "operator credential: an Entra ID access token with the app role "
                f"{guard.settings.role}, or MODELOPS_OPS_TOKEN; never a webhook secret or function key",
            }
        }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            guarded = _guarded(guard, method, path)
            auth = (["401", "403"] + (["503"] if guard.settings.tenant_id else [])) if guarded else []
            _describe(operation, ANSWERS.get((method, path), (("200",), ("400",))), auth)
    _narrow_action_request(schema, config)
    _narrow_plan_request(schema, config)
    _name_webhook_sources(schema, config)
    return schema


def _guarded(guard: OpsGuard, method: str, path: str) -> bool:
    if not guard.enforced or path.startswith("/api/hooks/") or path == "/api/health":
        return False
    return method != "get" or not guard.settings.open_reads


def _describe(operation: dict[str, Any], answers: tuple[tuple[str, ...], tuple[str, ...]], auth: list[str]) -> None:
    success, refusals = answers
    old = operation.get("responses", {})
    content = next((old[c]["content"] for c in success if "content" in old.get(c, {})), None)
    content = content or {"application/json": {"schema": {"type": "object", "additionalProperties": True}}}
    responses: dict[str, Any] = {
        code: {"description": old.get(code, {}).get("description", "OK"), "content": content} for code in success
    }
    codes = list(refusals) + auth
    for code in sorted(set(codes)):
        responses[code] = {"description": REASONS[code], "content": {"application/json": {"schema": ERROR_REF}}}
    if "WebHook-Request-Origin" in str(operation.get("parameters", "")):  # the handshake answers headers only
        allowed = {"schema": {"type": "string"}}
        responses["200"] = {
            "description": "handshake accepted",
            "headers": {"WebHook-Allowed-Origin": allowed, "WebHook-Allowed-Rate": allowed},
        }
    operation["responses"] = responses
    if auth:
        operation["security"] = [{SCHEME: []}]


def _narrow_action_request(schema: dict[str, Any], config: ReactorConfig) -> None:
    """`POST /api/actions` accepts a target of its kind's section and a configured source: say which."""
    operation = schema["paths"].get("/api/actions", {}).get("post")
    if operation is None:
        return
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    sections: dict[str, Mapping[str, object]] = {
        "register": config.registries,
        "deploy": config.deployments,
        "batch_score": config.batch,
    }
    variants = []
    for kind, targets in sections.items():
        if not targets:
            continue
        props = {**body["properties"], "kind": {"const": kind}, "target": {"enum": sorted(targets)}}
        if config.sources:
            props["source"] = {"anyOf": [{"enum": sorted(config.sources)}, {"type": "null"}]}
        variants.append({**body, "properties": props})
    operation["requestBody"]["content"]["application/json"]["schema"] = {"oneOf": variants} if variants else body


def _narrow_plan_request(schema: dict[str, Any], config: ReactorConfig) -> None:
    """`POST /api/plan` takes a payload of a sender's format (optionally with a configured `source`),
    or an event's fields: say exactly which bodies it plans."""
    from shared.api.plan import PLAN_PAYLOADS, PlanEvent

    operation = schema["paths"].get("/api/plan", {}).get("post")
    if operation is None:
        return
    source: dict[str, Any] = (
        {"anyOf": [{"enum": sorted(config.sources)}, {"type": "null"}]}
        if config.sources
        else {"type": ["string", "null"]}
    )
    event = PlanEvent.model_json_schema(mode="validation")
    event["properties"]["source"] = {**source, "description": event["properties"]["source"].get("description", "")}
    payload = {"description": "a sender's webhook body", "anyOf": list(PLAN_PAYLOADS.values())}
    variants = [
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["payload"],
            "properties": {"payload": payload, "source": source},
        },
        {"type": "object", "additionalProperties": False, "required": ["event"], "properties": {"event": event}},
    ]
    operation["requestBody"]["content"]["application/json"]["schema"] = {"oneOf": variants}


def _name_webhook_sources(schema: dict[str, Any], config: ReactorConfig) -> None:
    """`POST /api/hooks/{source}` answers for the configured mlflow and databricks sources: say which."""
    operation = schema["paths"].get("/api/hooks/{source}", {}).get("post")
    names = webhook_sources(config)
    if operation is None or not names:
        return
    for parameter in operation.get("parameters", []):
        if parameter.get("name") == "source" and parameter.get("in") == "path":
            parameter["schema"] = {"type": "string", "enum": names, "title": "Source"}
            parameter["description"] = "a configured source of kind mlflow or databricks"


def install(app: FastAPI, guard: OpsGuard, config: ReactorConfig) -> None:
    """Serve `/api/openapi.json` from :func:`document` and Swagger UI from the local package."""
    from importlib.resources import files

    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if "doc" not in cache:
            cache["doc"] = document(app, guard, config)
        return dict(cache["doc"])

    app.openapi = openapi  # type: ignore[method-assign]
    # only its files: the package's own patch_fastapi() would add routes outside /api
    swagger_ui = str(files("fastapi_swagger") / "resources")
    app.mount("/api/docs/static", StaticFiles(directory=swagger_ui), name="swagger-ui")

    page = get_swagger_ui_html(
        openapi_url="/api/openapi.json",
        title=f"{app.title} - API",
        swagger_js_url="/api/docs/static/swagger-ui-bundle.js",
        swagger_css_url="/api/docs/static/swagger-ui.css",
        swagger_favicon_url="/api/docs/static/favicon-32x32.png",
        # Swagger UI would otherwise ask validator.swagger.io to badge the document
        swagger_ui_parameters={"validatorUrl": None},
    )
    headers = docs_headers(bytes(page.body).decode())

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page.body, headers=headers)


def docs_headers(html: str) -> dict[str, str]:
    """The docs page may run the bundle it serves and its own one inline script (by hash), fetch from
    here only, and be framed by no one (clickjacking): Swagger UI sends requests with what is typed in."""
    inline = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline)
    policy = (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
