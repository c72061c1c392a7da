"""Specs that share a zone file are applied one after the other in one run, beside the others.

Three domains of zone example.test in one zone file and one domain elsewhere, applied with
``--parallel 4``: the zone file's three took turns (the second and third were refused for
the first's zone file lock before), the fourth ran beside them. Over RFC 2136 each domain
has a lock of its own in the zone (``_sipctl-lock.<domain>``): three domains of one zone
on the real BIND apply side by side and all get through.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from fixtures.bind import BindServer, bind_env, dns_spec
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.reconciler.gitops import guarded
from sipctl.reconciler.gitops.claims import Claims
from sipctl.reconciler.gitops.multi import Domain
from sipctl.reconciler.gitops.shards import take_shard, turn_groups


def _spec(domain: str, zone_file: str, zone: str, tail: str = "") -> str:
    return (
        f"version: 1\ndomain: {domain}\n"
        f"servers: [{{host: pbx.{domain}, ipv4: ['192.0.2.10']}}]\n"
        "users: {director: 105}\n"
        f"dns: {{provider: zonefile, file: {zone_file}, create_file: true, zone: {zone}}}\n" + tail
    )


@dataclass
class _Call:
    label: str
    thread: str
    start: float
    end: float = 0.0


def _watch_applies(
    monkeypatch: pytest.MonkeyPatch, meet: Callable[[str], None] = lambda label: None
) -> list[_Call]:
    """Every domain's guarded apply of the run: which worker thread, when; ``meet`` is
    called as each begins."""
    calls: list[_Call] = []
    real = guarded.guarded_apply

    def watched(plan: Any, label: str, *args: Any, **kwargs: Any) -> Any:
        call = _Call(label, threading.current_thread().name, time.monotonic())
        calls.append(call)
        meet(label)
        try:
            return real(plan, label, *args, **kwargs)
        finally:
            call.end = time.monotonic()

    monkeypatch.setattr(guarded, "guarded_apply", watched)
    return calls


@pytest.fixture
def zone_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """a, b, c.example.test in one zone file (named through a link by c), other.test in
    its own."""
    profile = tmp_path / "runner-profile.yaml"
    profile.write_text("version: 1\nzone_files: [zones]\n")
    monkeypatch.setenv("SIPCTL_PROFILE", str(profile))
    (tmp_path / "zones").mkdir()
    specs = tmp_path / "specs"
    specs.mkdir()
    (tmp_path / "zones" / "link.zone").symlink_to("example.test.zone")
    for name, file in (("a", "example.test.zone"), ("b", "example.test.zone"), ("c", "link.zone")):
        (specs / f"{name}.yaml").write_text(
            _spec(f"{name}.example.test", f"../zones/{file}", "example.test")
        )
    (specs / "other.yaml").write_text(_spec("other.test", "../zones/other.test.zone", "other.test"))
    return specs


def test_specs_of_one_zone_file_take_turns_beside_an_unrelated_one(
    zone_specs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the unrelated domain's apply and the zone file's first one wait for each other: run
    # one after the other, the barrier breaks (BrokenBarrierError fails that domain)
    barrier = threading.Barrier(2, timeout=30)
    first: list[str] = []

    def meet(label: str) -> None:
        if "other.yaml" in label:
            barrier.wait()
        elif not first:
            first.append(label)
            barrier.wait()

    calls = _watch_applies(monkeypatch, meet)
    code = run(["apply", "-f", str(zone_specs), "--auto-approve", "--no-verify", "--parallel", "4"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "4 domain(s): 4 ok, 0 failed." in out
    zone = zone_specs.parent / "zones" / "example.test.zone"
    text = zone.read_text()
    for name in ("a", "b", "c"):
        assert f"_sip._udp.{name}" in text, text
    assert (zone_specs.parent / "zones" / "link.zone").is_symlink(), "the link stays a link"

    shared = [c for c in calls if "other.yaml" not in c.label]
    (other,) = [c for c in calls if "other.yaml" in c.label]
    assert len({c.thread for c in shared}) == 1, "one worker took the zone file's turns"
    assert other.thread != shared[0].thread
    ordered = sorted(shared, key=lambda c: c.start)
    for before, after in pairwise(ordered):
        assert before.end <= after.start, "never two of one zone file at once"
    assert other.start < ordered[0].end and ordered[0].start < other.end, "side by side"

    assert run(["plan", "-f", str(zone_specs), "--parallel", "4", "--detailed-exitcode"]) == 0
    assert capsys.readouterr().out.count("No changes.") == 4
    # each domain has its own record of the last apply (one per zone file: the last
    # domain applied replaced the others', whose drift then showed every record drifted)
    assert run(["drift", "-f", str(zone_specs), "--parallel", "4", "--json"]) == 0
    drift = json.loads(capsys.readouterr().out)
    assert {d["domain"]: d["status"] for d in drift["domains"]} == dict.fromkeys(
        ["a.example.test", "b.example.test", "c.example.test", "other.test"], "no drift"
    )


def test_a_failed_domain_of_a_zone_file_leaves_the_zone_files_others_applied(
    zone_specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sharing a zone file is taking turns, not sharing a host's layers: a domain that fails
    (here a host layer in a directory that is not there) does not leave the zone file's
    next domains unapplied, as a failed domain of one host does."""
    (zone_specs / "a.yaml").write_text(
        _spec(
            "a.example.test",
            "../zones/example.test.zone",
            "example.test",
            "firewall: {target: 'dir:../nowhere'}\n",
        )
    )
    code = run(["apply", "-f", str(zone_specs), "--auto-approve", "--no-verify", "--parallel", "4"])
    out = capsys.readouterr().out
    assert code != 0
    assert "4 domain(s): 3 ok, 1 failed." in out, out
    assert "not applied" not in out


def test_specs_of_one_rfc2136_zone_apply_side_by_side(
    bind: BindServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Over RFC 2136 the lock is the domain's own TXT record, not the zone's: three domains
    of one zone apply at once (their workers meet), and every UPDATE gets through."""
    monkeypatch.setenv("SIPCTL_TSIG_SECRET", bind_env(bind)["SIPCTL_TSIG_SECRET"])
    zone, elsewhere = bind.new_zone(), bind.new_zone()
    domains = [f"a.{zone}", f"b.{zone}", f"c.{zone}", elsewhere]
    files: list[str] = []
    for domain in domains:
        path = tmp_path / f"{domain}.yaml"
        extra = f"  zone: {zone}\n" if domain != elsewhere else ""
        path.write_text(dns_spec(bind, domain, dns_extra=extra))
        files += ["-f", str(path)]
    barrier = threading.Barrier(3, timeout=30)
    met: list[str] = []

    def meet(label: str) -> None:
        if zone in label and elsewhere not in label:
            met.append(label)
            barrier.wait()

    calls = _watch_applies(monkeypatch, meet)
    try:
        code = run(["apply", *files, "--auto-approve", "--no-verify", "--parallel", "4"])
        out = capsys.readouterr().out
        assert code == 0, out
        ours = [c for c in calls if elsewhere not in c.label]
        assert len(met) == 3 and len({c.thread for c in ours}) == 3, "the three at once"
        for domain in domains:
            assert bind.query(f"_sip._udp.{domain}", "SRV") == [f"10 0 5060 asterisk.{domain}."]
            assert bind.query(f"_sipctl-lock.{domain}", "TXT") == []
        assert run(["plan", *files, "--parallel", "4", "--detailed-exitcode"]) == 0
        assert capsys.readouterr().out.count("No changes.") == 4
    finally:
        bind.delete_zone(zone)
        bind.delete_zone(elsewhere)


# --- the rule itself ---------------------------------------------------------------------------


def _domain(n: int, host: int, locks: tuple[str, ...]) -> Domain:
    """Domain ``n`` on host ``host`` (3: a host of its own) taking the shared ``locks``."""
    turns = (f"host:h{host}" if host < 3 else f"domain:d{n}.test", *locks)
    return Domain(Path(f"d{n}.yaml"), claims=Claims(f"d{n}.test", (), (), turns[0], (), turns))


_DOMAINS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3),
        st.lists(st.sampled_from(["lock:z1", "lock:z2", "lock:z3"]), max_size=2).map(tuple),
    ),
    max_size=12,
)


@settings(max_examples=examples(200), deadline=None)
@given(_DOMAINS, st.integers(min_value=1, max_value=4))
def test_domains_that_share_a_lock_are_grouped_and_sharded_together(
    drawn: list[tuple[int, tuple[str, ...]]], count: int
) -> None:
    domains = [_domain(n, host, locks) for n, (host, locks) in enumerate(drawn)]
    groups = turn_groups(domains)
    group_of = {id(d): n for n, group in enumerate(groups) for d in group}
    assert sorted(group_of) == sorted(id(d) for d in domains), "each domain in one group"
    for group in groups:
        assert group == sorted(group, key=domains.index), "in the order given"
    for a in domains:
        for b in domains:
            shared = set(a.claims.turns) & set(b.claims.turns) if a.claims and b.claims else ()
            if shared:
                assert group_of[id(a)] == group_of[id(b)]
    # no group could be split: its domains are linked through shared locks
    for group in groups:
        reached = {id(group[0])}
        keys = set(group[0].claims.turns if group[0].claims else ())
        grew = True
        while grew:
            grew = False
            for d in group:
                mine = set(d.claims.turns if d.claims else ())
                if id(d) not in reached and mine & keys:
                    reached.add(id(d))
                    keys |= mine
                    grew = True
        assert reached == {id(d) for d in group}
    shares = [take_shard(domains, f"{i}/{count}") for i in range(1, count + 1)]
    assert sorted(id(d) for share in shares for d in share) == sorted(id(d) for d in domains)
    for share in shares:
        taken = {id(d) for d in share}
        for group in groups:
            assert {id(d) for d in group} <= taken or not {id(d) for d in group} & taken


def test_the_zone_files_one_record_of_an_older_sipctl_is_read_until_the_next_apply(
    zone_specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A zone file of one domain kept its record under the file's name: drift still reads
    it, and the next apply that records anything writes the domain's own and removes it."""
    from sipctl.providers.bookkeeping import local_state_dir, record_name

    spec = zone_specs / "other.yaml"
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
    zone = (zone_specs.parent / "zones" / "other.test.zone").resolve()
    own = local_state_dir() / record_name(f"{zone}/other.test", ".state.json")
    old = local_state_dir() / record_name(str(zone), ".state.json")
    own.rename(old)  # as an older sipctl left it
    capsys.readouterr()
    assert run(["drift", "-f", str(spec)]) == 0, capsys.readouterr().out
    spec.write_text(spec.read_text().replace("192.0.2.10", "192.0.2.11"))  # a new record
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
    assert own.exists() and not old.exists(), sorted(p.name for p in own.parent.iterdir())
    assert run(["drift", "-f", str(spec)]) == 0
