"""Which addresses ``audit`` and ``verify`` may probe: the spec's own PBX, nothing else.

The DNS a spec publishes can point anywhere (a hosted PBX's ``sip1.provider.test``), and a
merge request can change it. So the probes follow one rule, whatever the DNS says:

- an address belongs to the spec's PBX when it is the asterisk target's host (for
  ``local``: an address of this machine), or an address the spec declares for one of its
  servers inside its own zone (``servers[].ipv4``/``ipv6``);
- the runner profile may allow more (``probe_targets``: addresses or host names);
- a spec without an asterisk section has no PBX of its own: ``audit`` sends it no attack
  probe at all, ``verify`` only its OPTIONS to what the DNS names (``verify_scope``);
- a hosting customer's PBX is its host's, whatever its own file says: it has no asterisk
  section, and was taken for a DNS-only spec, so its records (its own ``servers``, any
  address, any port) sent the hoster's verify runs to whatever the customer named.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sipctl.schemas.targets import parse_target

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Spec

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ProbeScope:
    """The addresses (and names) that may be probed; ``everything``: no limit (verify of a
    DNS-only spec)."""

    addresses: frozenset[Address] = frozenset()
    names: frozenset[str] = frozenset()
    everything: bool = False
    local: bool = False  # the asterisk target is this machine
    _local_addresses: list[frozenset[Address]] = field(default_factory=list, compare=False)

    def allows(self, address: str, name: str = "") -> bool:
        if self.everything:
            return True
        if name and name.lower().rstrip(".") in self.names:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return address.lower().rstrip(".") in self.names
        if ip in self.addresses:
            return True
        if self.local:
            if ip.is_loopback:
                return True
            if not self._local_addresses:
                self._local_addresses.append(frozenset(local_addresses()))
            return ip in self._local_addresses[0]
        return False

    def refusal(self, address: str, name: str, port: int) -> str:
        shown = f"{name} ({address})" if name and name != address else address
        return (
            f"{shown} port {port} is not an address of this spec's PBX (the asterisk target "
            "and the addresses the spec declares for its servers): not probed; a runner "
            "profile's probe_targets may allow it (see: sipctl docs security)"
        )


def audit_scope(loaded: LoadedSpec, env: Mapping[str, str]) -> ProbeScope | None:
    """What ``audit`` may attack; None for a spec with no PBX of its own (no asterisk)."""
    if loaded.spec.asterisk is None:
        return None
    return _pbx_scope(loaded.spec, env)


def verify_scope(loaded: LoadedSpec, env: Mapping[str, str]) -> ProbeScope:
    """What ``verify`` may send OPTIONS to: a DNS-only spec's DNS names the PBX it uses
    (verify asks each what a caller would); a spec with a PBX, only that PBX; a hosting
    customer, only its host's."""
    pbx = loaded.spec.served_by or loaded.spec
    if pbx.asterisk is None:
        return ProbeScope(everything=True)
    return _pbx_scope(pbx, env)


def _pbx_scope(spec: Spec, env: Mapping[str, str]) -> ProbeScope:
    from sipctl.reconciler.bindings import runner_of

    assert spec.asterisk is not None
    addresses: set[Address] = set()
    names: set[str] = set()
    ref = parse_target(spec.asterisk.target)
    if ref.kind == "ssh":
        _add(ref.host, addresses, names)
    zone = (spec.dns.zone if spec.dns is not None and spec.dns.zone else spec.domain).lower()
    for server in spec.servers:
        host = server.host.lower().rstrip(".")
        if host == zone or host.endswith("." + zone):
            names.add(host)
            for text in (*server.ipv4, *server.ipv6):
                addresses.add(ipaddress.ip_address(text))
    runner = runner_of(env)
    if runner.profile is not None:
        for extra in runner.profile.probe_targets:
            _add(extra, addresses, names)
    return ProbeScope(frozenset(addresses), frozenset(names), local=ref.kind == "local")


def _add(text: str, addresses: set[Address], names: set[str]) -> None:
    try:
        addresses.add(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        names.add(text.lower().rstrip("."))


def local_addresses() -> Iterable[Address]:
    """The addresses of this machine's interfaces (Linux: /proc), and what its name
    resolves to."""
    found: set[Address] = set()
    try:
        trie = Path("/proc/net/fib_trie").read_text()
    except OSError:
        trie = ""
    lines = trie.splitlines()
    for index, line in enumerate(lines):
        if "/32 host LOCAL" in line and index > 0:
            text = lines[index - 1].strip().lstrip("|-+ ").strip()
            with contextlib.suppress(ValueError):
                found.add(ipaddress.IPv4Address(text))
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0] if line.split() else ""
            if len(raw) == 32:
                found.add(ipaddress.IPv6Address(int(raw, 16)))
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
    except (OSError, ValueError):
        pass
    return found
