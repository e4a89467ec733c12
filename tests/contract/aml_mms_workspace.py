"""The workspace around the Model Management Service contract: ARM's workspace and compute bodies,
the artifact service's batch create, and the workspace storage account that receives the uploads.
Sources: see tests/contract/aml_mms_server.py."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

WS = "subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
BLOB_ACCOUNT = "amlwsstorage"
BLOB_HOST = f"{BLOB_ACCOUNT}.blob.core.windows.net"
SAS = "sv=2019-07-07&sr=b&sp=rcw&sig=contract"


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def workspace_body(sub: str, rg: str, ws: str, *, workspace_id: str | None, contract: Any) -> Any:
    """Workspaces - Get, or ARM's 404 for a workspace the contract does not hold."""
    if sub != contract.subscription_id or workspace_id is None:
        return error(404, "ResourceNotFound", f"The Resource 'Microsoft.MachineLearningServices/workspaces/{ws}' "
                      f"under resource group '{rg}' was not found.")  # fmt: skip
    resource = "/" + WS.format(sub=sub, rg=rg, ws=ws)
    group = f"/subscriptions/{sub}/resourceGroups/{rg}/providers"
    return {
        "id": resource, "name": ws, "type": "Microsoft.MachineLearningServices/workspaces",
        "location": "westeurope",
        "identity": {"type": "SystemAssigned", "principalId": str(uuid.uuid4()), "tenantId": contract.tenant_id},
        "sku": {"name": "Basic", "tier": "Basic"}, "tags": {},
        "properties": {
            "workspaceId": workspace_id, "friendlyName": ws, "description": "",
            "storageAccount": f"{group}/Microsoft.Storage/storageAccounts/{BLOB_ACCOUNT}",
            "keyVault": f"{group}/Microsoft.KeyVault/vaults/kv",
            "applicationInsights": f"{group}/microsoft.insights/components/ai",
            "discoveryUrl": f"{contract.base_url}/discovery", "provisioningState": "Succeeded", "hbiWorkspace": False,
        },
    }  # fmt: skip


def compute_body(sub: str, rg: str, ws: str, name: str, fqdn: str | None) -> Any:
    """Compute - Get of an attached AKS cluster, or 404."""
    if fqdn is None:
        return error(404, "ResourceNotFound", f"Compute {name} not found in workspace {ws}.")
    return {
        "id": "/" + WS.format(sub=sub, rg=rg, ws=ws) + f"/computes/{name}", "name": name, "location": "westeurope",
        "type": "Microsoft.MachineLearningServices/workspaces/computes", "tags": None,
        "properties": {
            "computeType": "AKS", "computeLocation": "westeurope", "provisioningState": "Succeeded",
            "description": None, "createdOn": now(), "modifiedOn": now(), "isAttachedCompute": True,
            "provisioningErrors": None,
            "resourceId": f"/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.ContainerService/"
            f"managedClusters/{name}",
            "properties": {"clusterFqdn": fqdn, "agentCount": 3, "agentVmSize": "Standard_D3_v2",
                           "clusterPurpose": "FastProd", "systemServices": [], "sslConfiguration": None,
                           "loadBalancerType": "PublicIp", "loadBalancerSubnet": None},
        },
    }  # fmt: skip


def artifact_batch(origin: str, container: str, paths: list[str]) -> Any:
    """Artifacts created empty, each with a write SAS URL on the workspace's blob host."""
    ids = {p: f"{origin}/{container}/{p}" for p in paths}
    return {
        "artifacts": {
            p: {
                "artifactId": ids[p],
                "origin": origin,
                "container": container,
                "path": p,
                "etag": '"0x1"',
                "createdTime": now(),
            }
            for p in paths
        },  # fmt: skip
        "artifactContentInformation": {
            p: {
                "contentUri": f"https://{BLOB_HOST}/azureml/{ids[p]}?{SAS}",
                "origin": origin,
                "container": container,
                "path": p,
            }
            for p in paths  # fmt: skip
        },
        "errors": {},
    }


def blob_app(blobs: dict[str, bytes], requests: list[tuple[str, str]]) -> FastAPI:
    """The workspace storage account's Put Blob / Get Blob Properties, for SAS-signed uploads."""
    app = FastAPI()

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        requests.append((request.method, f"blob:{request.url.path}?{request.url.query}"))
        return await call_next(request)

    @app.put("/azureml/{path:path}")
    async def put_blob(path: str, request: Request) -> Any:
        if "sig=contract" not in request.url.query.split("&") or request.headers.get("x-ms-blob-type") != "BlockBlob":
            return Response(f"SAS or blob type refused: {request.url.query}", status_code=403)
        blobs[path] = await request.body()
        headers = {"ETag": '"0x8D"', "Last-Modified": "Tue, 01 Dec 2026 00:00:00 GMT",
                   "x-ms-request-server-encrypted": "true", "x-ms-version": "2019-07-07"}  # fmt: skip
        return Response(status_code=201, headers=headers)

    @app.head("/azureml/{path:path}")
    def blob_properties(path: str) -> Any:
        # azureml-core compares the uploaded size with the local file's (Get Blob Properties)
        if path not in blobs:
            return Response(status_code=404, headers={"x-ms-error-code": "BlobNotFound"})
        headers = {"Content-Length": str(len(blobs[path])), "x-ms-blob-type": "BlockBlob",
                   "ETag": '"0x8D"', "Last-Modified": "Tue, 01 Dec 2026 00:00:00 GMT",
                   "x-ms-creation-time": "Tue, 01 Dec 2026 00:00:00 GMT", "x-ms-version": "2019-07-07",
                   "x-ms-lease-state": "available", "x-ms-lease-status": "unlocked"}  # fmt: skip
        return Response(status_code=200, headers=headers)

    return app
