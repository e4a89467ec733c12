"""A TCP front for a real MLflow server that can turn hostile: 503s, connection resets, hangs."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Literal

Mode = Literal["proxy", "503", "reset", "hang"]
UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 58\r\n"
    b"Connection: close\r\n\r\n"
    b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "x"}\r\n'
)


class FlakySource:
    """Listens on a loopback port; in ``proxy`` mode pipes bytes to ``upstream``, otherwise
    misbehaves per connection the way a failing tracking server or load balancer does."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode: Mode = "proxy"
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closing = threading.Event()
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FlakySource:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._listener.close()
        for sock in list(self._open):
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn, self.mode), daemon=True).start()

    def _serve(self, conn: socket.socket, mode: Mode) -> None:
        if mode == "proxy":
            self._pipe(conn)
            return
        with contextlib.suppress(OSError):
            conn.settimeout(5)
            conn.recv(65536)  # the request head: answer only once something was asked
            if mode == "503":
                conn.sendall(UNAVAILABLE)
                conn.close()
            elif mode == "reset":
                # SO_LINGER 0: close sends RST, the client sees "connection reset by peer"
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            else:  # hang: keep the connection open, say nothing, until the test ends
                self._closing.wait()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
        except OSError:
            client.close()
            return
        self._open.append(upstream)

        def copy(src: socket.socket, dst: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while chunk := src.recv(65536):
                    dst.sendall(chunk)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=copy, args=(upstream, client), daemon=True)
        back.start()
        copy(client, upstream)
        back.join()
        client.close()
        upstream.close()
