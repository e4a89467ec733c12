"""Which proxies' `X-Forwarded-For` / `X-Forwarded-Proto` are believed (MODELOPS_TRUSTED_PROXIES).

Anyone can send the headers; only a proxy in front of the app can vouch for them. The setting lists
the proxies' addresses or networks (`10.0.0.0/8, 127.0.0.1`), and `host` for the Functions host,
which hands requests to the app without a peer address (in Azure, App Service's front end appends
the address it saw as the last `X-Forwarded-For` entry). Without the setting the headers are
ignored and the peer's own address is the client's.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from shared.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
HOST = "host"  # the Functions host: the ASGI scope has no client address


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()
    host: bool = False

    @classmethod
    def parse(cls, text: str | None) -> TrustedProxies:
        """``10.0.0.0/8, 127.0.0.1, host``; raises ValueError naming the entry that is neither."""
        networks: list[Network] = []
        host = False
        for entry in (part.strip() for part in (text or "").split(",")):
            if not entry:
                continue
            if entry.lower() == HOST:
                host = True
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address, a network (10.0.0.0/8) or `host`") from None
        return cls(tuple(networks), host)

    @classmethod
    def from_setting(cls, text: str | None) -> TrustedProxies:
        """MODELOPS_TRUSTED_PROXIES, refused at start naming the setting when an entry is wrong."""
        try:
            return cls.parse(text)
        except ValueError as exc:
            fix = "list proxies, e.g. 10.0.0.0/8, host"
            raise ConfigError.single("environment", "MODELOPS_TRUSTED_PROXIES", str(exc), fix) from None

    def trusts(self, peer: str | None) -> bool:
        """Whether the direct peer (None: the Functions host) is a proxy whose headers count."""
        if peer is None:
            return self.host
        return self._listed(peer)

    def client(self, peer: str | None, forwarded: str | None) -> str:
        """The client's address for logs: the peer's, or (behind a trusted proxy) the last
        `X-Forwarded-For` entry that is not itself a trusted proxy."""
        direct = peer or "the Functions host"
        if not forwarded or not self.trusts(peer):
            return peer or "unknown"
        hops = [_address(hop) for hop in forwarded.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._listed(hop):
                return f"{hop} (via {direct})"
        return f"{hops[0]} (via {direct})" if hops else direct

    def _listed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def _address(hop: str) -> str:
    """An entry without its port (`1.2.3.4:5678`, `[2001:db8::1]:443`), as App Service writes them."""
    hop = hop.strip()
    if hop.startswith("["):
        return hop[1:].partition("]")[0]
    if hop.count(":") == 1:
        return hop.partition(":")[0]
    return hop
