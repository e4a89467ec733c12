"""A Unity Catalog model version's files, read the way MLflow's UC client reads them, over the Blob API.

MLflow's `UnityCatalogModelsArtifactRepository` asks the registry for the version's storage location
(`get-download-uri`) and for temporary read credentials (`generate-temporary-credentials`, operation READ),
then reads the location with the storage API the credential grants; for an Azure user delegation SAS that
is `AzureDataLakeArtifactRepository`, the ADLS gen2 DFS API (mlflow/utils/_unity_catalog_utils.py
`_get_artifact_repo_from_storage_info`). Here the same two registry calls are made through MLflow's own
repository (`_get_blob_storage_path`, `_get_scoped_token`), and the files are read with azure-storage-blob
instead: an ADLS gen2 account serves the same data over the Blob API ("Blob APIs and Data Lake Storage APIs
can operate on the same data in storage accounts that have a hierarchical namespace",
https://learn.microsoft.com/en-us/azure/storage/blobs/data-lake-storage-multi-protocol-access), and a user
delegation SAS is valid for both ("Azure Blob Storage and Azure Data Lake Storage support user delegation
SAS", https://learn.microsoft.com/en-us/rest/api/storageservices/create-user-delegation-sas). That lets the
download go to a configured blob endpoint (a private endpoint, Azure Stack, the Azurite emulator, which
serves no DFS API).

`abfss://<container>@<account>.dfs.<suffix>/<path>` is read from `https://<account>.blob.<suffix>/<container>/
<path>`, or `<storage_endpoint>/<container>/<path>`. Directories of a hierarchical namespace list through the
Blob API as empty blobs with the metadata `hdi_isfolder=true`; they are skipped. Files stream to disk in
chunks (bounded memory), a few at a time. A 403 gets fresh credentials once (MLflow refreshes its SAS the
same way), then fails permanently. Credentials for AWS, GCS or R2, and Databricks default storage, are not
read here: a permanent error names them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from shared.errors import PermanentError, RetryableError

WORKERS = 4
_FOLDER_FLAG = "hdi_isfolder"


@dataclass(frozen=True)
class BlobLocation:
    account_url: str  # https://<account>.blob.<suffix>, or the configured endpoint
    container: str
    prefix: str  # path inside the container, no leading or trailing slash

    def describe(self) -> str:
        return f"{self.account_url}/{self.container}/{self.prefix}"


class _Refused(Exception):
    """Storage answered 403 to the SAS."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def is_unity_catalog(registry_uri: str | None) -> bool:
    """Whether an MLflow registry URI names Unity Catalog (`databricks-uc`, `databricks-uc://<profile>`)."""
    return bool(registry_uri) and str(registry_uri).split(":", 1)[0] == "databricks-uc"


def blob_location(storage_location: str, storage_endpoint: str | None = None) -> BlobLocation:
    """Where the Blob API serves an `abfss://` storage location."""
    parts = urlsplit(storage_location)
    host = parts.hostname or ""
    account, _, rest = host.partition(".")
    service, _, suffix = rest.partition(".")
    if parts.scheme not in ("abfss", "abfs") or not parts.username or service != "dfs" or not suffix:
        raise PermanentError(
            f"Unity Catalog stores this version at {storage_location!r}, which is not Azure Data Lake storage "
            "(abfss://<container>@<account>.dfs.<suffix>/<path>); only Azure storage is read"
        )
    account_url = (storage_endpoint or f"https://{account}.blob.{suffix}").rstrip("/")
    return BlobLocation(account_url, parts.username, parts.path.strip("/"))


def download(
    registry_uri: str,
    name: str,
    version: str,
    into: Path,
    *,
    storage_endpoint: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> Path:
    """The files of UC model version ``name``/``version`` in a folder below ``into``; returns that folder.

    Registry errors come up as MlflowException (the caller classifies them); storage errors as
    PermanentError / RetryableError.
    """
    from mlflow.store.artifact.unity_catalog_models_artifact_repo import UnityCatalogModelsArtifactRepository

    # abstract to mypy only: MLflow sets a Python 2 `__metaclass__`, and builds this repository itself
    repo = UnityCatalogModelsArtifactRepository(f"models:/{name}/{version}", registry_uri=registry_uri)  # type: ignore[abstract]
    location = blob_location(repo._get_blob_storage_path(), storage_endpoint)  # GetModelVersionDownloadUri
    for attempt in (1, 2):
        sas = _sas_token(repo._get_scoped_token(), name, version)  # GenerateTemporaryModelVersionCredentials, READ
        progress(f"reading {name} v{version} from {location.describe()} with a temporary SAS")
        try:
            return _download(location, sas, into / "artifacts")
        except _Refused as refused:
            if attempt == 2:
                raise PermanentError(
                    f"storage refused the temporary credential Unity Catalog issued for {name} v{version} "
                    f"(HTTP 403 {refused.code}, SAS valid until {_expiry(sas)}) at {location.describe()}: "
                    "check that the reactor's clock is right and that the metastore's storage credential can "
                    "read this location; if storage is reached through another address, set "
                    "`storage_endpoint:` on the databricks-uc registries: entry"
                ) from None
    raise AssertionError("unreachable")


def _sas_token(token: Any, name: str, version: str) -> str:
    from mlflow.protos.databricks_uc_registry_messages_pb2 import StorageMode

    kind = token.WhichOneof("credentials")
    if token.storage_mode == StorageMode.DEFAULT_STORAGE:
        kind = "Databricks default storage (presigned URLs)"
    elif kind == "azure_user_delegation_sas" and token.azure_user_delegation_sas.sas_token:
        return str(token.azure_user_delegation_sas.sas_token).lstrip("?")
    raise PermanentError(
        f"Unity Catalog handed out {kind or 'no'} credentials for {name} v{version}; the reactor reads only "
        "Azure storage through an azure_user_delegation_sas (AWS, GCS and R2 storage and Databricks default "
        "storage are not supported)"
    )


def _expiry(sas: str) -> str:
    return parse_qs(sas).get("se", ["(not given)"])[0]


def _download(location: BlobLocation, sas: str, root: Path) -> Path:
    from azure.core.credentials import AzureSasCredential
    from azure.storage.blob import ContainerClient

    container = ContainerClient(location.account_url, location.container, credential=AzureSasCredential(sas))
    with container:
        names = _guarded(location, lambda: _files(container, location.prefix))
        if not names:
            raise PermanentError(f"Unity Catalog's storage location {location.describe()} holds no files")
        root.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="uc-get") as pool:
            list(pool.map(lambda blob: _guarded(location, lambda: _fetch(container, blob, location, root)), names))
    return root


def _files(container: Any, prefix: str) -> list[str]:
    found = []
    for blob in container.list_blobs(name_starts_with=f"{prefix}/", include=["metadata"]):
        metadata = {key.lower(): value for key, value in (blob.metadata or {}).items()}
        if str(metadata.get(_FOLDER_FLAG, "")).lower() != "true":
            found.append(str(blob.name))
    return found


def _fetch(container: Any, blob: str, location: BlobLocation, root: Path) -> None:
    relative = blob[len(location.prefix) + 1 :]
    clean = posixpath.normpath(relative)
    if clean.startswith(("../", "/")) or clean in ("..", "."):
        raise PermanentError(f"refusing to write blob {blob!r} outside the download folder")
    target = root / clean
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        container.download_blob(blob, max_concurrency=1).readinto(out)  # chunk by chunk


def _guarded(location: BlobLocation, call: Callable[[], Any]) -> Any:
    """``call()``, with storage errors as this package's errors (never echoing the SAS)."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    try:
        return call()
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise RetryableError(f"cannot reach storage at {location.account_url}: {type(exc).__name__}") from None
    except HttpResponseError as exc:
        status, code = exc.status_code, str(getattr(exc, "error_code", None) or "")
        if status == 403:
            raise _Refused(code or "Forbidden") from None
        message = f"storage answered HTTP {status} {code} for {location.describe()}"
        if status is not None and (status >= 500 or status in (408, 429)):
            raise RetryableError(message) from None
        raise PermanentError(message) from None
