"""What the browser tests share: the server they drive and its keys."""

from __future__ import annotations

from dataclasses import dataclass

from server_helpers import Server


@dataclass
class Site:
    server: Server
    key: str = ""  # project "web"
    other_key: str = ""  # project "elsewhere"
    slow_key: str = ""  # project "web", 1 request per minute
    revoked_key: str = ""

    @property
    def url(self) -> str:
        return self.server.base_url
