"""The rfc2136 provider against a real BIND: ownership, idempotence, prerequisites, errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from fixtures.bind import SECRET_ENV, UNRELATED_RECORDS, BindServer, bind_env, dns_spec
from fixtures.common import free_port

from sipctl.errors import ProviderError, StalePlanError
from sipctl.providers.base import RunContext
from sipctl.providers.dns.rfc2136 import Rfc2136Provider
from sipctl.reconciler.diff import diff
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render.dns import render_dns
from sipctl.reconciler.resources import LiveState, Resource
from sipctl.schemas.loader import load_spec_text

pytestmark = pytest.mark.bind

OWNED_PREFIXES = ("_sip._udp.", "_sip._tcp.", "_sips._tcp.", "_sipctl.", "_sipctl-claim.")


class Run:
    """One sipctl run on the DNS layer, done step by step like the engine does it."""

    def __init__(
        self, bind: BindServer, text: str, tmp_path: Path, env: dict[str, str] | None = None
    ):
        (tmp_path / "sipctl.yaml").write_text(text)
        self.loaded = load_spec_text(text, source=str(tmp_path / "sipctl.yaml"), base_dir=tmp_path)
        self.ctx = RunContext(base_dir=tmp_path, env=env if env is not None else bind_env(bind))
        self.provider = Rfc2136Provider(self.loaded, self.ctx)
        self.desired: list[Resource] = render_dns(self.loaded.spec)

    def plan(self) -> tuple[LiveState, list[Change]]:
        live = self.provider.read(self.desired)
        return live, diff(self.desired, live)

    def apply(self) -> list[Change]:
        live, changes = self.plan()
        self.provider.apply(changes, live)
        return changes


def converge(bind: BindServer, text: str, tmp_path: Path) -> Run:
    run = Run(bind, text, tmp_path)
    run.apply()
    again = Run(bind, text, tmp_path)
    assert again.plan()[1] == [], "a second plan after apply must be empty"
    return run


def unrelated(bind: BindServer, zone: str) -> list[str]:
    """Every record of the zone that sipctl does not own."""
    owned_a = {f"asterisk.{zone}.", f"second.{zone}."}
    kept = []
    for line in bind.zone_records(zone):
        name, _, rdtype, rdata = line.split(" ", 3)
        if name.startswith(OWNED_PREFIXES) or (rdtype in ("A", "AAAA") and name in owned_a):
            continue
        if rdtype == "NAPTR" and ('"SIP+' in rdata.upper() or '"SIPS+' in rdata.upper()):
            continue
        kept.append(line)
    return kept


TWO_SERVERS = (
    "[{{host: asterisk.{z}, ipv4: [203.0.113.10], ipv6: ['2001:db8::10'], priority: 10}}, "
    "{{host: second.{z}, ipv4: [203.0.113.11], priority: 20, weight: 5}}, "
    "{{host: sip.example.net, priority: 30}}]"
)


def test_apply_creates_the_seed_records_and_a_second_plan_is_empty(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z = bind_zone
    before = unrelated(bind, z)
    run = converge(bind, dns_spec(bind, z), tmp_path)

    assert bind.query(z, "NAPTR") == sorted(
        [
            f'10 10 "s" "SIP+D2U" "" _sip._udp.{z}.',
            f'20 10 "s" "SIP+D2T" "" _sip._tcp.{z}.',
            f'30 10 "s" "SIPS+D2T" "" _sips._tcp.{z}.',
            '100 10 "u" "E2U+EMAIL" "!^.*$!mailto:info@example.org!" .',
        ]
    )
    assert bind.query(f"_sip._udp.{z}", "SRV") == [f"10 0 5060 asterisk.{z}."]
    assert bind.query(f"_sip._tcp.{z}", "SRV") == [f"10 0 5060 asterisk.{z}."]
    assert bind.query(f"_sips._tcp.{z}", "SRV") == [f"10 0 5061 asterisk.{z}."]
    assert bind.query(f"asterisk.{z}", "A") == ["203.0.113.10"]
    assert bind.query(f"_sipctl.{z}", "TXT") == sorted(
        [f'"host=asterisk.{z}."', '"sipctl-registry=1"']
    )
    assert bind.ttl(f"_sip._udp.{z}", "SRV") == 3600
    assert unrelated(bind, z) == before
    assert run.provider.updates_sent == 1


def test_unrelated_records_survive_create_change_and_removal(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z = bind_zone
    before = unrelated(bind, z)
    converge(bind, dns_spec(bind, z, servers=TWO_SERVERS.format(z=z)), tmp_path)
    assert unrelated(bind, z) == before

    changed = dns_spec(
        bind, z, servers=TWO_SERVERS.format(z=z).replace("203.0.113.11", "203.0.113.12")
    ).replace("ttl: 3600", "ttl: 600")
    converge(bind, changed, tmp_path)
    assert bind.query(f"second.{z}", "A") == ["203.0.113.12"]
    assert unrelated(bind, z) == before

    converge(bind, dns_spec(bind, z, dns_extra="  ensure: absent\n"), tmp_path)
    assert unrelated(bind, z) == before
    for name, rdtype in [
        (f"_sip._udp.{z}", "SRV"),
        (f"_sips._tcp.{z}", "SRV"),
        (f"_sipctl.{z}", "TXT"),
        (f"asterisk.{z}", "A"),
        (f"asterisk.{z}", "AAAA"),
        (f"second.{z}", "A"),
    ]:
        assert bind.query(name, rdtype) == [], f"{name} {rdtype} should be gone"
    assert bind.query(z, "NAPTR") == ['100 10 "u" "E2U+EMAIL" "!^.*$!mailto:info@example.org!" .']
    assert bind.query(z, "MX") == [f"10 mail.{z}."]


def test_removing_a_server_removes_exactly_its_records(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z = bind_zone
    converge(bind, dns_spec(bind, z, servers=TWO_SERVERS.format(z=z)), tmp_path)
    assert bind.query(f"second.{z}", "A") == ["203.0.113.11"]
    one = f"[{{host: asterisk.{z}, ipv4: [203.0.113.10], ipv6: ['2001:db8::10'], priority: 10}}]"
    run = Run(bind, dns_spec(bind, z, servers=one), tmp_path)
    changes = run.apply()
    assert sorted((c.address.kind, c.address.name, c.action) for c in changes) == sorted(
        [
            ("A", f"second.{z}.", "delete"),
            ("SRV", f"_sip._udp.{z}.", "update"),
            ("SRV", f"_sip._tcp.{z}.", "update"),
            ("SRV", f"_sips._tcp.{z}.", "update"),
            ("TXT", f"_sipctl.{z}.", "update"),
            ("TXT", f"_sipctl-claim.second.{z}.", "delete"),
        ]
    )
    assert bind.query(f"second.{z}", "A") == []
    assert bind.query(f"asterisk.{z}", "A") == ["203.0.113.10"]
    assert bind.query(f"asterisk.{z}", "AAAA") == ["2001:db8::10"]
    assert bind.query(f"_sip._udp.{z}", "SRV") == [f"10 0 5060 asterisk.{z}."]
    assert Run(bind, dns_spec(bind, z, servers=one), tmp_path).plan()[1] == []


def test_removing_a_transport_removes_exactly_its_naptr_and_srv(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z = bind_zone
    converge(bind, dns_spec(bind, z), tmp_path)
    converge(bind, dns_spec(bind, z, transports="{udp: {}, tcp: {}}"), tmp_path)
    assert bind.query(f"_sips._tcp.{z}", "SRV") == []
    assert bind.query(f"_sip._tcp.{z}", "SRV") == [f"10 0 5060 asterisk.{z}."]
    assert bind.query(z, "NAPTR") == sorted(
        [
            f'10 10 "s" "SIP+D2U" "" _sip._udp.{z}.',
            f'20 10 "s" "SIP+D2T" "" _sip._tcp.{z}.',
            '100 10 "u" "E2U+EMAIL" "!^.*$!mailto:info@example.org!" .',
        ]
    )


def test_an_edit_between_read_and_update_makes_the_server_refuse_it(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z = bind_zone
    converge(bind, dns_spec(bind, z), tmp_path)
    run = Run(bind, dns_spec(bind, z, servers=TWO_SERVERS.format(z=z)), tmp_path)
    live, changes = run.plan()
    assert changes
    # someone edits a rrset the plan changes, behind sipctl's back
    bind.update(z, add=[(f"_sip._udp.{z}.", 3600, "SRV", f"50 0 5060 other.{z}.")])
    snapshot = bind.zone_records(z)
    with pytest.raises(StalePlanError, match="nothing was changed"):
        run.provider.apply(changes, live)
    assert bind.zone_records(z) == snapshot
    assert run.provider.updates_sent == 1  # it was sent, and refused as a whole


def test_a_non_sip_naptr_edited_in_between_also_stops_a_naptr_change(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z = bind_zone
    run = Run(bind, dns_spec(bind, z), tmp_path)
    live, changes = run.plan()
    bind.update(z, add=[(f"{z}.", 3600, "NAPTR", '200 10 "u" "E2U+sip" "!^.*$!sip:x@y!" .')])
    snapshot = bind.zone_records(z)
    with pytest.raises(StalePlanError):
        run.provider.apply(changes, live)
    assert bind.zone_records(z) == snapshot


def test_an_rrset_created_in_between_stops_a_create(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z = bind_zone
    run = Run(bind, dns_spec(bind, z), tmp_path)
    live, changes = run.plan()
    bind.update(z, add=[(f"asterisk.{z}.", 3600, "A", "192.0.2.99")])
    with pytest.raises(StalePlanError):
        run.provider.apply(changes, live)
    assert bind.query(f"_sip._udp.{z}", "SRV") == []
    assert bind.query(f"asterisk.{z}", "A") == ["192.0.2.99"]


def test_live_sip_naptr_in_other_case_and_ttl_is_normalized_and_replaced(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z = bind_zone
    # written by hand before sipctl: lower-case service, upper-case flag, a stale order
    bind.update(z, add=[(f"{z}.", 3600, "NAPTR", f'15 10 "S" "sip+d2u" "" _SIP._UDP.{z.upper()}.')])
    converge(bind, dns_spec(bind, z, transports="{udp: {}}"), tmp_path)
    assert bind.query(z, "NAPTR") == sorted(
        [
            f'10 10 "s" "SIP+D2U" "" _sip._udp.{z}.',
            '100 10 "u" "E2U+EMAIL" "!^.*$!mailto:info@example.org!" .',
        ]
    )


def test_reads_are_few_and_do_not_grow_with_the_zone(bind: BindServer, tmp_path: Path) -> None:
    """A small zone is read by one signed transfer (one message each way); a zone larger than
    one transfer message by the first message of a transfer, never read further, then the
    queries for the owned names: the same count for 3,000 records as for 6,000."""
    small = bind.new_zone()
    zones = [small]
    for size in (3000, 6000):
        filler = "".join(f"h{i} IN A 198.51.100.{i % 250 + 1}\n" for i in range(size))
        zones.append(bind.new_zone(extra=UNRELATED_RECORDS + filler))
    counts = []
    logs: list[str] = []
    for z in zones:
        run = Run(bind, dns_spec(bind, z), tmp_path)
        run.ctx.log = logs.append
        run.plan()
        counts.append(run.provider.messages_sent)
    assert counts[0] == 1
    assert counts[1] == counts[2] <= 11
    assert sum("larger than one message; reading by queries" in line for line in logs) == 2
    for z in zones:
        bind.delete_zone(z)


def test_a_removed_host_is_found_through_the_registry(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z = bind_zone
    converge(bind, dns_spec(bind, z, servers=TWO_SERVERS.format(z=z)), tmp_path)
    # the spec forgets both in-zone hosts: one extra round trip finds their addresses
    run = Run(bind, dns_spec(bind, z, servers="[{host: sip.example.net}]"), tmp_path)
    run.apply()
    assert run.provider.messages_sent <= 12
    assert bind.query(f"asterisk.{z}", "A") == []
    assert bind.query(f"asterisk.{z}", "AAAA") == []
    assert bind.query(f"second.{z}", "A") == []
    assert bind.query(f"_sipctl.{z}", "TXT") == ['"sipctl-registry=1"']


# --- errors: one clear line each, never the secret ---------------------------------------


def _error(bind: BindServer, text: str, tmp_path: Path, env: dict[str, str] | None = None) -> str:
    run = Run(bind, text, tmp_path, env=env)
    with pytest.raises(ProviderError) as info:
        run.apply()
    message = str(info.value)
    assert "\n" not in message
    assert bind.secret not in message and bind.secret not in repr(info.value)
    return message


def test_wrong_key_name_says_which_key(bind: BindServer, bind_zone: str, tmp_path: Path) -> None:
    message = _error(bind, dns_spec(bind, bind_zone, key_name="nosuchkey"), tmp_path)
    assert "'nosuchkey'" in message and "BADKEY" in message


def test_wrong_secret_says_badsig(bind: BindServer, bind_zone: str, tmp_path: Path) -> None:
    env = {SECRET_ENV: "c2lwY3RsLXdyb25nLXNlY3JldC1zaXBjdGwtd3Jvbmc="}
    message = _error(bind, dns_spec(bind, bind_zone), tmp_path, env=env)
    assert "BADSIG" in message and bind.key_name in message
    assert env[SECRET_ENV] not in message


@pytest.mark.parametrize(
    "secret",
    [
        "c2lwY3RsLXNlY3JldA==!",  # a character outside the alphabet (non-strict decoders skip it)
        "c2lwY3RsLXNlY3JldA=",  # bad padding
        "c2lwY3Rs LXNlY3JldA==",  # a space inside
        "not base64 at all",
    ],
)
def test_a_secret_that_is_not_strict_base64_is_named_before_any_packet(
    bind: BindServer, bind_zone: str, tmp_path: Path, secret: str
) -> None:
    with socket.socket() as silent:  # would hang the read if a packet were sent
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        text = dns_spec(bind, bind_zone).replace(bind.server, f"127.0.0.1:{port}")
        run = Run(bind, text, tmp_path, env={SECRET_ENV: secret})
        sent = run.provider.messages_sent
        with pytest.raises(ProviderError) as info:
            run.plan()
    message = str(info.value)
    assert "is not valid base64" in message and SECRET_ENV in message and "sipctl.yaml:" in message
    assert secret not in message
    assert run.provider.messages_sent == sent


def test_a_secret_file_others_can_read_is_a_warning(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    key = tmp_path / "tsig.key"
    key.write_text(bind.secret + "\n")
    text = dns_spec(bind, bind_zone).replace(f"secret_env: {SECRET_ENV}", "secret_file: tsig.key")
    key.chmod(0o644)
    live, _ = Run(bind, text, tmp_path, env={}).plan()
    notes = [n for n in live.notes if "tsig.key" in n]
    assert len(notes) == 1 and "group and others" in notes[0] and "chmod 600" in notes[0]
    assert bind.secret not in notes[0]
    key.chmod(0o600)
    live, _ = Run(bind, text, tmp_path, env={}).plan()
    assert not [n for n in live.notes if "tsig.key" in n]


def test_missing_secret_names_the_variable(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    message = _error(bind, dns_spec(bind, bind_zone), tmp_path, env={})
    assert SECRET_ENV in message and "sipctl.yaml:" in message


def test_secret_from_a_file_relative_to_the_spec(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    (tmp_path / "tsig.key").write_text(
        f'key "{bind.key_name}" {{ algorithm hmac-sha256; secret "{bind.secret}"; }};\n'
    )
    text = dns_spec(bind, bind_zone).replace(f"secret_env: {SECRET_ENV}", "secret_file: tsig.key")
    run = Run(bind, text, tmp_path, env={})
    run.apply()
    assert bind.query(f"asterisk.{bind_zone}", "A") == ["203.0.113.10"]
    assert run.ctx.secrets == {bind.secret}


def test_server_down_names_server_and_port(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    port = free_port()
    text = dns_spec(bind, bind_zone).replace(bind.server, f"127.0.0.1:{port}")
    message = _error(bind, text, tmp_path)
    assert f"127.0.0.1 port {port}" in message and "refused" in message


def test_a_silent_server_times_out(bind: BindServer, bind_zone: str, tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        text = dns_spec(bind, bind_zone).replace(bind.server, f"127.0.0.1:{port}")
        text = text.replace("timeout: 3", "timeout: 0.5")
        message = _error(bind, text, tmp_path)
    assert f"127.0.0.1 port {port}" in message and "did not answer" in message


def test_update_refused_points_at_update_policy(bind: BindServer, tmp_path: Path) -> None:
    zone = bind.new_zone(policy='update-policy { grant "nobody" zonesub ANY; };')
    message = _error(bind, dns_spec(bind, zone), tmp_path)
    assert "update-policy" in message and "refused" in message
    bind.delete_zone(zone)


def test_query_refused_points_at_allow_query(bind: BindServer, tmp_path: Path) -> None:
    zone = bind.new_zone()
    text = (
        dns_spec(bind, zone)
        .replace(f"domain: {zone}", f"domain: {zone}")
        .replace("provider: rfc2136", f"provider: rfc2136\n  zone: not-served-{zone}")
    )
    text = text.replace(f"domain: {zone}", f"domain: x.not-served-{zone}").replace(
        f"asterisk.{zone}", f"asterisk.x.not-served-{zone}"
    )
    message = _error(bind, text, tmp_path)
    assert "allow-query" in message and "serves zone" in message
    bind.delete_zone(zone)


def test_a_zone_inside_a_served_zone_is_not_a_zone(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    sub = f"sub.{bind_zone}"
    text = dns_spec(bind, sub)
    message = _error(bind, text, tmp_path)
    assert "does not serve that zone" in message


def test_a_registry_naming_a_host_outside_the_zone_is_ignored(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z = bind_zone
    bind.update(z, add=[(f"_sipctl.{z}.", 3600, "TXT", '"host=www.example.org."')])
    converge(bind, dns_spec(bind, z), tmp_path)
    assert bind.query(f"_sipctl.{z}", "TXT") == sorted(
        [f'"host=asterisk.{z}."', '"sipctl-registry=1"']
    )


def test_the_naptr_ttl_shared_with_non_sip_records_is_kept(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z = bind_zone
    text = dns_spec(bind, z).replace("ttl: 3600", "ttl: 600")
    converge(bind, text, tmp_path)
    assert bind.ttl(z, "NAPTR") == 3600  # the E2U+email record's TTL did not change
    assert bind.ttl(f"_sip._udp.{z}", "SRV") == 600
    live, _ = Run(bind, text, tmp_path).plan()
    assert any("keeps its TTL 3600" in note for note in live.notes)


def test_a_non_authoritative_server_is_named_as_not_the_primary(
    bind: BindServer, tmp_path: Path
) -> None:
    """A resolver (or cache) answers without the AA bit: sipctl must not trust it."""
    import struct
    import threading

    import dns.message

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def answer_without_aa() -> None:
        conn, _ = server.accept()
        with conn, conn.makefile("rb") as stream:
            while len(head := stream.read(2)) == 2:
                query = dns.message.from_wire(stream.read(struct.unpack("!H", head)[0]))
                wire = dns.message.make_response(query).to_wire()  # AA clear, like a resolver
                conn.sendall(struct.pack("!H", len(wire)) + wire)

    thread = threading.Thread(target=answer_without_aa, daemon=True)
    thread.start()
    try:
        text = dns_spec(bind, "mysite.test").replace(bind.server, f"127.0.0.1:{port}")
        text = "\n".join(line for line in text.splitlines() if "tsig:" not in line) + "\n"
        message = _error(bind, text, tmp_path)
    finally:
        thread.join(timeout=5)
        server.close()
    assert "not authoritative" in message and "primary" in message
