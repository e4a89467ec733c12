"""An HTTP response body written into a file region without passing through Python: ``splice(2)``.

A ranged artifact GET from a tracking server moves 32 MB per request. Read through requests'
``iter_content`` each MB is copied into a bytes object, handed up through urllib3 and http.client
and written out again; on this project's 2-core machine that was ~2.4 s of CPU per GB in the
copying process, about as much as the source server spent sending it. With ``splice`` the kernel
moves the bytes from the socket into a pipe and from the pipe into the file's page cache: ~0.7 s
per GB, the rest being the request itself (measured in /proc CPU time, see the README's copy
profile). Only for a plain-HTTP connection (a TLS socket carries ciphertext), a body of known
length with no content encoding, on Linux; anything else goes through ``iter_content``.

The request and its status still go through MLflow's client (its credentials, headers, retries);
only the body moves here. The bytes http.client has read ahead with the headers (its buffer, up to
8 KB) are taken with ``read1`` first (one call drains that buffer), then the socket is spliced.
The connection is closed afterwards (urllib3 cannot reuse one whose body it did not read).
"""

from __future__ import annotations

import os
import select
import socket
import ssl
from typing import Any

CHUNK_BYTES = 1 << 20
PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux); the pipe's default 64 kB means 16x more calls


def write_body(response: Any, fd: int, offset: int) -> int:
    """Write ``response``'s body (a requests Response, stream=True) into ``fd`` at ``offset``;
    returns the number of bytes written."""
    length = response.headers.get("Content-Length")
    encoding = response.headers.get("Content-Encoding", "identity").lower()
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if (
        length is not None
        and encoding == "identity"
        and hasattr(os, "splice")
        and isinstance(sock, socket.socket)
        and not isinstance(sock, ssl.SSLSocket)
    ):
        return _splice(response.raw, sock, fd, offset, int(length))
    written = 0
    for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
        os.pwrite(fd, chunk, offset + written)
        written += len(chunk)
    return written


def _splice(raw: Any, sock: socket.socket, fd: int, offset: int, length: int) -> int:
    ahead = raw.read1(min(length, CHUNK_BYTES)) if length else b""  # what was buffered with the headers
    os.pwrite(fd, ahead, offset)
    written = len(ahead)
    if written >= length or sock.fileno() < 0:
        # the whole body came with the headers (http.client may then have closed the socket), or the
        # server closed early: nothing left to splice (the caller sees a short count)
        raw.close()
        return written
    timeout = sock.gettimeout()
    poll = select.poll()
    poll.register(sock.fileno(), select.POLLIN)
    read_end, write_end = os.pipe()
    try:
        try:
            import fcntl

            fcntl.fcntl(write_end, _F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # a smaller pipe (the limit in /proc/sys/fs/pipe-max-size) only costs more calls
        while written < length:
            try:
                moved = os.splice(sock.fileno(), write_end, min(length - written, PIPE_BYTES))
            except BlockingIOError:  # the socket has a timeout, so it is non-blocking underneath
                if not poll.poll(None if timeout is None else timeout * 1000):
                    raise TimeoutError(f"no body bytes for {timeout} s") from None
                continue
            if moved == 0:
                break  # the server closed the connection early: the caller sees the short count
            while moved:
                put = os.splice(read_end, fd, moved, offset_dst=offset + written)
                moved -= put
                written += put
    finally:
        os.close(read_end)
        os.close(write_end)
        raw.close()  # the body was read past urllib3: this connection is not reused
    return written
