"""Helpers shared by the Asterisk tests: specs for a test PBX, plan and apply one layer."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import yaml
from fixtures.asterisk import AsteriskInstance

from sipctl.providers.asterisk.provider import AsteriskProvider
from sipctl.providers.base import RunContext
from sipctl.reconciler.diff import diff
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render.asterisk import render_asterisk
from sipctl.reconciler.resources import LiveState
from sipctl.schemas.loader import LoadedSpec, load_spec

USERS = {"director": "105", "alex": "106", "101": "101"}


def spec_data(
    pbx: AsteriskInstance, users: dict[str, str] | None = None, **asterisk: Any
) -> dict[str, Any]:
    return {
        "version": 1,
        "domain": "mysite.ru",
        "transports": {"udp": {"port": pbx.sip_port}, "tcp": {"port": pbx.sip_port}},
        "users": dict(USERS if users is None else users),
        "asterisk": pbx.spec_section(**asterisk),
    }


def write_spec(directory: Path, data: dict[str, Any], name: str = "sipctl.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def plan_layer(spec_file: Path) -> tuple[AsteriskProvider, RunContext, list[Change], LiveState]:
    loaded: LoadedSpec = load_spec(spec_file)
    ctx = RunContext(base_dir=loaded.base_dir)
    provider = AsteriskProvider(loaded, ctx)
    desired = render_asterisk(loaded.spec)
    live = provider.read(desired)
    return provider, ctx, diff(desired, live), live


def apply_spec(spec_file: Path) -> list[str]:
    """Plan and apply the Asterisk layer of ``spec_file``; fail on plan problems."""
    provider, ctx, changes, live = plan_layer(spec_file)
    try:
        assert not live.problems, live.problems
        return provider.apply(changes, live)
    finally:
        ctx.close()


def pending_changes(spec_file: Path) -> list[Change]:
    _, ctx, changes, _ = plan_layer(spec_file)
    ctx.close()
    return changes


class Phone:
    """Extension 105's phone: a UDP socket, answered from a thread, that records INVITEs.

    Every INVITE is answered busy (486), so the caller hears busy and the test sees what
    the guest dialplan does after a Dial that failed.
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.05)
        self.invites: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            text = data.decode(errors="replace")
            if text.startswith("INVITE"):
                self.invites.append(text)
                self.sock.sendto(_response(text, 486).encode(), peer)
            elif text.startswith(("CANCEL", "BYE", "OPTIONS")):
                self.sock.sendto(_response(text, 200).encode(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self.sock.close()


def _response(request: str, status: int) -> str:
    reasons = {200: "OK", 486: "Busy Here"}
    head = request.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
    keep = [
        line
        for line in head
        if line.split(":", 1)[0].strip().lower() in ("via", "from", "to", "call-id", "cseq")
    ]
    keep = [
        line + ";tag=phone" if line.lower().startswith("to:") and "tag=" not in line else line
        for line in keep
    ]
    return (
        f"SIP/2.0 {status} {reasons.get(status, 'X')}\r\n"
        + "\r\n".join(keep)
        + "\r\nContent-Length: 0\r\n\r\n"
    )
