"""Publishes the click-to-call page to a web root: ``webrtc.publish: TARGET:PATH``.

Any target kind (``local``, ``dir:``, ``ssh://``); SSH reuses ``asterisk.ssh`` when the
target is the PBX's host. The page's files are owned like sipctl's other managed files:
``read`` compares each by its content, ``apply`` replaces them atomically (keeping
``.sipctl.bak``) and refuses when a file changed since the plan read it. Nothing is reloaded:
a web server serves files as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import ClassVar

from sipctl.providers.base import RunContext
from sipctl.providers.transport.pool import FileWrite, HostTransport
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render.webrtc import file_value, published_files
from sipctl.reconciler.resources import LiveState, Resource
from sipctl.schemas.loader import LoadedSpec
from sipctl.schemas.spec import split_publish
from sipctl.schemas.targets import parse_target


class WebrtcPageProvider:
    layer: ClassVar[str] = "webrtc"
    name: ClassVar[str] = "webrtc"

    def __init__(self, loaded: LoadedSpec, ctx: RunContext) -> None:
        webrtc = loaded.spec.webrtc
        if webrtc is None:
            raise ValueError("the spec has no webrtc section")
        self._loaded = loaded
        self._ctx = ctx
        self._target, self._root = (
            split_publish(webrtc.publish) if webrtc.publish is not None else ("local", "")
        )

    @property
    def target_id(self) -> str:
        return f"{parse_target(self._target).key}:{self._root or '-'}"

    def _transport(self) -> HostTransport:
        asterisk = self._loaded.spec.asterisk
        same_host = asterisk is not None and (
            parse_target(asterisk.target).key == parse_target(self._target).key
        )
        return self._ctx.transports.get(
            self._target, asterisk.ssh if same_host and asterisk else None
        )

    def read(self, desired: Sequence[Resource]) -> LiveState:
        live = LiveState()
        paths = [r.address.name for r in desired]
        if not paths:
            return live
        found = self._transport().read_files(paths)
        contents = {path: found[path].content for path in paths}
        live.private["contents"] = contents
        live.fingerprint_extra = {
            p: hashlib.sha256(c).hexdigest() if c is not None else None for p, c in contents.items()
        }
        for resource in desired:
            content = contents[resource.address.name]
            if content is not None:
                live.resources[resource.address] = file_value(content)
        return live

    def apply(self, changes: Sequence[Change], live: LiveState) -> list[str]:
        if not changes:
            return []
        contents: dict[str, bytes | None] = live.private.get("contents") or {}
        texts = published_files(self._loaded.spec)
        writes = [
            FileWrite(
                c.address.name,
                None if c.action == "delete" else texts[c.address.name].encode("utf-8"),
                contents.get(c.address.name),
            )
            for c in changes
        ]
        self._transport().write_files(writes)
        return [f"webrtc {self.target_id}: wrote {w.path}" for w in writes]
