"""Entity-group transactions on a Table client, with the multipart body written once.

The body is the one the Table service documents ("Performing entity group transactions", Table
service REST reference, https://learn.microsoft.com/en-us/rest/api/storageservices/performing-entity-group-transactions):
a ``multipart/mixed`` batch holding one change set, each operation an ``application/http`` part
(an Insert Entity POST, or an Update Entity PUT with ``If-Match``), the inner requests unsigned.
It goes out through the client's own pipeline (authentication, retries, ``x-ms-version``, hooks),
as ``TableClient.submit_transaction`` sends it; what that method adds is azure-core building the
same body part by part (each through its own policies, twice) and parsing the answer with the
``email`` package, which measured ~40% of an intake's client time (docs/benchmarks.md).
The entities' OData typing is the SDK's own (``_add_entity_properties``).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

STATUS_LINE = re.compile(r"^HTTP/1\.1 (\d{3})", re.MULTILINE)


@dataclass(frozen=True)
class Refusal:
    """The operation the service refused, and why (the whole batch was rolled back)."""

    status: int
    code: str
    index: int  # of the operation refused; 0 also when the service did not say


def submit(
    client: Any, creates: Sequence[Mapping[str, Any]], update: tuple[Mapping[str, Any], str] | None = None
) -> Refusal | None:
    """Create ``creates`` and (first) replace ``update``'s entity if its ETag still matches, all in
    one partition, all or nothing; None when done, else what was refused."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest
    from azure.data.tables._serialize import _add_entity_properties, _prepare_key

    base = f"{client.scheme}://{client._primary_hostname}"
    table = client.table_name
    parts = []
    if update is not None:
        entity, etag = update
        where = f"(PartitionKey='{_prepare_key(entity['PartitionKey'])}',RowKey='{_prepare_key(entity['RowKey'])}')"
        parts.append(_part(f"PUT {base}/{table}{where}", _add_entity_properties(entity), {"If-Match": etag}))
    parts += [
        _part(f"POST {base}/{table}", _add_entity_properties(e), {"Prefer": "return-no-content"}) for e in creates
    ]
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    body = (
        f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
        + "".join(f"--{changeset}\r\n{part}\r\n" for part in parts)
        + f"--{changeset}--\r\n--{batch}--\r\n"
    )
    request = HttpRequest(
        "POST",
        f"{base}/$batch",
        headers={
            "x-ms-version": client.api_version,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={batch}",
            "Accept": "application/json",
        },
        content=body.encode(),
    )
    response = client._client.send_request(request, stream=True)  # streamed: no policy decodes the multipart
    response.read()
    if response.status_code != 202:
        raise HttpResponseError(message=f"entity group transaction on {table}: {response.text()}", response=response)
    return _refusal(response.text())


def _part(request_line: str, entity: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    lines = [
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "",
        f"{request_line} HTTP/1.1",
        "Content-Type: application/json",
        "Accept: application/json;odata=minimalmetadata",
        "DataServiceVersion: 3.0",
        *(f"{name}: {value}" for name, value in headers.items()),
        "",
        json.dumps(entity, ensure_ascii=False),
    ]
    return "\r\n".join(lines)


def _refusal(text: str) -> Refusal | None:
    """The first part that is not a 2xx: a refused change set answers with that one part alone,
    its JSON error naming the operation as ``<index>:<message>``."""
    for found in STATUS_LINE.finditer(text):
        status = int(found.group(1))
        if 200 <= status < 300:
            continue
        start = text.find("{", found.end())
        code, index = "", 0
        try:
            error = json.JSONDecoder().raw_decode(text, start)[0].get("odata.error", {})
            code = str(error.get("code", ""))
            head = str(error.get("message", {}).get("value", "")).split(":", 1)[0]
            index = int(head) if head.isdigit() else 0
        except (ValueError, AttributeError):
            pass
        return Refusal(status, code, index)
    return None
