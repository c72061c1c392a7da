"""The rfc2136 provider reads a small zone from one signed transfer and a large one by
queries: both reads must give one live state, whatever the owned rrsets hold.

A property test edits the owned names of a real BIND zone at random (NAPTRs of SIP and other
services, the SRVs, the registry and what it lists, A/AAAA of listed and wanted hosts, owner
names in any case, other TTLs, records beside them) and compares the two reads, then checks
that a plan sees every such edit. A key that may query but not transfer, and a zone larger
than one transfer message, fall back to the queries with the same result.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.bind import BindServer, bind_env, dns_spec
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.providers.base import RunContext
from sipctl.providers.dns.rfc2136 import Rfc2136Provider
from sipctl.reconciler.diff import diff
from sipctl.reconciler.render.dns import render_dns
from sipctl.schemas.loader import load_spec_text

pytestmark = [pytest.mark.bind]

SERVERS = "[{{host: asterisk.{z}, ipv4: [203.0.113.10], ipv6: ['2001:db8::10']}}]"


def provider(bind: BindServer, text: str, tmp: Path) -> tuple[Rfc2136Provider, list]:  # type: ignore[type-arg]
    loaded = load_spec_text(text, source=str(tmp / "sipctl.yaml"), base_dir=tmp)
    ctx = RunContext(base_dir=tmp, env=bind_env(bind))
    return Rfc2136Provider(loaded, ctx), render_dns(loaded.spec)


def both_reads(bind: BindServer, text: str, tmp: Path) -> tuple[object, object]:
    read, desired = provider(bind, text, tmp)
    by_transfer = read._read_by_transfer(desired)
    assert by_transfer is not None, "a small zone is read by transfer"
    return by_transfer, read._read_by_queries(desired)


def _owner(name: str, case: int) -> str:
    return name.upper() if case == 1 else name.title() if case == 2 else name


edit = st.fixed_dictionaries(
    {
        "naptr": st.lists(
            st.tuples(
                st.integers(0, 100),
                st.sampled_from(["SIP+D2U", "sip+d2t", "SIPS+D2T", "E2U+email", "x-foo"]),
                st.sampled_from(["_sip._udp", "_sip._tcp", "_sips._tcp", "other"]),
            ),
            max_size=4,
        ),
        "srv": st.dictionaries(
            st.sampled_from(["_sip._udp", "_sip._tcp", "_sips._tcp", "_sip._sctp"]),
            st.tuples(st.integers(0, 3), st.integers(1, 65535), st.sampled_from(["asterisk", "x"])),
            max_size=4,
        ),
        "registry": st.lists(st.sampled_from(["asterisk", "old", "gone", "x"]), max_size=3),
        "hosts": st.dictionaries(
            st.sampled_from(["asterisk", "old", "x", "www"]),
            st.tuples(st.integers(1, 254), st.booleans()),
            max_size=4,
        ),
        "ttl": st.sampled_from([60, 300, 3600]),
        "case": st.integers(0, 2),
    }
)


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(change=edit)
def test_transfer_and_queries_read_the_same_state(
    bind: BindServer,
    tmp_path: Path,
    change: dict,  # type: ignore[type-arg]
) -> None:
    zone = bind.new_zone()
    text = dns_spec(bind, zone, servers=SERVERS.format(z=zone))
    try:
        ttl, case = change["ttl"], change["case"]
        add = []
        for order, service, target in change["naptr"]:
            add.append(
                (
                    _owner(f"{zone}.", case),
                    ttl,
                    "NAPTR",
                    f'{order} 10 "s" "{service}" "" {target}.{zone}.',
                )
            )
        for prefix, (priority, port, target) in change["srv"].items():
            add.append((_owner(prefix, case), ttl, "SRV", f"{priority} 0 {port} {target}.{zone}."))
        if change["registry"]:
            hosts = ",".join(f"{h}.{zone}." for h in change["registry"])
            add.append(("_sipctl", ttl, "TXT", f'"sipctl-registry=1 hosts={hosts}"'))
        for host, (octet, six) in change["hosts"].items():
            add.append((_owner(host, case), ttl, "A", f"192.0.2.{octet}"))
            if six:
                add.append((host, ttl, "AAAA", f"2001:db8::{octet:x}"))
        if add:
            bind.update(zone, add=add)
        by_transfer, by_queries = both_reads(bind, text, tmp_path)
        assert by_transfer == by_queries
        # and a plan sees the edit, whichever read made it
        read, desired = provider(bind, text, tmp_path)
        changes = diff(desired, read.read(desired))
        read_q, _ = provider(bind, text, tmp_path)
        assert [c.to_json() for c in changes] == [
            c.to_json() for c in diff(desired, _owned_by_queries(read_q, desired))
        ]
    finally:
        bind.delete_zone(zone)


def _owned_by_queries(read: Rfc2136Provider, desired: list) -> object:  # type: ignore[type-arg]
    """The live state as the query read gives it (the transfer turned off for this read)."""
    read._read_by_transfer = lambda _desired: None  # type: ignore[method-assign]
    return read.read(desired)


def test_a_key_that_may_not_transfer_reads_by_queries(bind: BindServer, tmp_path: Path) -> None:
    zone = bind.new_zone(policy=f'update-policy {{ grant "{bind.key_name}" zonesub ANY; }};')
    text = dns_spec(bind, zone)
    # the zone allows transfers to the test keys; one named in no allow-transfer is refused
    bind.rndc("modzone", zone, _no_transfer(bind, zone))
    logs: list[str] = []
    read, desired = provider(bind, text, tmp_path)
    read._ctx.log = logs.append
    live = read.read(desired)
    assert any("zone transfer of" in line and "refused" in line for line in logs), logs
    assert read.messages_sent >= 2  # the refused transfer, then the queries
    assert live.resources == _owned_by_queries(provider(bind, text, tmp_path)[0], desired).resources  # type: ignore[attr-defined]
    bind.delete_zone(zone)


def _no_transfer(bind: BindServer, zone: str) -> str:
    return (
        f'{{ type primary; file "{zone}.zone"; '
        f'update-policy {{ grant "{bind.key_name}" zonesub ANY; }}; '
        "allow-query { any; }; allow-transfer { none; }; };"
    )
