"""Several domains of one zone whose servers use one host (their SRVs all point at
pbx.example.test): a domain that stops using the host, or is removed, deletes the host's
A/AAAA only when no other domain of the zone still claims it (``_sipctl-claim.<host>``).

Against real zone files (the zonefile provider), a real BIND over RFC 2136 (prerequisites
that stop two racing applies, the rendered least-privilege update-policy) and a real
PowerDNS through octoDNS; a property test holds the rule for any domains claiming any
hosts, changed and removed in any order.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import dns.zone
import pytest
from fixtures.bind import UNRELATED_RECORDS, BindServer, bind_env, rfc2136_section, zone_text
from fixtures.powerdns import PowerDnsServer
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from octodns_specs import PDNS_KEY_ENV, pdns_spec, sipctl, write

from sipctl.cli import run
from sipctl.errors import StalePlanError
from sipctl.providers.base import Provider, RunContext
from sipctl.providers.dns.rfc2136 import Rfc2136Provider
from sipctl.providers.dns.zonefile import ZoneFileProvider
from sipctl.reconciler.diff import diff
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render.dns import render_dns, update_policy
from sipctl.reconciler.resources import LiveState, Resource
from sipctl.schemas.loader import load_spec_text

ZONE = "example.test"
# one address of each kind per host: domains that use a host agree on its addresses
HOSTS = {
    "pbx": "ipv4: [192.0.2.10], ipv6: ['2001:db8::10']",
    "second": "ipv4: [192.0.2.11]",
    "third": "ipv4: [192.0.2.12]",
}
ADDRESS = {"pbx": "192.0.2.10", "second": "192.0.2.11", "third": "192.0.2.12"}


def spec(domain: str, hosts: Iterable[str], dns_section: str, zone: str = ZONE) -> str:
    """A spec of ``domain`` in ``zone`` whose servers are ``hosts`` (none: dns.ensure absent,
    with one server left in the file, as a removed domain's spec would be)."""
    chosen = sorted(hosts)
    listed = chosen or ["pbx"]
    servers = ", ".join(f"{{host: {h}.{zone}, {HOSTS[h]}}}" for h in listed)
    ensure = "" if chosen else "  ensure: absent\n"
    return (
        f"version: 1\ndomain: {domain}\ntransports: {{udp: {{port: 5060}}}}\n"
        f"servers: [{servers}]\n{dns_section}  zone: {zone}\n  ttl: 3600\n{ensure}"
    )


def zonefile_section(file: str = "example.zone") -> str:
    return f"dns:\n  provider: zonefile\n  file: {file}\n"


class Domain:
    """One domain's DNS layer, read, diffed and applied as the engine does it."""

    def __init__(self, base: Path, text: str, env: Mapping[str, str] | None = None) -> None:
        self.loaded = load_spec_text(text, source=str(base / "sipctl.yaml"), base_dir=base)
        ctx = RunContext(base_dir=base) if env is None else RunContext(base_dir=base, env=dict(env))
        provider: Provider
        if self.loaded.spec.dns is not None and self.loaded.spec.dns.provider == "rfc2136":
            provider = Rfc2136Provider(self.loaded, ctx)
        else:
            provider = ZoneFileProvider(self.loaded, ctx)
        self.provider = provider
        self.desired: list[Resource] = render_dns(self.loaded.spec)

    def plan(self) -> tuple[LiveState, list[Change]]:
        live = self.provider.read(self.desired)
        return live, diff(self.desired, live)

    def apply(self) -> list[Change]:
        live, changes = self.plan()
        self.provider.apply(changes, live)
        return changes


def zone_file(base: Path) -> Path:
    path = base / "example.zone"
    path.write_text(zone_text(ZONE, UNRELATED_RECORDS))
    return path


def addresses(path: Path) -> dict[str, list[str]]:
    """Every A/AAAA of the zone file by owner (first label), sorted."""
    zone = dns.zone.from_file(str(path), origin=ZONE, relativize=False)
    found: dict[str, list[str]] = {}
    for rdtype in ("A", "AAAA"):
        for owner, _ttl, rdata in zone.iterate_rdatas(rdtype):
            label = owner.labels[0].decode()
            found.setdefault(label, []).append(rdata.to_text())
    return {k: sorted(v) for k, v in found.items()}


def claims(path: Path) -> dict[str, list[str]]:
    """Every host's claim TXT in the zone file: host label -> the claiming domains."""
    zone = dns.zone.from_file(str(path), origin=ZONE, relativize=False)
    found: dict[str, list[str]] = {}
    for owner, _ttl, rdata in zone.iterate_rdatas("TXT"):
        if owner.labels[0] == b"_sipctl-claim":
            text = b"".join(rdata.strings).decode()
            found.setdefault(owner.labels[1].decode(), []).append(text.removeprefix("domain="))
    return {k: sorted(v) for k, v in found.items()}


# --- zone files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [("a.example.test", "b.example.test"), ("example.test", "sub.example.test")],
)
def test_removing_one_domain_keeps_the_host_the_other_still_uses(
    tmp_path: Path, first: str, second: str
) -> None:
    path = zone_file(tmp_path)
    Domain(tmp_path, spec(first, ["pbx"], zonefile_section())).apply()
    Domain(tmp_path, spec(second, ["pbx", "second"], zonefile_section())).apply()
    assert claims(path) == {"pbx": sorted([f"{first}.", f"{second}."]), "second": [f"{second}."]}

    removal = Domain(tmp_path, spec(first, [], zonefile_section()))
    live, changes = removal.plan()
    assert not any(c.address.kind in ("A", "AAAA") for c in changes), changes
    assert f"pbx.{ZONE}. keeps its addresses: {second}. uses it too" in " ".join(live.notes)
    removal.apply()
    assert addresses(path)["pbx"] == ["192.0.2.10", "2001:db8::10"]
    assert claims(path) == {"pbx": [f"{second}."], "second": [f"{second}."]}
    # the other domain's next plan is empty: its callers were never without an address
    assert Domain(tmp_path, spec(second, ["pbx", "second"], zonefile_section())).plan()[1] == []
    assert Domain(tmp_path, spec(first, [], zonefile_section())).plan()[1] == []

    # the last domain that uses the host takes its addresses and claims with it
    Domain(tmp_path, spec(second, [], zonefile_section())).apply()
    assert "pbx" not in addresses(path) and "second" not in addresses(path)
    assert claims(path) == {}
    assert addresses(path)["www"] == ["192.0.2.80"]  # the zone's own records stay


def test_a_domain_dropping_a_host_from_its_servers_leaves_it_to_the_other(
    tmp_path: Path,
) -> None:
    path = zone_file(tmp_path)
    Domain(tmp_path, spec("a.example.test", ["pbx", "second"], zonefile_section())).apply()
    Domain(tmp_path, spec("b.example.test", ["pbx"], zonefile_section())).apply()

    # a moves to third: second is a's alone and goes, pbx stays for b
    moved = Domain(tmp_path, spec("a.example.test", ["third"], zonefile_section()))
    changes = moved.apply()
    deleted = {(c.address.kind, c.address.name) for c in changes if c.action == "delete"}
    assert ("A", f"second.{ZONE}.") in deleted
    assert not any(name.startswith("pbx.") for _, name in deleted)
    assert addresses(path)["pbx"] == ["192.0.2.10", "2001:db8::10"] and "second" not in addresses(
        path
    )
    assert claims(path) == {"pbx": ["b.example.test."], "third": ["a.example.test."]}
    assert Domain(tmp_path, spec("a.example.test", ["third"], zonefile_section())).plan()[1] == []
    assert Domain(tmp_path, spec("b.example.test", ["pbx"], zonefile_section())).plan()[1] == []


def test_a_zone_written_before_claims_upgrades_one_record_per_host(tmp_path: Path) -> None:
    """A zone written by a sipctl without claims: each domain's first plan adds its claims and
    nothing else. A removal finding no claim of its own on the host keeps its addresses and
    says so (the registry alone deletes nothing: tests/test_dns_registry_injection.py); they
    were deleted before, whoever still used the host."""
    path = zone_file(tmp_path)
    a_spec = spec("a.example.test", ["pbx"], zonefile_section())
    b_spec = spec("b.example.test", ["pbx"], zonefile_section())
    Domain(tmp_path, a_spec).apply()
    Domain(tmp_path, b_spec).apply()
    _forget_claims(path)

    _, changes = Domain(tmp_path, b_spec).plan()
    assert [(c.action, c.address.kind, c.address.name) for c in changes] == [
        ("create", "TXT", f"_sipctl-claim.pbx.{ZONE}.")
    ]
    # neither has applied since: a's removal finds no claim on pbx, its own neither
    removal = Domain(tmp_path, spec("a.example.test", [], zonefile_section()))
    live, changes = removal.plan()
    assert not any(c.address.kind in ("A", "AAAA") for c in changes), changes
    assert f"pbx.{ZONE}. keeps its addresses" in " ".join(live.notes)
    removal.apply()
    assert addresses(path)["pbx"] == ["192.0.2.10", "2001:db8::10"]
    changes = Domain(tmp_path, b_spec).apply()  # b's next apply adds its claim only
    assert {c.address.kind for c in changes} == {"TXT"}

    Domain(tmp_path, a_spec).apply()
    _forget_claims(path)
    Domain(tmp_path, b_spec).apply()  # b claims pbx; a has not applied since the upgrade
    Domain(tmp_path, spec("a.example.test", [], zonefile_section())).apply()
    assert addresses(path)["pbx"] == ["192.0.2.10", "2001:db8::10"]
    assert claims(path) == {"pbx": ["b.example.test."]}


def _forget_claims(path: Path) -> None:
    """The zone as a sipctl without claims wrote it: the same records without the claims."""
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if "_sipctl-claim" not in line))
    assert claims(path) == {}


@pytest.mark.parametrize("together", [True, False], ids=["one-run", "two-runs"])
def test_the_cli_removes_one_domain_of_two_in_one_run_or_two(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    together: bool,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = zone_file(tmp_path)
    (tmp_path / "a.yaml").write_text(spec("a.example.test", ["pbx"], zonefile_section()))
    (tmp_path / "b.yaml").write_text(spec("b.example.test", ["pbx"], zonefile_section()))
    # one zone file takes one apply at a time (its lock): the domains go one after the other
    both = ["-f", "a.yaml", "-f", "b.yaml", "--parallel", "1"]
    assert run(["apply", *both, "--auto-approve"]) == 0
    (tmp_path / "a.yaml").write_text(spec("a.example.test", [], zonefile_section()))
    if together:
        assert run(["apply", *both, "--auto-approve", "--force"]) == 0
    else:
        assert run(["apply", "-f", "a.yaml", "--auto-approve", "--force"]) == 0
    said = capsys.readouterr()
    assert "b.example.test. uses it too" in said.out + said.err
    assert addresses(path)["pbx"] == ["192.0.2.10", "2001:db8::10"]
    assert run(["plan", "-f", "a.yaml", "-f", "b.yaml", "--detailed-exitcode"]) == 0


def test_specs_of_one_run_that_declare_one_host_differently_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Alike they share it; with other addresses each apply would undo the other's."""
    monkeypatch.chdir(tmp_path)
    zone_file(tmp_path)
    (tmp_path / "a.yaml").write_text(spec("a.example.test", ["pbx"], zonefile_section()))
    other = spec("b.example.test", ["pbx"], zonefile_section()).replace("192.0.2.10", "192.0.2.99")
    (tmp_path / "b.yaml").write_text(other)
    assert run(["validate", "-f", "a.yaml", "-f", "b.yaml"]) == 1
    said = capsys.readouterr()
    assert (
        "b.yaml: DNS A pbx.example.test. is also published by a.yaml with other records or TTL"
        in said.err
    ), said.err
    assert "AAAA" not in said.err  # the same IPv6 address in both: no conflict there
    assert run(["validate", "-f", "a.yaml"]) == 0


def _moved(text: str, address: str) -> str:
    """``text`` with pbx's IPv4 address moved to ``address``."""
    return text.replace("192.0.2.10", address)


def test_a_domain_declaring_a_shared_server_otherwise_in_a_run_of_its_own_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """b declares pbx with another address than a, which claims it: b's apply alone would
    replace a's addresses (and a's next apply b's). Refused for safety (exit 3), naming both
    domains, the server, both address sets and what to do; nothing changes. Changed in both
    specs, one run applies them (planned in worker processes too), and a's later change of
    its own alone is refused again."""
    monkeypatch.chdir(tmp_path)
    path = zone_file(tmp_path)
    a_text = spec("a.example.test", ["pbx"], zonefile_section())
    (tmp_path / "a.yaml").write_text(a_text)
    (tmp_path / "b.yaml").write_text(
        _moved(spec("b.example.test", ["pbx"], zonefile_section()), "192.0.2.99")
    )
    assert run(["apply", "-f", "a.yaml", "--auto-approve"]) == 0
    capsys.readouterr()
    before = path.read_text()

    assert run(["apply", "-f", "b.yaml", "--auto-approve"]) == 3
    said = capsys.readouterr()
    refusal = " ".join((said.out + said.err).split())
    for part in (
        "refused for safety",
        f"server pbx.{ZONE}. is also used by a.example.test. (TXT _sipctl-claim.pbx.{ZONE}.)",
        "whose addresses there are IPv4 192.0.2.10, IPv6 2001:db8::10 (TTL 3600)",
        "this spec of b.example.test. declares IPv4 192.0.2.99, IPv6 2001:db8::10 (TTL 3600)",
        "in both domains' specs in one merge request",
        "give this domain's server a name of its own",
    ):
        assert part in refusal, refusal
    assert said.out.count("is also used by") == 1, said.out  # told once, in the plan
    assert said.err.strip() == (
        "Error: refused for safety (use --force if this is really meant): see the reasons above"
    ), said.err
    assert path.read_text() == before, "nothing changed"
    assert run(["plan", "-f", "b.yaml"]) == 3  # a plan apply would refuse
    said = capsys.readouterr()
    assert "apply will refuse this plan" in said.out
    assert said.out.count("server pbx.example.test. is also used by a.example.test.") == 1
    assert "is also used by" not in said.err and "see the reasons above" in said.err, said.err
    assert run(["plan", "-f", "b.yaml", "--markdown"]) == 3  # the comment tells it once too
    said = capsys.readouterr()
    assert said.out.count("is also used by") == 1, said.out
    assert said.out.rstrip().endswith("see the reasons above"), said.out
    assert "is also used by" in said.err  # a pipeline's log: the reasons in full

    # both specs changed alike: one run plans (in one process, or in workers) and applies both
    (tmp_path / "a.yaml").write_text(_moved(a_text, "192.0.2.99"))
    both = ["-f", "a.yaml", "-f", "b.yaml"]
    for parallel in ("1", "2"):
        run(["plan", *both, "--parallel", parallel])
        shown = capsys.readouterr().out
        assert "is also used by" not in shown and "+ dns A pbx.example.test 192.0.2.99" in shown
    # b's replacement of pbx's address is a's record changed (a's plan counts it): no --force
    code = run(["apply", *both, "--auto-approve", "--parallel", "2"])
    assert code == 0, capsys.readouterr()
    assert addresses(path)["pbx"] == ["192.0.2.99", "2001:db8::10"]
    assert claims(path)["pbx"] == ["a.example.test.", "b.example.test."]
    assert run(["plan", *both, "--detailed-exitcode"]) == 0

    # one of them moving it alone is refused as well: b claims it
    (tmp_path / "a.yaml").write_text(_moved(a_text, "192.0.2.77"))
    assert run(["apply", "-f", "a.yaml", "--auto-approve"]) == 3
    assert capsys.readouterr().out.count("is also used by b.example.test.") == 1
    assert addresses(path)["pbx"] == ["192.0.2.99", "2001:db8::10"]


def _ipv4_only(text: str) -> str:
    """``text`` with pbx declared by its IPv4 address alone."""
    return text.replace(", ipv6: ['2001:db8::10']", "")


def _ipv6_only(text: str) -> str:
    """``text`` with pbx declared by its IPv6 address alone."""
    return text.replace("ipv4: [192.0.2.10], ", "")


def test_a_domain_declaring_one_family_of_a_shared_server_in_a_run_of_its_own_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """a publishes pbx with IPv4 and IPv6; b lists pbx with its IPv4 only, which says pbx
    has no IPv6 (as one domain's spec deletes a stray AAAA). A server's addresses are one
    set: b's run alone is refused (exit 3), naming both domains, both families and what to
    do, and changes nothing (it was applied, half-describing pbx, and a later IPv6-only spec
    of a would have been judged by the family it lists). Forced, b deletes the IPv6, and a's
    run alone is refused in turn."""
    monkeypatch.chdir(tmp_path)
    path = zone_file(tmp_path)
    (tmp_path / "a.yaml").write_text(spec("a.example.test", ["pbx"], zonefile_section()))
    (tmp_path / "b.yaml").write_text(
        _ipv4_only(spec("b.example.test", ["pbx"], zonefile_section()))
    )
    assert run(["apply", "-f", "a.yaml", "--auto-approve"]) == 0
    capsys.readouterr()
    before = path.read_text()

    assert run(["apply", "-f", "b.yaml", "--auto-approve"]) == 3
    said = capsys.readouterr()
    refusal = " ".join(said.out.split())
    for part in (
        f"server pbx.{ZONE}. is also used by a.example.test. (TXT _sipctl-claim.pbx.{ZONE}.)",
        "whose addresses there are IPv4 192.0.2.10, IPv6 2001:db8::10 (TTL 3600)",
        "this spec of b.example.test. declares IPv4 192.0.2.10, no IPv6 (TTL 3600)",
        "A server's IPv4 and IPv6 addresses are one set (a spec that lists only one family "
        "says the server has none of the other): declare both families alike in both domains' "
        "specs and change them in both domains' specs in one merge request",
        "give this domain's server a name of its own",
        f"- dns AAAA pbx.{ZONE}",
    ):
        assert part in refusal, refusal
    assert path.read_text() == before, "nothing changed"

    assert run(["apply", "-f", "b.yaml", "--auto-approve", "--force"]) == 0
    assert addresses(path)["pbx"] == ["192.0.2.10"]
    capsys.readouterr()
    assert run(["apply", "-f", "a.yaml", "--auto-approve"]) == 3
    refusal = " ".join(capsys.readouterr().out.split())
    assert "is also used by b.example.test." in refusal, refusal
    assert "whose addresses there are IPv4 192.0.2.10, no IPv6 (TTL 3600)" in refusal, refusal
    assert addresses(path)["pbx"] == ["192.0.2.10"]


def test_specs_of_one_run_that_declare_one_family_each_of_a_host_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In one run, one spec listing pbx's IPv4 only and the other its IPv6 only declare it
    differently (each says it has none of the other's family): refused, naming both files."""
    monkeypatch.chdir(tmp_path)
    zone_file(tmp_path)
    a_text = spec("a.example.test", ["pbx"], zonefile_section())
    (tmp_path / "a.yaml").write_text(_ipv4_only(a_text))
    (tmp_path / "b.yaml").write_text(
        _ipv6_only(spec("b.example.test", ["pbx"], zonefile_section()))
    )
    assert run(["validate", "-f", "a.yaml", "-f", "b.yaml"]) == 1
    said = " ".join(capsys.readouterr().err.split())
    for kind in ("A", "AAAA"):
        assert (
            f"b.yaml: DNS {kind} pbx.example.test. is also published by a.yaml with other "
            "records or TTL (or none)"
        ) in said, said
    assert "listing only ipv4 says the host has no IPv6" in said, said
    (tmp_path / "b.yaml").write_text(
        _ipv4_only(spec("b.example.test", ["pbx"], zonefile_section()))
    )
    assert run(["validate", "-f", "a.yaml", "-f", "b.yaml"]) == 0


def test_the_safety_limit_counts_a_joined_servers_addresses_against_their_owners(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new domain c joins pbx in the run that moves pbx's address with a, its user: the
    replaced A is a's record (counted in a's plan, 1 of a's 7), not 1 of the 2 records c's
    plan read, so no --force is needed. b, which leaves a server of its own for pbx, is
    refused for what it deletes of its own, and the refusal says what it left out."""
    monkeypatch.chdir(tmp_path)
    path = zone_file(tmp_path)
    texts = {
        "a": spec("a.example.test", ["pbx"], zonefile_section()),
        "b": spec("b.example.test", ["second"], zonefile_section()),
    }
    for name, text in texts.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    assert run(["apply", "-f", "a.yaml", "-f", "b.yaml", "--auto-approve"]) == 0
    (tmp_path / "a.yaml").write_text(_moved(texts["a"], "192.0.2.99"))
    (tmp_path / "c.yaml").write_text(
        _moved(spec("c.example.test", ["pbx"], zonefile_section()), "192.0.2.99")
    )
    capsys.readouterr()
    assert run(["apply", "-f", "a.yaml", "-f", "c.yaml", "--auto-approve"]) == 0
    assert "refused" not in " ".join(capsys.readouterr().out.split())
    assert addresses(path)["pbx"] == ["192.0.2.99", "2001:db8::10"]
    assert claims(path)["pbx"] == ["a.example.test.", "c.example.test."]

    (tmp_path / "b.yaml").write_text(
        _moved(spec("b.example.test", ["pbx"], zonefile_section()), "192.0.2.77")
    )
    for name in ("a", "c"):
        (tmp_path / f"{name}.yaml").write_text(
            _moved(spec(f"{name}.example.test", ["pbx"], zonefile_section()), "192.0.2.77")
        )
    every = ["-f", "a.yaml", "-f", "b.yaml", "-f", "c.yaml"]
    assert run(["apply", *every, "--auto-approve"]) == 3
    said = " ".join(capsys.readouterr().out.split())
    assert (
        "the plan deletes or replaces 4 of 6 managed records (67%, the limit is 30%; a whole "
        "file, chain or jail counts as one record; not counted here, as they are others' "
        "records: 1 deleted or replaced of the addresses of server pbx.example.test. (claimed "
        "by a.example.test., c.example.test.))"
    ) in said, said
    assert said.count("managed records") == 1, said  # a's and c's plans are not refused
    assert addresses(path)["second"] == ["192.0.2.11"], "b changed nothing"
    assert claims(path) == {
        "pbx": ["a.example.test.", "c.example.test."],
        "second": ["b.example.test."],
    }


# --- the rule, for any domains and hosts, in any order -------------------------------------

DOMAINS = ("example.test", "a.example.test", "b.example.test")
host_sets = st.frozensets(st.sampled_from(sorted(HOSTS)))


@settings(max_examples=examples(40), deadline=None)
@given(
    start=st.fixed_dictionaries({d: host_sets for d in DOMAINS}),
    steps=st.lists(st.tuples(st.sampled_from(DOMAINS), host_sets), max_size=4),
    removal=st.permutations(DOMAINS),
)
def test_a_host_has_addresses_exactly_while_some_domain_claims_it(
    start: dict[str, frozenset[str]],
    steps: list[tuple[str, frozenset[str]]],
    removal: list[str],
) -> None:
    """Any domains claiming any hosts, their server lists changed and the domains removed in
    any order: after every apply, a host's A/AAAA exist iff some domain's servers use it, its
    claim names exactly those domains, and every domain's next plan is empty."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        path = zone_file(base)
        now: dict[str, frozenset[str]] = {d: frozenset() for d in DOMAINS}
        script = [*start.items(), *steps, *((d, frozenset[str]()) for d in removal)]
        for domain, hosts in script:
            Domain(base, spec(domain, hosts, zonefile_section())).apply()
            now[domain] = hosts
            users = {h: sorted(f"{d}." for d in DOMAINS if h in now[d]) for h in HOSTS}
            found = addresses(base / "example.zone")
            for host in HOSTS:
                assert (host in found) == bool(users[host]), (host, now, found)
                if users[host]:
                    assert ADDRESS[host] in found[host]
            assert claims(path) == {h: users[h] for h in HOSTS if users[h]}
            for other in DOMAINS:
                again = Domain(base, spec(other, now[other], zonefile_section())).plan()[1]
                assert again == [], (other, again)
        assert addresses(path)["www"] == ["192.0.2.80"]


# --- a real BIND over RFC 2136 -------------------------------------------------------------


def _bind_spec(bind: BindServer, zone: str, domain: str, hosts: Iterable[str]) -> str:
    return spec(domain, hosts, rfc2136_section(bind), zone=zone)


def _bind_addresses(bind: BindServer, zone: str, host: str) -> list[str]:
    return bind.query(f"{host}.{zone}", "A") + bind.query(f"{host}.{zone}", "AAAA")


def test_bind_removing_one_domain_keeps_the_shared_host(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z, env = bind_zone, bind_env(bind)
    a, b = f"a.{z}", f"b.{z}"
    Domain(tmp_path, _bind_spec(bind, z, a, ["pbx"]), env).apply()
    Domain(tmp_path, _bind_spec(bind, z, b, ["pbx"]), env).apply()
    assert sorted(bind.query(f"_sipctl-claim.pbx.{z}", "TXT")) == [
        f'"domain={a}."',
        f'"domain={b}."',
    ]
    Domain(tmp_path, _bind_spec(bind, z, a, []), env).apply()
    assert _bind_addresses(bind, z, "pbx") == ["192.0.2.10", "2001:db8::10"]
    assert bind.query(f"_sipctl-claim.pbx.{z}", "TXT") == [f'"domain={b}."']
    assert Domain(tmp_path, _bind_spec(bind, z, b, ["pbx"]), env).plan()[1] == []
    Domain(tmp_path, _bind_spec(bind, z, b, []), env).apply()
    assert _bind_addresses(bind, z, "pbx") == []
    assert bind.query(f"_sipctl-claim.pbx.{z}", "TXT") == []


def test_bind_a_domain_joining_a_host_stops_a_racing_removal(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    """a drops pbx while b starts using it: both plans read pbx as a's alone. b's UPDATE goes
    first, so a's (which would delete pbx's addresses) fails its prerequisite on pbx's
    claims and changes nothing; a's plan made again keeps them. (In a zone written before
    claims, a's removal deletes no address at all: the registry alone deletes nothing.)"""
    z, env = bind_zone, bind_env(bind)
    a, b = f"a.{z}", f"b.{z}"
    Domain(tmp_path, _bind_spec(bind, z, a, ["pbx"]), env).apply()
    removal = Domain(tmp_path, _bind_spec(bind, z, a, []), env)
    removal_live, removal_changes = removal.plan()
    assert {c.address.kind for c in removal_changes if c.action == "delete"} >= {"A", "AAAA"}
    Domain(tmp_path, _bind_spec(bind, z, b, ["pbx"]), env).apply()
    with pytest.raises(StalePlanError, match="prerequisite failed"):
        removal.provider.apply(removal_changes, removal_live)
    assert _bind_addresses(bind, z, "pbx") == ["192.0.2.10", "2001:db8::10"]
    removal.apply()  # planned again: b claims pbx now
    assert _bind_addresses(bind, z, "pbx") == ["192.0.2.10", "2001:db8::10"]
    assert bind.query(f"_sipctl-claim.pbx.{z}", "TXT") == [f'"domain={b}."']


def test_bind_a_racing_join_after_the_removal_is_refused_and_adds_the_host_again(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z, env = bind_zone, bind_env(bind)
    a, b = f"a.{z}", f"b.{z}"
    Domain(tmp_path, _bind_spec(bind, z, a, ["pbx"]), env).apply()
    join = Domain(tmp_path, _bind_spec(bind, z, b, ["pbx"]), env)
    join_live, join_changes = join.plan()
    assert {c.address.kind for c in join_changes if c.address.name.startswith("pbx.")} == set()
    Domain(tmp_path, _bind_spec(bind, z, a, []), env).apply()  # pbx was a's alone: gone
    with pytest.raises(StalePlanError, match="prerequisite failed"):
        join.provider.apply(join_changes, join_live)
    join.apply()
    assert _bind_addresses(bind, z, "pbx") == ["192.0.2.10", "2001:db8::10"]


def test_bind_a_domain_claiming_a_server_stops_a_racing_change_of_its_addresses(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    """b, pbx's only user, moves it to another address while a starts using it with the old
    one: b's plan saw no other claim, a's saw its addresses as they were. a's UPDATE goes
    first, so b's fails its prerequisite on pbx's claims (unchanged by b: the only guard
    here) and changes nothing; b's plan made again is refused, and costs the read a plan
    without that refusal costs (the claims come with the addresses: no message more)."""
    z, env = bind_zone, bind_env(bind)
    a, b = f"a.{z}", f"b.{z}"
    Domain(tmp_path, _bind_spec(bind, z, b, ["pbx"]), env).apply()
    move = Domain(tmp_path, _moved(_bind_spec(bind, z, b, ["pbx"]), "192.0.2.99"), env)
    move_live, move_changes = move.plan()
    assert not move_live.hazards
    assert [(c.action, c.address.kind) for c in move_changes] == [("update", "A")]
    Domain(tmp_path, _bind_spec(bind, z, a, ["pbx"]), env).apply()
    with pytest.raises(StalePlanError, match="prerequisite failed"):
        move.provider.apply(move_changes, move_live)
    assert _bind_addresses(bind, z, "pbx") == ["192.0.2.10", "2001:db8::10"]

    again = Domain(tmp_path, _moved(_bind_spec(bind, z, b, ["pbx"]), "192.0.2.99"), env)
    live, _ = again.plan()
    (hazard,) = live.hazards
    assert f"server pbx.{z}. is also used by {a}." in hazard, hazard
    assert "IPv4 192.0.2.10, IPv6 2001:db8::10" in hazard, hazard
    assert "IPv4 192.0.2.99, IPv6 2001:db8::10" in hazard, hazard
    same = Domain(tmp_path, _bind_spec(bind, z, b, ["pbx"]), env)
    assert same.plan()[1] == []
    assert isinstance(again.provider, Rfc2136Provider)
    assert isinstance(same.provider, Rfc2136Provider)
    assert again.provider.messages_sent == same.provider.messages_sent >= 1


def test_bind_a_domain_declaring_one_family_of_a_shared_server_is_refused(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    """On BIND as in a zone file: b lists pbx's IPv4 only while a publishes both families.
    b's plan would delete pbx's AAAA; it is refused naming both families. An IPv6-only
    spec is refused alike, naming the IPv4 it would delete."""
    z, env = bind_zone, bind_env(bind)
    a, b = f"a.{z}", f"b.{z}"
    Domain(tmp_path, _bind_spec(bind, z, a, ["pbx"]), env).apply()
    for text, ours, dropped in (
        (_ipv4_only(_bind_spec(bind, z, b, ["pbx"])), "IPv4 192.0.2.10, no IPv6", "AAAA"),
        (_ipv6_only(_bind_spec(bind, z, b, ["pbx"])), "no IPv4, IPv6 2001:db8::10", "A"),
    ):
        live, changes = Domain(tmp_path, text, env).plan()
        (hazard,) = live.hazards
        assert f"server pbx.{z}. is also used by {a}." in hazard, hazard
        assert "there are IPv4 192.0.2.10, IPv6 2001:db8::10 (TTL 3600)" in hazard, hazard
        assert f"this spec of {b}. declares {ours} (TTL 3600)" in hazard, hazard
        assert ("delete", dropped, f"pbx.{z}.") in [
            (c.action, c.address.kind, c.address.name) for c in changes
        ]
        assert not live.notes, live.notes  # b still uses pbx: no "keeps its addresses"
    assert _bind_addresses(bind, z, "pbx") == ["192.0.2.10", "2001:db8::10"]


def test_bind_the_rendered_update_policy_lets_both_domains_claim_and_release(
    bind: BindServer, tmp_path: Path
) -> None:
    """The least-privilege update-policy sipctl renders grants each domain its claims: the
    two domains' policies together, and nothing else, let both apply and remove."""
    z, env = f"policy-{secrets.token_hex(3)}.test", bind_env(bind)
    texts = {d: _bind_spec(bind, z, d, ["pbx", "second"]) for d in (f"a.{z}", f"b.{z}")}
    grants = []
    for text in texts.values():
        loaded = load_spec_text(text, source=str(tmp_path / "s.yaml"), base_dir=tmp_path)
        grants += [g for g in update_policy(loaded.spec).splitlines() if "grant" in g]
    assert any(f"_sipctl-claim.pbx.{z}. TXT" in g for g in grants)
    bind.new_zone(z, policy="update-policy {\n" + "\n".join(sorted(set(grants))) + "\n};")
    for text in texts.values():
        Domain(tmp_path, text, env).apply()
    Domain(tmp_path, _bind_spec(bind, z, f"a.{z}", []), env).apply()
    assert _bind_addresses(bind, z, "pbx") == ["192.0.2.10", "2001:db8::10"]
    Domain(tmp_path, _bind_spec(bind, z, f"b.{z}", []), env).apply()
    assert _bind_addresses(bind, z, "pbx") == [] and _bind_addresses(bind, z, "second") == []


# --- octoDNS, against a real PowerDNS ------------------------------------------------------


def test_powerdns_removing_one_domain_keeps_the_shared_host(
    powerdns: PowerDnsServer,
    powerdns_zone: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same rule through octoDNS: both domains' claims in one rrset, each written back
    with the other's record kept (octoDNS writes whole rrsets)."""
    monkeypatch.setenv(PDNS_KEY_ENV, powerdns.api_key)
    z = powerdns_zone
    a, b = f"a.{z}", f"b.{z}"

    def text(domain: str, absent: bool = False) -> str:
        servers = f"  - {{host: pbx.{z}, ipv4: [192.0.2.10], ipv6: ['2001:db8::10']}}\n"
        base = pdns_spec(z, powerdns.api_port, servers=servers)
        extra = f"  zone: {z}\n" + ("  ensure: absent\n" if absent else "")
        return base.replace(f"domain: {z}\n", f"domain: {domain}\n").replace(
            "  provider: octodns\n", "  provider: octodns\n" + extra
        )

    def claims_of() -> list[str]:
        return powerdns.rrsets(z).get((f"_sipctl-claim.pbx.{z}.", "TXT"), (0, []))[1]

    for domain in (a, b):
        code, out = sipctl(capsys, "apply", "-f", write(tmp_path, text(domain)), "--auto-approve")
        assert code == 0, out
    assert sorted(claims_of()) == [f'"domain={a}."', f'"domain={b}."']
    code, out = sipctl(
        capsys, "apply", "-f", write(tmp_path, text(a, True)), "--auto-approve", "--force"
    )
    assert code == 0 and f"{b}. uses it too" in out, out
    assert powerdns.rrsets(z)[(f"pbx.{z}.", "A")][1] == ["192.0.2.10"]
    assert powerdns.rrsets(z)[(f"pbx.{z}.", "AAAA")][1] == ["2001:db8::10"]
    assert claims_of() == [f'"domain={b}."']
    code, out = sipctl(capsys, "plan", "-f", write(tmp_path, text(b)), "--detailed-exitcode")
    assert code == 0, out
    code, out = sipctl(
        capsys, "apply", "-f", write(tmp_path, text(b, True)), "--auto-approve", "--force"
    )
    assert code == 0, out
    assert (f"pbx.{z}.", "A") not in powerdns.rrsets(z) and claims_of() == []


def test_powerdns_a_domain_declaring_a_shared_server_otherwise_is_refused(
    powerdns: PowerDnsServer,
    powerdns_zone: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Through octoDNS as through RFC 2136 and zone files: b's run alone is refused and
    changes nothing; the two specs changed together in one run both apply."""
    monkeypatch.setenv(PDNS_KEY_ENV, powerdns.api_key)
    z = powerdns_zone
    a, b = f"a.{z}", f"b.{z}"

    def text(domain: str, address: str = "192.0.2.10") -> str:
        servers = f"  - {{host: pbx.{z}, ipv4: [{address}]}}\n"
        base = pdns_spec(z, powerdns.api_port, servers=servers)
        return base.replace(f"domain: {z}\n", f"domain: {domain}\n").replace(
            "  provider: octodns\n", f"  provider: octodns\n  zone: {z}\n"
        )

    code, out = sipctl(capsys, "apply", "-f", write(tmp_path, text(a), "a.yaml"), "--auto-approve")
    assert code == 0, out
    b_file = write(tmp_path, text(b, "192.0.2.99"), "b.yaml")
    code, out = sipctl(capsys, "apply", "-f", b_file, "--auto-approve")
    assert code == 3, out
    assert (
        f"server pbx.{z}. is also used by {a}." in out
        and "IPv4 192.0.2.99, no IPv6 (TTL 300)" in out
    ), out
    assert powerdns.rrsets(z)[(f"pbx.{z}.", "A")][1] == ["192.0.2.10"]
    assert (f"_sipctl-claim.pbx.{z}.", "TXT") in powerdns.rrsets(z)
    assert powerdns.rrsets(z)[(f"_sipctl-claim.pbx.{z}.", "TXT")][1] == [f'"domain={a}."']

    a_file = write(tmp_path, text(a, "192.0.2.99"), "a.yaml")
    # b's replacement of pbx's address is a's record changed (a's plan counts it): no --force
    code, out = sipctl(capsys, "apply", "-f", a_file, "-f", b_file, "--auto-approve")
    assert code == 0 and "is also used by" not in out, out
    assert powerdns.rrsets(z)[(f"pbx.{z}.", "A")][1] == ["192.0.2.99"]
    assert sorted(powerdns.rrsets(z)[(f"_sipctl-claim.pbx.{z}.", "TXT")][1]) == [
        f'"domain={a}."',
        f'"domain={b}."',
    ]


def test_domains_using_one_server_of_their_zone_take_turns_in_one_share(tmp_path: Path) -> None:
    """Domains that publish one server's addresses change its claims (and its addresses only
    together, in one run): one run applies them one after the other, one share takes them
    all. A domain with a server of its own, or a server outside its zone, goes its own way."""
    from sipctl.reconciler.gitops.multi import Domain as RunDomain
    from sipctl.reconciler.gitops.shards import take_shard, turn_groups

    section = "dns:\n  provider: rfc2136\n  server: 127.0.0.1\n"
    texts = {
        "a": spec("a.example.test", ["pbx"], section),
        "b": spec("b.example.test", ["pbx", "second"], section),
        "c": spec("c.example.test", ["second"], section),
        "d": spec("d.example.test", ["third"], section),
        "e": spec("e.example.test", [], section),  # removed: its claims go in its turn
        "f": spec("f.other.test", ["pbx"], section, zone="other.test").replace(
            "pbx.other.test", "pbx.example.test"
        ),
    }
    domains = [
        RunDomain(tmp_path / f"{name}.yaml", loaded=load_spec_text(text, base_dir=tmp_path))
        for name, text in texts.items()
    ]
    groups = [[d.path.stem for d in group] for group in turn_groups(domains)]
    assert groups == [["a", "b", "c", "e"], ["d"], ["f"]]
    for count in (2, 3, 5):
        shares = [
            [d.path.stem for d in take_shard(domains, f"{i}/{count}")] for i in range(1, count + 1)
        ]
        assert [s for s in shares if {"a", "b", "c", "e"} & set(s)] in (
            [["a", "b", "c", "e"]],
            [["a", "b", "c", "d", "e"]],
            [["a", "b", "c", "e", "f"]],
            [["a", "b", "c", "d", "e", "f"]],
        )
