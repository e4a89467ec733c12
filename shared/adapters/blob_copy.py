"""Blob to blob inside Azure Storage, so that no artifact byte passes through the Function.

Put Block From URL (REST: https://learn.microsoft.com/rest/api/storageservices/put-block-from-url,
`BlobClient.stage_block_from_url`) has the storage service read a range of the source blob itself,
authorised by the SAS in the source URL, and stage it as a block of the target; Put Block List
(`commit_block_list`) then makes the blob. Blocks of ``BLOCK_BYTES`` (the service takes up to
4000 MiB each and 50,000 of them) are staged ``WORKERS`` at a time. Through this process go only the
requests: a HEAD of the source for its size, one request per block and the commit.

Why this operation: it is synchronous (no copy status to poll, as after `start_copy_from_url`), has
no size limit short of 190 TiB, works between accounts, and it is what Azurite supports: its README
(3.37, "Supported REST APIs") lists "Put Block From URL (only supports source within same Azurite
instance)" and "Copy Blob (only ... within same Azurite instance)", while "Put Blob From URL"
(`upload_blob_from_url`) is under NOT supported. A store that refuses (the source behind a network
rule the service cannot pass, another Azurite, a SAS without read) answers an HTTP error, which comes
back as `CopyRefused` with the service's code; the caller then streams the files and logs why.
"""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.settings import AzureHttpSettings

BLOCK_BYTES = 100 << 20
WORKERS = 4


class CopyRefused(Exception):
    """The storage service did not copy server-side; ``str()`` says why (the service's code)."""


def copy_blob(source_url: str, target_url: str, http: AzureHttpSettings | None = None) -> int:
    """Copy the blob at ``source_url`` (a read SAS URL) to ``target_url`` (a write SAS URL) inside the
    storage service; returns its size in bytes."""
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import BlobBlock, BlobClient

    options: dict[str, Any] = (http or AzureHttpSettings()).client_options()
    source = BlobClient.from_blob_url(source_url, **options)
    target = BlobClient.from_blob_url(target_url, **options)
    try:
        size = int(source.get_blob_properties().size)
        if size == 0:
            target.upload_blob(b"", overwrite=True)
            return 0
        offsets = range(0, size, BLOCK_BYTES)
        blocks = [(_block_id(i), offset, min(BLOCK_BYTES, size - offset)) for i, offset in enumerate(offsets)]

        def stage(block: tuple[str, int, int]) -> None:
            block_id, offset, length = block
            target.stage_block_from_url(block_id, source_url, source_offset=offset, source_length=length)

        with ThreadPoolExecutor(min(WORKERS, len(blocks)), thread_name_prefix="blob-copy") as pool:
            list(pool.map(stage, blocks))
        target.commit_block_list([BlobBlock(block_id=block_id) for block_id, _, _ in blocks])
    except HttpResponseError as exc:
        code = getattr(exc, "error_code", None) or exc.status_code
        where = f"{source.account_name} to {target.account_name}"
        raise CopyRefused(f"the storage service refused a server-side copy from {where} ({code})") from exc
    return size


def _block_id(index: int) -> str:
    """Block ids of one blob must all have the same length (base64 of a fixed-width number)."""
    return base64.b64encode(f"{index:08d}".encode()).decode()
