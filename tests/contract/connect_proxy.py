"""An HTTPS forward proxy (HTTP CONNECT) that routes chosen cloud hostnames to loopback servers.

Some SDK code builds the storage hostname itself (azureml-core's dependency upload turns a SAS URL
into `https://<account>.blob.<suffix>`), so a loopback URL cannot be handed to it. With
`HTTPS_PROXY` pointing here (and `NO_PROXY` keeping loopback direct), such a request tunnels to a
contract server whose certificate, from the test CA, is valid for that hostname: real TLS end to
end, as through any corporate proxy. Hostnames not routed are refused with 403.

    with ConnectProxy({"acct.blob.core.windows.net": 8443}) as proxy:
        env HTTPS_PROXY=proxy.url
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from typing import Any

from shared.local.processes import free_port


class ConnectProxy:
    def __init__(self, routes: dict[str, int]) -> None:
        self.routes = {host.lower(): port for host, port in routes.items()}
        self.port = free_port()
        self.tunnels: list[str] = []  # host:port of every CONNECT accepted
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ConnectProxy:
        self._server.server_bind()
        self._server.server_activate()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handle(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        host = target.rsplit(":", 1)[0].lower()
        if method != "CONNECT" or host not in self.routes:
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        upstream = socket.create_connection(("127.0.0.1", self.routes[host]), timeout=30)
        self.tunnels.append(target)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        _relay(client, upstream)


def _relay(a: socket.socket, b: socket.socket) -> None:
    peers: dict[Any, socket.socket] = {a: b, b: a}
    try:
        while True:
            readable, _, _ = select.select(list(peers), [], [], 30)
            if not readable:
                return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)
    except OSError:
        return
    finally:
        b.close()
