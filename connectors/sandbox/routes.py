"""How an imitated API plugs into the sandbox server.

Each API lives in its own module under `connectors/sandbox/` and exposes a `SandboxApi`: a path
prefix (e.g. "/gsc"), a `handle` function from `SandboxRequest` to `SandboxResponse`, the error
body that API sends for a bare status (used by injected faults), and a short description for
`GET /`. `connectors.sandbox.registry.apis()` lists them; the server routes by prefix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from connectors.sandbox.server import SandboxServer


@dataclass
class SandboxRequest:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    sandbox: SandboxServer

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter `name` (or of a form field in a POST body)."""
        values = self.query.get(name)
        if values:
            return values[0]
        if self.body and "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            form = parse_qs(self.body.decode("utf-8", "replace"))
            if form.get(name):
                return form[name][0]
        return default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def bearer(self) -> str:
        auth = self.headers.get("Authorization") or ""
        return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


@dataclass
class SandboxResponse:
    status: int
    body: dict | list | str | bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SandboxApi:
    """One imitated API.

    Args:
        name: the source's name ("gsc", "meta", "slack", "discourse", "discord").
        prefix: the path prefix it owns; its base URL is sandbox.base_url + prefix.
        handle: answers a request under the prefix.
        error_body: the body this API sends with a bare error status (for injected faults).
        describe: what `GET /` shows of it (base URL, ids a person needs to try it).
    """

    name: str
    prefix: str
    handle: Callable[[SandboxRequest], SandboxResponse]
    error_body: Callable[[int], dict | str]
    describe: Callable[[SandboxServer], dict]
