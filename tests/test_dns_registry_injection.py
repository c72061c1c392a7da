"""The registry TXT ``_sipctl.<domain>`` alone deletes nothing (providers/dns/owned.py,
``registry_only``).

Whoever could write that TXT (a hand edit of the zone file, a key that may update it) could
make sipctl delete any A/AAAA of the zone: after an apply, ``_sipctl IN TXT
"host=www.mysite.ru."`` made the next plan ``- dns A www.mysite.ru`` (one added host stays
under the safety limit), and the zone's apex and its name server ``ns1`` were targets the
same way (found by the tryout). A host the registry lists and the spec does not want loses
its A/AAAA only where this domain's own claim on it (``_sipctl-claim.<host>``) is live, and
never at the zone's apex or a name server of its NS rrset; otherwise the plan keeps them,
says so, and drops the host from the registry, so that the next plan has no changes.

Against real zone files (zonefile), a real BIND over RFC 2136 and a real PowerDNS through
octoDNS (one rule in owned.py for each); the property injects any hosts of the zone, with
and without other domains' claims, and holds that the plan deletes nothing at them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from fixtures.bind import UNRELATED_RECORDS, BindServer, bind_env, zone_text
from fixtures.powerdns import PowerDnsServer
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from octodns_specs import PDNS_KEY_ENV, pdns_spec, sipctl, write
from test_dns_shared_hosts import ZONE, Domain, _bind_spec, addresses, spec, zonefile_section

from sipctl.reconciler.plan import Change

# The zone as a site has it: its web server at the apex and at www, its name server ns1.
SITE = UNRELATED_RECORDS + "@        IN A     192.0.2.1\n"


def _zone(base: Path) -> Path:
    path = base / "example.zone"
    path.write_text(zone_text(ZONE, SITE))
    return path


def _inject(path: Path, *lines: str) -> None:
    """Edit the zone file behind sipctl's back, as whoever may write its registry TXT."""
    path.write_text(path.read_text() + "".join(line + "\n" for line in lines))


def _touching(changes: list[Change], host: str) -> list[Change]:
    """The changes at ``host``'s addresses or its claims."""
    names = {host, f"_sipctl-claim.{host}"}
    return [c for c in changes if c.address.name in names]


@pytest.mark.parametrize("claimed_by_us", [False, True], ids=["no-claim", "forged-claim"])
def test_an_injected_registry_host_keeps_its_addresses_and_leaves_the_registry(
    tmp_path: Path, claimed_by_us: bool
) -> None:
    path = _zone(tmp_path)
    text = spec(ZONE, ["pbx"], zonefile_section())
    Domain(tmp_path, text).apply()
    targets = ["www", "mail", "ns1", "@"]
    _inject(path, *(f'_sipctl IN TXT "host={h}.{ZONE}."'.replace("@.", "") for h in targets))
    if claimed_by_us:  # the apex and the name server are kept even with a claim of ours
        _inject(
            path,
            f'_sipctl-claim IN TXT "domain={ZONE}."',
            f'_sipctl-claim.ns1 IN TXT "domain={ZONE}."',
        )

    live, changes = Domain(tmp_path, text).plan()
    expected = [("update", "TXT", f"_sipctl.{ZONE}.")]
    if claimed_by_us:  # this domain's own claims go with the hosts it stops using
        expected += [("delete", "TXT", f"_sipctl-claim.{h}") for h in (f"{ZONE}.", f"ns1.{ZONE}.")]
    assert sorted((c.action, c.address.kind, c.address.name) for c in changes) == sorted(
        expected
    ), changes
    notes = " ".join(live.notes)
    for host in (f"www.{ZONE}.", f"mail.{ZONE}."):
        assert f"{host} keeps its addresses, and sipctl drops it from the registry" in notes
        assert f"this domain's claim on it (TXT _sipctl-claim.{host}" in notes
    assert f"it is the zone's apex ({ZONE}.)" in notes, notes
    assert f"it is a name server of zone {ZONE}. (NS)" in notes, notes
    assert "delete its A/AAAA by hand" in notes

    Domain(tmp_path, text).apply()
    kept = addresses(path)
    assert kept["www"] == ["192.0.2.80"] and kept["mail"] == ["192.0.2.25"]
    assert kept["ns1"] == ["127.0.0.1"] and kept[ZONE.split(".")[0]] == ["192.0.2.1"]
    live, changes = Domain(tmp_path, text).plan()
    assert changes == [] and not any("keeps its addresses" in n for n in live.notes)


def test_a_host_this_domain_claims_and_no_longer_uses_still_goes(tmp_path: Path) -> None:
    """The rule keeps what sipctl wrote deletable: a server the spec drops, which this
    domain's claim says is its own, loses its addresses and its claim as before."""
    path = _zone(tmp_path)
    Domain(tmp_path, spec(ZONE, ["pbx", "second"], zonefile_section())).apply()
    assert addresses(path)["second"] == ["192.0.2.11"]
    live, changes = Domain(tmp_path, spec(ZONE, ["pbx"], zonefile_section())).plan()
    deleted = {(c.address.kind, c.address.name) for c in changes if c.action == "delete"}
    assert deleted == {("A", f"second.{ZONE}."), ("TXT", f"_sipctl-claim.second.{ZONE}.")}
    assert not any("keeps its addresses" in n for n in live.notes)


_HOSTS = st.sampled_from(["www", "mail", "ns1", "@", "pbx", "second", "new", "a.b", "_x"])


@settings(max_examples=examples(40), deadline=None)
@given(
    injected=st.lists(_HOSTS, min_size=1, max_size=4, unique=True),
    others=st.lists(_HOSTS, max_size=3, unique=True),
    spec_hosts=st.lists(st.sampled_from(["pbx", "second"]), min_size=1, unique=True),
)
def test_any_injected_registry_host_without_our_claim_loses_nothing(
    injected: list[str], others: list[str], spec_hosts: list[str]
) -> None:
    """For any hosts of the zone a registry is made to list (some with another domain's
    claim), none of which this domain claims or its spec wants, the plan deletes or changes
    nothing at them, and after its apply the next plan has no changes."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        path = _zone(base)
        text = spec(ZONE, spec_hosts, zonefile_section())
        Domain(base, text).apply()
        targets = [h for h in injected if h not in spec_hosts]

        def fqdn(h: str) -> str:
            return f"{ZONE}." if h == "@" else f"{h}.{ZONE}."

        def owner(prefix: str, h: str) -> str:
            return prefix if h == "@" else f"{prefix}.{h}"

        _inject(path, *(f'_sipctl IN TXT "host={fqdn(h)}"' for h in injected))
        _inject(
            path,
            *(
                f'{owner("_sipctl-claim", h)} IN TXT "domain=other.{ZONE}."'
                for h in others
                if h not in spec_hosts
            ),
        )
        before = addresses(path)
        _, changes = Domain(base, text).plan()
        for h in targets:
            assert _touching(changes, fqdn(h)) == [], (h, changes)
        Domain(base, text).apply()
        after = addresses(path)
        for label, records in before.items():
            if label not in {h.split(".")[0] for h in spec_hosts}:
                assert after.get(label) == records, (label, before, after)
        assert Domain(base, text).plan()[1] == []


# --- a real BIND over RFC 2136 -------------------------------------------------------------


def test_bind_an_injected_registry_host_keeps_its_addresses(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    """The tryout's attack through the server: the registry TXT updated to list www, the
    apex and ns1; the plan deletes none of them and the next plan after its apply is empty."""
    z, env = bind_zone, bind_env(bind)
    bind.update(z, add=[("@", 3600, "A", "192.0.2.1")])
    text = _bind_spec(bind, z, z, ["pbx"])
    Domain(tmp_path, text, env).apply()
    bind.update(
        z,
        add=[("_sipctl", 3600, "TXT", f'"host={h}{z}."') for h in ("www.", "ns1.", "")],
    )
    live, changes = Domain(tmp_path, text, env).plan()
    assert [(c.action, c.address.kind) for c in changes] == [("update", "TXT")], changes
    assert f"www.{z}. keeps its addresses" in " ".join(live.notes)
    Domain(tmp_path, text, env).apply()
    assert bind.query(f"www.{z}", "A") == ["192.0.2.80"]
    assert bind.query(f"ns1.{z}", "A") == ["127.0.0.1"]
    assert bind.query(z, "A") == ["192.0.2.1"]
    assert Domain(tmp_path, text, env).plan()[1] == []


# --- a real PowerDNS through octoDNS -------------------------------------------------------


def test_powerdns_an_injected_registry_host_keeps_its_addresses(
    powerdns: PowerDnsServer,
    powerdns_zone: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Through the CLI: the plan of a registry made to list www and ns1 shows no deletion
    of their A, a note naming each and what to do; after its apply, no changes."""
    monkeypatch.setenv(PDNS_KEY_ENV, powerdns.api_key)
    z = powerdns_zone
    path = write(tmp_path, pdns_spec(z, powerdns.api_port))
    code, out = sipctl(capsys, "apply", "-f", path, "--auto-approve")
    assert code == 0, out
    ttl, registry = powerdns.rrsets(z)[(f"_sipctl.{z}.", "TXT")]
    injected = [f'"host=www.{z}."', f'"host=ns1.{z}."']
    powerdns.set_rrset(z, f"_sipctl.{z}.", "TXT", ttl, registry + injected)

    code, out = sipctl(capsys, "plan", "-f", path)
    assert code == 0, out
    plan = [line.strip() for line in out.split("Plan:")[0].splitlines()]
    assert [line for line in plan if line.startswith(("-", "+", "~"))] == [
        f'- dns TXT _sipctl.{z} "host=ns1.{z}."',
        f'- dns TXT _sipctl.{z} "host=www.{z}."',
    ], out
    assert f"www.{z}. keeps its addresses, and sipctl drops it from the registry" in out, out
    assert f"ns1.{z}. keeps its addresses" in out and "delete its A/AAAA by hand" in out, out
    code, out = sipctl(capsys, "apply", "-f", path, "--auto-approve")
    assert code == 0, out
    assert powerdns.rrsets(z)[(f"www.{z}.", "A")][1] == ["192.0.2.80"]
    assert powerdns.rrsets(z)[(f"ns1.{z}.", "A")][1] == ["127.0.0.1"]
    assert sorted(powerdns.rrsets(z)[(f"_sipctl.{z}.", "TXT")][1]) == sorted(registry)
    code, out = sipctl(capsys, "plan", "-f", path, "--detailed-exitcode")
    assert code == 0, out
