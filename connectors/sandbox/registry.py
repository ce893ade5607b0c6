"""The imitated APIs the sandbox serves besides GA4 (which the server routes itself).

Add a source by writing `connectors/sandbox/<source>_api.py` with a module-level `API` (a
`SandboxApi`) and listing the module here.
"""

from __future__ import annotations

import functools
import importlib

from connectors.sandbox.routes import SandboxApi

API_MODULES: tuple[str, ...] = ("meta_api", "discourse_api", "discord_api", "slack_api", "gsc_api")


@functools.cache
def apis() -> tuple[SandboxApi, ...]:
    return tuple(importlib.import_module(f"connectors.sandbox.{name}").API for name in API_MODULES)


def api_for(path: str) -> SandboxApi | None:
    for api in apis():
        if path == api.prefix or path.startswith(api.prefix + "/"):
            return api
    return None
