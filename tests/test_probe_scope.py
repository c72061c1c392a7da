"""audit and verify probe only the spec's own PBX, whatever its DNS names.

The attack of issue 21: ``sipctl audit`` on a spec shaped like examples/hosted-pbx.yaml (SRV
at the provider's host) sent the provider 74 toll-fraud and injection INVITEs, REGISTER,
MESSAGE and port knocks. Here a real BIND serves the spec's records and a SIP responder on
another loopback address stands for the provider (or anyone a merge request names); it must
receive nothing from audit, and nothing from verify when the spec has a PBX of its own.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fixtures.bind import UNRELATED_RECORDS, BindServer
from verify_responder import Responder

from sipctl.reconciler.audit.run import AuditLimits, run_audit
from sipctl.reconciler.probe_scope import audit_scope, verify_scope
from sipctl.reconciler.verify.run import run_verify
from sipctl.schemas.loader import LoadedSpec, load_spec_text

OTHER = "127.0.0.7"  # not this spec's PBX: nothing declares it (and the target is not local)
LIMITS = AuditLimits(seconds=10.0, request_timeout=0.5, knock_timeout=0.3)


def spec(text: str) -> LoadedSpec:
    return load_spec_text(
        "version: 1\ndomain: mysite.ru\nusers: {director: 105}\n" + text,
        source="s.yaml",
        base_dir=Path("/tmp"),
    )


def test_the_pbx_is_the_asterisk_target_and_the_declared_servers_in_the_zone() -> None:
    loaded = spec(
        "servers: [{host: pbx.mysite.ru, ipv4: [192.0.2.10]}, {host: sip.other.example, "
        "ipv4: [198.51.100.9]}]\nasterisk: {target: 'ssh://root@203.0.113.5'}\n"
    )
    scope = audit_scope(loaded, {})
    assert scope is not None
    assert scope.allows("203.0.113.5") and scope.allows("192.0.2.10")
    assert scope.allows("192.0.2.99", "pbx.mysite.ru")
    # a server outside the zone is not the spec's to declare
    assert not scope.allows("198.51.100.9", "sip.other.example")
    assert not scope.allows(OTHER) and not scope.allows("::1")


def test_a_local_target_is_this_machine(tmp_path: Path) -> None:
    scope = audit_scope(spec("asterisk: {target: local}\n"), {})
    assert scope is not None
    assert scope.allows("127.0.0.1") and scope.allows("::1") and scope.allows(OTHER)
    assert not scope.allows("198.51.100.9")


def test_the_runner_profile_may_add_probe_targets(tmp_path: Path) -> None:
    profile = tmp_path / "runner.yaml"
    profile.write_text(yaml.safe_dump({"version": 1, "probe_targets": ["198.51.100.9", "b.ex"]}))
    env = {"SIPCTL_PROFILE": str(profile)}
    scope = audit_scope(spec("asterisk: {target: 'dir:x'}\n"), env)
    assert scope is not None
    assert scope.allows("198.51.100.9") and scope.allows("192.0.2.1", "b.ex")


def test_a_dns_only_spec_gets_verify_never_attack_probes() -> None:
    loaded = spec("servers: [{host: sip1.pbx-provider.example}]\n")
    assert audit_scope(loaded, {}) is None
    assert verify_scope(loaded, {}).allows("198.51.100.9")


@pytest.fixture
def provider() -> Iterator[Responder]:
    responder = Responder(users={"director"}, host=OTHER).start()
    yield responder
    responder.stop()


@pytest.fixture
def zone(bind: BindServer, provider: Responder) -> Iterator[str]:
    """The spec's records point at the 'provider' (another address than the PBX's)."""
    records = (
        '@ IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp\n'
        f"_sip._udp IN SRV 10 0 {provider.udp_port} sip1\n"
        f"_sip._tcp IN SRV 10 0 {provider.tcp_port} sip1\n"
        f"sip1 IN A {OTHER}\n"
    )
    name = bind.new_zone(extra=UNRELATED_RECORDS + records)
    yield name
    bind.delete_zone(name)


@pytest.mark.bind
def test_audit_of_a_hosted_pbx_spec_sends_the_provider_nothing(
    bind: BindServer, zone: str, provider: Responder
) -> None:
    hosted = "servers: [{host: sip1.pbx-provider.example, priority: 10}]\n"
    loaded = load_spec_text(f"version: 1\ndomain: {zone}\nusers: {{director: 105}}\n" + hosted)
    report = run_audit(loaded, bind.server, limits=LIMITS)
    assert report.errors == [
        "the spec has no asterisk section, so no PBX of its own: audit sends no attack probe "
        "to what its DNS names (run sipctl verify for DNS and OPTIONS)"
    ]
    assert report.exit_code == 1
    assert provider.requests == []


def _spec_with_a_pbx(zone: str) -> LoadedSpec:
    """The PBX is a dir: target and a declared server at 192.0.2.10; the DNS says 127.0.0.7."""
    return load_spec_text(
        f"version: 1\ndomain: {zone}\nusers: {{director: 105}}\n"
        f"servers: [{{host: pbx.{zone}, ipv4: [192.0.2.10]}}]\n"
        "asterisk: {target: 'dir:/nonexistent-pbx'}\n"
    )


@pytest.mark.bind
def test_audit_names_and_skips_an_address_that_is_not_the_pbx(
    bind: BindServer, zone: str, provider: Responder
) -> None:
    report = run_audit(_spec_with_a_pbx(zone), bind.server, limits=LIMITS)
    refused = [e for e in report.errors if "is not an address of this spec's PBX" in e]
    assert refused and all(OTHER in e for e in refused), report.errors
    assert provider.requests == []


@pytest.mark.bind
def test_verify_of_a_spec_with_a_pbx_asks_only_that_pbx(
    bind: BindServer, zone: str, provider: Responder
) -> None:
    report = run_verify(_spec_with_a_pbx(zone), bind.server, timeout=1.0)
    assert any("is not an address of this spec's PBX" in n for n in report.notes), report.notes
    assert report.probes == []
    assert provider.requests == []
    # the same DNS with a DNS-only spec: verify asks what a caller would (OPTIONS only)
    hosted = load_spec_text(f"version: 1\ndomain: {zone}\nusers: {{director: 105}}\n")
    report = run_verify(hosted, bind.server, timeout=1.0)
    assert provider.requests and all(r.startswith(b"OPTIONS ") for r in provider.requests)
    assert ipaddress.ip_address(OTHER).is_loopback


@pytest.mark.bind
def test_verify_of_a_hosting_customer_asks_only_its_hosts_pbx(
    bind: BindServer,
    zone: str,
    provider: Responder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The tryout's attack: a customer's file has no asterisk section (its PBX is its
    host's), and verify took it for a DNS-only spec: its records, here pointing at another
    address (its own servers may name any address and port), sent the hoster's verify of
    the customer and of the host's file there. Now only the host's PBX is asked."""
    from sipctl.cli import run
    from sipctl.schemas.loader import load_spec

    host = {
        "version": 1,
        "domain": "pbx1.hoster.example",
        "hosting": {"name": "pbx1"},
        "servers": [{"host": "sip.hoster.example", "ipv4": ["192.0.2.10"]}],
        "asterisk": {"target": "dir:/nonexistent-pbx", "guest_context": "guest-call"},
    }
    customer = {
        "version": 1,
        "domain": zone,
        "host": "pbx1",
        "local_context": "c-phones",
        "users": {"director": 105},
    }
    (tmp_path / "pbx1.yaml").write_text(yaml.safe_dump(host))
    (tmp_path / "customer.yaml").write_text(yaml.safe_dump(customer))
    report = run_verify(load_spec(tmp_path / "customer.yaml"), bind.server, timeout=1.0)
    assert any("is not an address of this spec's PBX" in n for n in report.notes), report.notes
    assert report.probes == [] and provider.requests == []
    for spec_file in ("pbx1.yaml", "customer.yaml"):
        run(["verify", "-f", str(tmp_path / spec_file), "--nameserver", bind.server])
        assert "is not an address of this spec's PBX" in capsys.readouterr().out
    assert provider.requests == []


class Knocks:
    """A TCP listener on OTHER that counts the connections made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind((OTHER, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


@pytest.fixture
def knocks() -> Iterator[Knocks]:
    found = Knocks()
    yield found
    found.close()


def _page_spec(port: int, zone: str = "mysite.ru") -> LoadedSpec:
    """A PBX at a dir: target whose page names a host outside its zone, declared at OTHER."""
    return load_spec_text(
        f"version: 1\ndomain: {zone}\nusers: {{director: 105}}\n"
        f"transports: {{udp: {{port: 5060}}, tls: {{port: 5061}}, wss: {{port: {port}}}}}\n"
        f"servers: [{{host: pbx.{zone}, ipv4: [192.0.2.10]}}, "
        f"{{host: web.other.example, ipv4: [{OTHER}], priority: 90}}]\n"
        "asterisk: {target: 'dir:/nonexistent-pbx', tls: {cert_file: /k/a.pem, "
        "key_file: /k/a.key}}\n"
        "webrtc: {host: web.other.example}\n"
    )


def test_verify_opens_no_websocket_or_tls_to_a_page_host_outside_the_pbx(
    knocks: Knocks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tryout's attack: webrtc.host (any name, declared at any address by a server
    outside the zone) made verify open TLS and a WebSocket to it, and fetch its
    certificate, past the scope its OPTIONS obey. Every connection of verify now passes the
    one gate; a runner profile's probe_targets opens it, which proves the gate is the one
    that held."""
    nobody = "127.0.0.1:9"  # no name server: resolution fails at once, the page host stays
    report = run_verify(_page_spec(knocks.port), nobody, timeout=0.5)
    assert knocks.connections == 0
    assert any(f"{OTHER}) port {knocks.port} is not an address" in n for n in report.notes)
    profile = tmp_path / "runner.yaml"
    allowed = {"probe_targets": [OTHER], "dir_targets": ["/nonexistent-pbx"]}
    profile.write_text(yaml.safe_dump({"version": 1, **allowed}))
    monkeypatch.setenv("SIPCTL_PROFILE", str(profile))
    run_verify(_page_spec(knocks.port), nobody, timeout=0.5)
    assert knocks.connections >= 1


@pytest.mark.bind
def test_verify_fetches_no_certificate_from_a_sips_server_outside_the_pbx(
    bind: BindServer, knocks: Knocks
) -> None:
    """The SIPS servers the DNS names get OPTIONS only in scope; the fetch of their
    certificates went to every one of them once any endpoint was in scope."""
    pbx = Responder(users={"director"}, host="127.0.0.8").start()
    records = (
        f"_sip._udp IN SRV 10 0 {pbx.udp_port} pbx\npbx IN A 127.0.0.8\n"
        f"_sips._tcp IN SRV 10 0 {knocks.port} sip1\nsip1 IN A {OTHER}\n"
    )
    zone = bind.new_zone(extra=UNRELATED_RECORDS + records)
    try:
        loaded = load_spec_text(
            f"version: 1\ndomain: {zone}\nusers: {{director: 105}}\n"
            "transports: {udp: {port: 5060}, tls: {port: 5061}}\n"
            f"servers: [{{host: pbx.{zone}, ipv4: [127.0.0.8]}}]\n"
            "asterisk: {target: 'dir:/nonexistent-pbx', tls: {cert_file: /k/a.pem, "
            "key_file: /k/a.key}}\n"
        )
        report = run_verify(loaded, bind.server, timeout=1.0)
    finally:
        bind.delete_zone(zone)
        pbx.stop()
    assert report.probes, report.notes  # the PBX itself was asked
    assert any("is not an address of this spec's PBX" in n for n in report.notes), report.notes
    assert knocks.connections == 0
