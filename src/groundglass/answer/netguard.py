"""SSRF guard: refuse to fetch from private, loopback, link-local or cloud-metadata addresses.

Two layers, both needed:
- :func:`check_url` vets a URL before a request (scheme, host, every address the name resolves to)
  so the user gets a clear error early;
- :func:`guarded_client` / :func:`guarded_async_client` give httpx clients whose connections are made
  by a network backend that resolves the host itself, vets the addresses and connects to the vetted
  address. That closes DNS rebinding (the name resolving to a public address for the check and a
  private one for the connection) and re-checks every redirect hop, since each hop opens its own
  connection. Environment proxies are ignored (``trust_env=False``) so a request cannot be routed
  around the check.

An address is allowed when it is globally routable (``ipaddress``'s ``is_global``; this excludes
RFC 1918, loopback, link-local including 169.254.169.254, CGNAT, ULA, multicast, reserved) or
when it is inside one of ``allowed_networks``, or when ``allow_private`` is on.

httpx has no public hook for the connection layer, so the guarded transports swap the network
backend of the transport's httpcore pool; ``_install_backend`` checks that the attribute exists and
fails loudly if a future httpx moves it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from groundglass.errors import GroundglassError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
FIX = (
    "set fetch.allow_private = true in the config (or pass --allow-private to index add) only if you trust "
    "this address"
)


class BlockedAddressError(GroundglassError):
    """A URL points to an address the guard refuses (private, loopback, metadata...)."""

    status = 403
    code = "blocked_address"


class Policy:
    """What the guard lets through."""

    def __init__(self, allow_private: bool = False, allowed_networks: Iterable[str] = ()) -> None:
        self.allow_private = allow_private
        self.networks = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]

    @classmethod
    def from_settings(cls, crawl: Any) -> Policy:
        return cls(bool(getattr(crawl, "allow_private", False)), getattr(crawl, "allowed_networks", ()) or ())

    def allows(self, ip: IPAddress) -> bool:
        if self.allow_private:
            return True
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self.networks):
            return True
        return ip.is_global and not ip.is_multicast


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise GroundglassError(
            f"cannot resolve host {host!r}: {exc.strerror}", "check the URL and your network"
        ) from exc
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def vet_host(host: str, port: int, policy: Policy) -> list[IPAddress]:
    """The addresses of ``host`` if all are allowed; raise :class:`BlockedAddressError` otherwise."""
    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        addresses = _resolve(host, port)
    blocked = [a for a in addresses if not policy.allows(a)]
    if blocked:
        raise BlockedAddressError(
            f"refusing to fetch from {host} ({blocked[0]}): a private, loopback, "
            "link-local or metadata address",
            FIX,
        )
    return addresses


def check_url(url: str, policy: Policy) -> None:
    """Raise when ``url`` is not http(s) or its host resolves to a refused address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise GroundglassError(f"unsupported URL scheme in {url!r}", "use an http:// or https:// URL")
    if not parts.hostname:
        raise GroundglassError(f"no host in URL {url!r}", "use a full URL like https://example.com/page")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    vet_host(parts.hostname, port, policy)


class GuardedBackend(httpcore.SyncBackend):
    """Resolves, vets, then connects to the vetted address (TLS still verifies the host name)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = vet_host(host, port, self.policy)
        last: Exception | None = None
        for ip in addresses:
            try:
                return super().connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"cannot connect to {host}:{port}")


class AsyncGuardedBackend(httpcore.AsyncNetworkBackend):
    """The asyncio/anyio twin of :class:`GuardedBackend`."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await asyncio.to_thread(vet_host, host, port, self.policy)
        last: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"cannot connect to {host}:{port}")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _install_backend(transport: httpx.HTTPTransport | httpx.AsyncHTTPTransport, backend: Any) -> None:
    pool = getattr(transport, "_pool", None)
    if pool is None or not hasattr(pool, "_network_backend"):
        raise RuntimeError("this httpx version hides its connection pool; update groundglass.answer.netguard")
    pool._network_backend = backend


def _client_kwargs(
    timeout_s: float, user_agent: str, headers: dict[str, str] | None, follow_redirects: bool
) -> dict[str, Any]:
    return {
        "timeout": httpx.Timeout(timeout_s),
        "follow_redirects": follow_redirects,
        "max_redirects": 5,
        "trust_env": False,
        "headers": {"User-Agent": user_agent, **(headers or {})},
    }


def guarded_client(
    policy: Policy,
    *,
    timeout_s: float = 15.0,
    user_agent: str = "groundglass",
    headers: dict[str, str] | None = None,
    follow_redirects: bool = True,
) -> httpx.Client:
    """An ``httpx.Client`` that can only connect to addresses ``policy`` allows (redirects included)."""
    transport = httpx.HTTPTransport(retries=0)
    _install_backend(transport, GuardedBackend(policy))
    return httpx.Client(
        transport=transport, **_client_kwargs(timeout_s, user_agent, headers, follow_redirects)
    )


def guarded_async_client(
    policy: Policy,
    *,
    timeout_s: float = 15.0,
    user_agent: str = "groundglass",
    headers: dict[str, str] | None = None,
    follow_redirects: bool = True,
) -> httpx.AsyncClient:
    """The async twin of :func:`guarded_client`."""
    transport = httpx.AsyncHTTPTransport(retries=0)
    _install_backend(transport, AsyncGuardedBackend(policy))
    return httpx.AsyncClient(
        transport=transport, **_client_kwargs(timeout_s, user_agent, headers, follow_redirects)
    )


def blocked_cause(exc: BaseException) -> BlockedAddressError | None:
    """The :class:`BlockedAddressError` behind an httpx error, if that is what stopped the request."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, BlockedAddressError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


__all__: Sequence[str] = [
    "BlockedAddressError",
    "Policy",
    "blocked_cause",
    "check_url",
    "guarded_async_client",
    "guarded_client",
    "vet_host",
]
