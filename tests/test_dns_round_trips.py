"""What one ``sipctl apply`` costs a real BIND, counted by a proxy in front of it.

The developer guide: one read (a small zone's signed transfer, or a few pipelined queries in a
large zone) and one UPDATE to write per zone. The
lock is taken first (one UPDATE), the live state is read once under it, and the changes, the
record of the last apply and the lock's release go out in one UPDATE. A read goes on the
connection an earlier read of this process kept (these tests run sipctl in-process, so one
test's commands share it); each UPDATE goes on a connection of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.bind import SECRET_ENV, BindServer, bind_env, dns_spec
from fixtures.dns_count import DnsCounter

from sipctl.cli import run
from sipctl.errors import StalePlanError
from sipctl.providers.base import RunContext
from sipctl.reconciler.engine import PlanRun
from sipctl.reconciler.gitops.guarded import lock_and_apply
from sipctl.schemas.loader import load_spec

TWO_SERVERS = (
    "[{{host: asterisk.{z}, ipv4: [203.0.113.10], priority: 10}}, "
    "{{host: second.{z}, ipv4: [203.0.113.11], priority: 20}}]"
)


@pytest.fixture
def counted(bind: BindServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, DnsCounter]]:
    monkeypatch.setenv(SECRET_ENV, bind.secret)
    zone = bind.new_zone()
    host, _, port = bind.server.rpartition(":")
    with DnsCounter(host, int(port)) as counter:
        yield zone, counter
    bind.delete_zone(zone)


def _spec(bind: BindServer, counter: DnsCounter, zone: str, path: Path, **kw: str) -> Path:
    text = dns_spec(bind, zone, **kw).replace(f"'{bind.server}'", f"'{counter.server}'")
    assert counter.server in text
    path.write_text(text)
    return path


def _costs(counter: DnsCounter, *args: str) -> dict[str, int]:
    counter.reset()
    assert run(list(args)) == 0
    return counter.snapshot()


def test_apply_costs_a_read_a_lock_a_check_and_one_update(
    bind: BindServer, counted: tuple[str, DnsCounter], tmp_path: Path
) -> None:
    zone, counter = counted
    spec = str(_spec(bind, counter, zone, tmp_path / "sipctl.yaml"))
    read = _costs(counter, "plan", "-f", spec)
    assert read["update"] == 0 and read["connection"] == 1, read
    reads = read["query"]
    assert reads == 1, "a plan of a small zone is one signed transfer on one connection"

    applied = _costs(counter, "apply", "-f", spec, "--auto-approve", "--no-verify")
    # read (the plan shown); lock; the same read under the lock (stale check); changes +
    # record of the last apply + release, in one UPDATE. Both reads go on the plan's kept
    # connection: one connection per UPDATE.
    assert applied == {"connection": 2, "query": 2 * reads, "update": 2, "other": 0}
    assert bind.query(f"_sipctl-lock.{zone}", "TXT") == [], "the lock was released"
    assert bind.query(f"_sipctl-state.{zone}", "TXT"), "the record of the last apply was written"
    assert bind.query(f"_sip._udp.{zone}", "SRV") == [f"10 0 5060 asterisk.{zone}."]
    assert run(["plan", "-f", spec, "--detailed-exitcode"]) == 0
    assert run(["drift", "-f", spec]) == 0

    # nothing to change: one read (and a look at the record of the last apply); no UPDATE,
    # so a nightly apply of a live spec never bumps the zone's serial
    serial = bind.serial(zone)
    again = _costs(counter, "apply", "-f", spec, "--auto-approve", "--no-verify")
    assert again["update"] == 0 and again["connection"] <= 2, again
    assert bind.serial(zone) == serial
    assert bind.query(f"_sipctl-lock.{zone}", "TXT") == []

    # a saved plan: lock, one read (compared with the plan), one UPDATE
    _spec(bind, counter, zone, tmp_path / "sipctl.yaml", servers=TWO_SERVERS.format(z=zone))
    saved = str(tmp_path / "plan.json")
    assert run(["plan", "-f", spec, "--out", saved]) == 0
    more = _costs(counter, "apply", saved, "--no-verify")
    assert more["update"] == 2 and more["connection"] == 2, more
    assert more["query"] > 0
    assert bind.query(f"second.{zone}", "A") == ["203.0.113.11"]
    assert bind.query(f"_sipctl-lock.{zone}", "TXT") == []
    assert run(["drift", "-f", spec]) == 0


def test_reads_share_a_kept_connection_and_replace_one_the_server_closed(
    bind: BindServer,
    counted: tuple[str, DnsCounter],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sipctl.providers.dns import tcp_pipeline

    # the idle limit is the next test's subject: here a slow machine's pause between two
    # plans must not close the kept connection, or the count would say nothing about reuse
    monkeypatch.setattr(tcp_pipeline, "IDLE_SECONDS", 3600.0)
    zone, counter = counted
    spec = str(_spec(bind, counter, zone, tmp_path / "sipctl.yaml"))
    assert _costs(counter, "plan", "-f", spec)["connection"] == 1
    assert _costs(counter, "plan", "-f", spec) == {
        "connection": 0,
        "query": 1,
        "update": 0,
        "other": 0,
    }, "the second read goes on the first one's connection"
    counter.drop_connections()  # as a server drops an idle client
    assert _costs(counter, "plan", "-f", spec) == {
        "connection": 1,
        "query": 1,
        "update": 0,
        "other": 0,
    }, "a kept connection the server closed is replaced, the read sent again on a new one"


def test_a_connection_kept_too_long_is_closed_not_reused(
    bind: BindServer,
    counted: tuple[str, DnsCounter],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sipctl.providers.dns import tcp_pipeline

    zone, counter = counted
    spec = str(_spec(bind, counter, zone, tmp_path / "sipctl.yaml"))
    assert _costs(counter, "plan", "-f", spec)["connection"] == 1
    monkeypatch.setattr(tcp_pipeline, "IDLE_SECONDS", 0.0)  # as if it sat unused too long
    assert _costs(counter, "plan", "-f", spec)["connection"] == 1, "a new connection"


def test_a_refused_update_changes_nothing_and_still_releases_the_lock(
    bind: BindServer, counted: tuple[str, DnsCounter], tmp_path: Path
) -> None:
    zone, counter = counted
    spec = str(_spec(bind, counter, zone, tmp_path / "sipctl.yaml"))
    assert run(["apply", "-f", spec, "--auto-approve", "--no-verify"]) == 0
    state = bind.query(f"_sipctl-state.{zone}", "TXT")
    _spec(bind, counter, zone, tmp_path / "sipctl.yaml", servers=TWO_SERVERS.format(z=zone))
    saved = str(tmp_path / "plan.json")
    assert run(["plan", "-f", spec, "--out", saved]) == 0
    # someone else edits a record sipctl owns between the plan and its apply
    bind.update(zone, add=[("second", 300, "A", "198.51.100.7")])
    assert run(["apply", saved, "--no-verify"]) == 3
    assert bind.query(f"second.{zone}", "A") == ["198.51.100.7"]
    assert bind.query(f"_sipctl-state.{zone}", "TXT") == state, "no record of a refused apply"
    assert bind.query(f"_sipctl-lock.{zone}", "TXT") == [], "the lock was released"


def test_a_lock_lost_at_the_prompt_refuses_changes_record_and_release_together(
    bind: BindServer, tmp_path: Path
) -> None:
    """The lock expired while the user read the plan and another run took it over: the one
    UPDATE (changes, record, release) is refused as a whole, and the other run's lock stays."""
    zone = bind.new_zone()
    loaded = load_spec(_write(tmp_path / "sipctl.yaml", dns_spec(bind, zone)))
    ctx = RunContext(base_dir=tmp_path, env=bind_env(bind))
    other = "sipctl-lock=1 id=0123456789abcdef who=other@ci since=2026-01-01T00:00:00Z"
    lines: list[str] = []

    def taken_over_at_the_prompt(_run: PlanRun) -> None:
        bind.update(
            zone, delete=[("_sipctl-lock", "TXT")], add=[("_sipctl-lock", 60, "TXT", f'"{other}"')]
        )

    with pytest.raises(StalePlanError, match="release the lock"):
        lock_and_apply(loaded, ctx, before=taken_over_at_the_prompt, say=lines.append)
    assert bind.query(f"_sip._udp.{zone}", "SRV") == [], "no change was made"
    assert bind.query(f"_sipctl-state.{zone}", "TXT") == [], "no record was written"
    assert bind.query(f"_sipctl-lock.{zone}", "TXT") == [f'"{other}"'], "not our lock to delete"
    assert any("no longer ours" in line for line in lines), lines
    bind.delete_zone(zone)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_with_no_dns_change_the_record_and_the_release_share_one_update(
    bind: BindServer, counted: tuple[str, DnsCounter], tmp_path: Path
) -> None:
    zone, counter = counted
    (tmp_path / "host").mkdir()
    firewall = "firewall: {{target: 'dir:host', persist: /etc/iptables.up, extra: [{port}]}}\n"
    path = tmp_path / "sipctl.yaml"
    spec = str(_spec(bind, counter, zone, path, tail=firewall.format(port="'tcp/443'")))
    applied = _costs(counter, "apply", "-f", spec, "--auto-approve", "--no-verify")
    # the first read on a new connection, kept for the second; one per UPDATE
    assert applied["update"] == 2 and applied["connection"] == 3, applied

    # only the firewall changes: read, lock, check, then the record and the release together
    _spec(bind, counter, zone, path, tail=firewall.format(port="'tcp/8443'"))
    again = _costs(counter, "apply", "-f", spec, "--auto-approve", "--no-verify")
    assert again == {"connection": 2, "query": applied["query"], "update": 2, "other": 0}
    assert bind.query(f"_sipctl-lock.{zone}", "TXT") == []
    assert run(["drift", "-f", spec]) == 0
    assert run(["plan", "-f", spec, "--detailed-exitcode"]) == 0

    # DNS only withdraws (TLS dropped) and the firewall changes after it: the zone's UPDATE
    # is not the run's last step, so the record and the release follow in one more UPDATE
    _spec(
        bind,
        counter,
        zone,
        path,
        transports="{udp: {port: 5060}, tcp: {port: 5060}}",
        tail=firewall.format(port="'tcp/8443'"),
    )
    withdrawn = _costs(counter, "apply", "-f", spec, "--auto-approve", "--no-verify")
    assert withdrawn["update"] == 3 and withdrawn["connection"] == 3, withdrawn
    assert bind.query(f"_sips._tcp.{zone}", "SRV") == []
    assert bind.query(f"_sipctl-lock.{zone}", "TXT") == []
    assert run(["drift", "-f", spec]) == 0
    assert run(["plan", "-f", spec, "--detailed-exitcode"]) == 0
