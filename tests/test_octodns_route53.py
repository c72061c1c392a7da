"""dns.provider octodns against Route53's emulator (moto_server), through octodns_route53.

moto runs as a server on a loopback port; sipctl reaches it with ``AWS_ENDPOINT_URL`` as it
would reach Route53, through the plugin's boto3 client. moto does not check credentials; it
checks a change batch as Route53 does only because the fixture's server makes it (moto checks
a DELETE against its journal of changes; see tests/fixtures/moto_route53_server.py).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fixtures.common import free_port
from fixtures.moto_route53 import SECRET_KEY, MotoRoute53
from octodns_specs import route53_spec, sipctl, write

from sipctl.cli import run

E2U = '100 10 "U" "E2U+email" "!^.*$!mailto:info@example.org!" .'


spec_text = route53_spec


def test_plan_apply_noop_foreign_records_and_ttl(
    route53_env: MotoRoute53,
    route53_zone: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    z, r53 = route53_zone, route53_env
    before = r53.rrsets(z)
    spec = write(tmp_path, spec_text(z))
    code, out = sipctl(capsys, "plan", "-f", spec, "--detailed-exitcode")
    assert code == 2, out
    assert "cannot refuse a concurrent edit" not in out  # Route53 can: conditional batches
    code, out = sipctl(capsys, "apply", "-f", spec, "--auto-approve")
    assert code == 0, out
    assert sipctl(capsys, "plan", "-f", spec, "--detailed-exitcode")[0] == 0
    after = r53.rrsets(z)
    for key, value in before.items():
        if key[1] != "NAPTR":
            assert after[key] == value, key
    ttl, naptrs = after[(f"{z}.", "NAPTR")]
    assert E2U in naptrs and f'10 10 "S" "SIP+D2U" "" _sip._udp.{z}.' in naptrs
    assert ttl == 3600
    assert after[(f"_sip._udp.{z}.", "SRV")] == (300, [f"10 0 5060 sip.{z}."])
    assert after[(f"www.{z}.", "A")] == (3600, ["192.0.2.80"])
    # a new TTL and one server less
    two = (
        f"  - {{host: sip.{z}, ipv4: [192.0.2.10]}}\n"
        f"  - {{host: sip2.{z}, ipv4: [192.0.2.11], priority: 20}}\n"
    )
    assert (
        sipctl(capsys, "apply", "-f", write(tmp_path, spec_text(z, two)), "--auto-approve")[0] == 0
    )
    assert r53.rrsets(z)[(f"sip2.{z}.", "A")] == (300, ["192.0.2.11"])
    spec = write(tmp_path, spec_text(z, ttl=900))
    code, out = sipctl(capsys, "apply", "-f", spec, "--auto-approve", "--force")
    assert code == 0, out
    after = r53.rrsets(z)
    assert (f"sip2.{z}.", "A") not in after
    assert after[(f"_sip._tcp.{z}.", "SRV")] == (900, [f"10 0 5060 sip.{z}."])
    assert after[(f"www.{z}.", "A")] == (3600, ["192.0.2.80"])
    assert sipctl(capsys, "plan", "-f", spec, "--detailed-exitcode")[0] == 0
    assert SECRET_KEY not in out


def test_stale_saved_plan_is_refused_with_exit_3(
    route53_env: MotoRoute53,
    route53_zone: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    z, r53 = route53_zone, route53_env
    spec = write(tmp_path, spec_text(z))
    plan = str(tmp_path / "plan.json")
    assert sipctl(capsys, "plan", "-f", spec, "--out", plan)[0] == 0
    assert SECRET_KEY not in Path(plan).read_text()
    r53.change(z, "CREATE", "_sip._udp", "SRV", 60, [f"1 1 5060 elsewhere.{z}."])
    snapshot = r53.rrsets(z)
    code, out = sipctl(capsys, "apply", plan, "--auto-approve")
    assert code == 3, out
    assert "stale" in out and "Traceback" not in out
    assert r53.rrsets(z) == snapshot


@pytest.mark.parametrize("slipped", ["other values", "sipctl's own values"])
def test_the_conditional_batch_refuses_an_edit_between_read_and_write(
    route53_env: MotoRoute53, route53_zone: str, tmp_path: Path, slipped: str
) -> None:
    """sipctl reads, another writer creates an rrset sipctl is about to create, sipctl
    writes: Route53 refuses the whole batch (400 InvalidChangeBatch, a CREATE of an existing
    rrset), never sent again: stale, naming the rrset, nothing of the batch applied, whether
    the writer's values are other or sipctl's own (a batch of sipctl's own that landed with
    its answer lost, a 5xx, is retried from a fresh read: test_octodns_change_set.py)."""
    from sipctl.errors import StalePlanError
    from sipctl.providers.base import RunContext
    from sipctl.providers.dns.octodns import OctodnsProvider
    from sipctl.reconciler.diff import diff
    from sipctl.reconciler.render.dns import render_dns
    from sipctl.schemas.loader import load_spec_text

    z, r53 = route53_zone, route53_env
    loaded = load_spec_text(spec_text(z), base_dir=tmp_path)
    provider = OctodnsProvider(loaded, RunContext(base_dir=tmp_path))
    desired = render_dns(loaded.spec)
    live = provider.read(desired)
    changes = diff(desired, live)
    srv = f"10 0 5060 sip.{z}." if slipped == "sipctl's own values" else f"1 1 5060 x.{z}."
    r53.change(z, "CREATE", "_sip._udp", "SRV", 300, [srv])  # slipped in
    snapshot = r53.rrsets(z)
    with pytest.raises(StalePlanError, match=f"SRV _sip._udp.{z}. changed since sipctl read"):
        provider.apply(changes, live)
    assert r53.rrsets(z) == snapshot  # nothing of the batch was applied


def test_dead_endpoint_and_unknown_zone_are_one_clear_line(
    route53_env: MotoRoute53,
    route53_zone: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = write(tmp_path, spec_text("nowhere-sipctl.test"))
    code, out = sipctl(capsys, "plan", "-f", spec)
    assert code == 1, out
    assert "has no zone nowhere-sipctl.test." in out and "Traceback" not in out
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, out = sipctl(capsys, "apply", "-f", write(tmp_path, spec_text(route53_zone)))
    assert code == 1, out
    assert "cannot reach the DNS provider's API" in out and "Traceback" not in out
    assert SECRET_KEY not in out
    assert len(out.strip().splitlines()) <= 2, out


def test_two_applies_at_once_one_is_refused_by_the_lock(
    route53_env: MotoRoute53,
    route53_zone: str,
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    z = route53_zone
    spec = write(tmp_path, spec_text(z))
    barrier = threading.Barrier(2)
    results: list[subprocess.CompletedProcess[str]] = []

    def apply() -> None:
        barrier.wait()
        results.append(
            subprocess.run(
                [sys.executable, "-m", "sipctl", "apply", "-f", spec, "--auto-approve"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        )

    threads = [threading.Thread(target=apply) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.returncode for r in results)
    outs = "\n".join(r.stdout + r.stderr for r in results)
    assert codes in ([0, 0], [0, 3]), outs
    if codes == [0, 3]:
        # the second found the lock held, or took it after the first had written and found
        # the zone no longer as its plan read it: refused either way, nothing of it written
        assert "is locked by" in outs or "Nothing was changed; run 'sipctl plan' again" in outs
    else:  # the second ran after the first: it found nothing to do
        assert "No changes" in outs
    assert route53_env.rrsets(z)[(f"_sip._udp.{z}.", "SRV")] == (300, [f"10 0 5060 sip.{z}."])
    assert (f"_sipctl-lock.{z}.", "TXT") not in route53_env.rrsets(z)  # released


def test_an_edit_to_new_values_between_read_and_write_refuses_the_batch(
    route53_env: MotoRoute53, route53_zone: str, tmp_path: Path
) -> None:
    """The case only a conditional DELETE catches: sipctl replaces an rrset it read (DELETE
    of the values read, CREATE of the new ones); an admin gives it other values in between.
    Route53 refuses the whole batch, sipctl says stale, and the admin's values stay."""
    from sipctl.errors import StalePlanError
    from sipctl.providers.base import RunContext
    from sipctl.providers.dns.octodns import OctodnsProvider
    from sipctl.reconciler.diff import diff
    from sipctl.reconciler.render.dns import render_dns
    from sipctl.schemas.loader import load_spec_text

    z, r53 = route53_zone, route53_env
    spec = write(tmp_path, spec_text(z))
    assert run(["apply", "-f", spec, "--auto-approve"]) == 0
    moved = f"  - {{host: sip.{z}, ipv4: [192.0.2.11], priority: 10}}\n"
    loaded = load_spec_text(spec_text(z, moved), base_dir=tmp_path)
    provider = OctodnsProvider(loaded, RunContext(base_dir=tmp_path))
    desired = render_dns(loaded.spec)
    live = provider.read(desired)
    changes = diff(desired, live)
    assert [c.address.name for c in changes] == [f"sip.{z}."], changes
    r53.change(z, "UPSERT", "sip", "A", 300, ["192.0.2.99"])  # the admin's edit, slipped in
    snapshot = r53.rrsets(z)
    with pytest.raises(StalePlanError, match=f"A sip.{z}. changed"):
        provider.apply(changes, live)
    assert r53.rrsets(z) == snapshot
    assert snapshot[(f"sip.{z}.", "A")] == (300, ["192.0.2.99"])


def test_the_lock_is_created_only_where_none_exists(
    route53_env: MotoRoute53, route53_zone: str, tmp_path: Path
) -> None:
    """Taking the lock is a CREATE: when another run's lock appeared after sipctl looked,
    Route53 refuses it and the other holder's record stays as it was."""
    from datetime import timedelta

    from sipctl.providers.base import RunContext
    from sipctl.providers.dns.octodns import OctodnsProvider
    from sipctl.providers.dns.octodns_lock import OctodnsLock
    from sipctl.reconciler.gitops.locking import new_holder
    from sipctl.schemas.loader import load_spec_text

    z, r53 = route53_zone, route53_env
    loaded = load_spec_text(spec_text(z), base_dir=tmp_path)
    lock = OctodnsLock(OctodnsProvider(loaded, RunContext(base_dir=tmp_path)))
    assert lock.holder() is None  # sipctl looked: no lock
    other = new_holder("other-plan", timedelta(minutes=5)).to_text()
    r53.change(z, "CREATE", f"_sipctl-lock.{z}.", "TXT", 60, [f'"{other}"'])  # another run
    mine = new_holder("my-plan", timedelta(minutes=5))
    assert not lock._txt.replace(None, [mine.to_text()], "take the lock")
    assert r53.rrsets(z)[(f"_sipctl-lock.{z}.", "TXT")] == (60, [f'"{other}"'])
    shown = lock.acquire(mine)  # and acquiring names the other holder
    assert shown is not None and shown.id != mine.id


def test_moto_still_does_not_enforce_route53s_conditions() -> None:
    """A canary for tests/fixtures/moto_route53_server.py: Route53 refuses both changes
    below; moto itself (in this process, without the fixture's checks) accepts them. When this
    fails, moto enforces the conditions and the fixture's checks can go."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("route53", region_name="us-east-1")
        zone_id = client.create_hosted_zone(Name="canary.test.", CallerReference="canary")[
            "HostedZone"
        ]["Id"]

        def change(action: str, name: str, rdtype: str, ttl: int, value: str) -> None:
            rrset = {
                "Name": name,
                "Type": rdtype,
                "TTL": ttl,
                "ResourceRecords": [{"Value": value}],
            }
            client.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={"Changes": [{"Action": action, "ResourceRecordSet": rrset}]},
            )

        change("CREATE", "_sipctl-lock.canary.test.", "TXT", 60, '"holder one"')
        change("CREATE", "_sipctl-lock.canary.test.", "TXT", 60, '"holder two"')  # exists
        change("CREATE", "www.canary.test.", "A", 3600, "192.0.2.80")
        change("UPSERT", "www.canary.test.", "A", 3600, "192.0.2.81")  # an admin's edit
        change("DELETE", "www.canary.test.", "A", 3600, "192.0.2.80")  # values do not match
        names = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        assert "www.canary.test." not in [r["Name"] for r in names]


@pytest.mark.parametrize("legacy", [False, True], ids=["claimed", "zone-before-claims"])
def test_a_claim_between_read_and_write_refuses_the_change_it_decided(
    route53_env: MotoRoute53, route53_zone: str, tmp_path: Path, legacy: bool
) -> None:
    """b is the only domain using pbx and moves its address; a starts using pbx between b's
    read and b's write. b's batch holds pbx's claims as read, and is refused whole by
    Route53 itself (the claims ride as DELETE and CREATE of what was read: no read before
    writing). In a zone written before claims, b's own claim rides as a creation and is
    refused alike (dropping pbx there deletes no address at all now: the registry alone
    deletes nothing, tests/test_dns_registry_injection.py). pbx keeps a's addresses either
    way. Without the claims held, both batches went through: pbx moved under a."""
    from sipctl.errors import StalePlanError
    from sipctl.providers.base import RunContext
    from sipctl.providers.dns.octodns import OctodnsProvider
    from sipctl.reconciler.diff import diff
    from sipctl.reconciler.render.dns import render_dns
    from sipctl.schemas.loader import load_spec_text

    z, r53 = route53_zone, route53_env
    a, b = f"a.{z}", f"b.{z}"

    def text(domain: str, address: str = "192.0.2.10", absent: bool = False) -> str:
        servers = f"  - {{host: pbx.{z}, ipv4: [{address}]}}\n"
        extra = f"  zone: {z}\n" + ("  ensure: absent\n" if absent else "")
        return (
            route53_spec(z, servers)
            .replace(f"domain: {z}\n", f"domain: {domain}\n")
            .replace("  provider: octodns\n", "  provider: octodns\n" + extra)
        )

    def planned(spec: str) -> tuple[OctodnsProvider, Any, list[Any]]:
        loaded = load_spec_text(spec, base_dir=tmp_path)
        provider = OctodnsProvider(loaded, RunContext(base_dir=tmp_path))
        desired = render_dns(loaded.spec)
        live = provider.read(desired)
        return provider, live, diff(desired, live)

    def apply(spec: str) -> None:
        provider, live, changes = planned(spec)
        provider.apply(changes, live)

    apply(text(b))
    claim = (f"_sipctl-claim.pbx.{z}.", "TXT")
    apply(text(b, "192.0.2.98"))  # not racing: the claims held ride and stay as they were
    assert r53.rrsets(z)[(f"pbx.{z}.", "A")] == (300, ["192.0.2.98"])
    assert r53.rrsets(z)[claim] == (300, [f'"domain={b}."'])
    apply(text(b))
    if legacy:
        r53.change(z, "DELETE", "_sipctl-claim.pbx", "TXT", 300, [f'"domain={b}."'])
        # a removal keeps the addresses now (its own claim is not there: the registry alone
        # deletes nothing); a change of them is what is decided on claims read as absent
        provider, live, changes = planned(text(b, absent=True))
        assert not any(c.address.kind == "A" for c in changes), changes
        provider, live, changes = planned(text(b, "192.0.2.99"))
        assert {(c.action, c.address.kind) for c in changes} >= {("update", "A")}
    else:
        provider, live, changes = planned(text(b, "192.0.2.99"))
        assert [(c.action, c.address.kind) for c in changes] == [("update", "A")]
    apply(text(a))  # a claims pbx (its addresses as they are) in between
    snapshot = r53.rrsets(z)
    assert claim in snapshot
    reads = provider.reads
    # (zone before claims: b's own claim rides in the batch as a creation, so Route53
    # refuses it as well)
    claim_text = f"TXT _sipctl-claim.pbx.{z}. changed since sipctl read it"
    with pytest.raises(StalePlanError, match=claim_text) as e:
        provider.apply(changes, live)
    # refused by Route53, never retried: said so, and what to do
    assert "refused the change set as a whole; nothing was changed" in e.value.message
    assert e.value.message.endswith("Run plan again: it reads what is live now")
    assert "retried" not in e.value.message
    # claimed: Route53 refused the batch, then sipctl read what changed, to say so
    assert provider.reads == reads + 1
    assert r53.rrsets(z) == snapshot  # nothing of b's batch was applied
    assert snapshot[(f"pbx.{z}.", "A")] == (300, ["192.0.2.10"])


def test_octodns_route53_still_sends_every_delete_of_a_batch_before_its_creates(
    route53_env: MotoRoute53, route53_zone: str, tmp_path: Path
) -> None:
    """A canary for the one gap left in the claims' guard on Route53 (docs/tutorial.md,
    "Several domains in one zone"). Route53 takes a batch's changes in order, so CREATE and
    then DELETE of a server's claims (``_sipctl-claim.<host>``) would hold them absent in
    the batch itself: refused whole when another domain claimed the server in between, else
    leaving the zone as it was. octodns_route53 sorts every DELETE of a batch before its
    CREATEs (``_mod_keyer``), so the same two changes handed to it are refused whatever the
    zone holds, and sipctl reads claims read as absent again just before writing instead.
    When this fails, the plugin sends them in order and that read can give way to the batch."""
    import botocore.exceptions
    from octodns.provider.plan import Plan
    from octodns.record import Create, Delete

    from sipctl.providers.base import RunContext
    from sipctl.providers.dns.octodns import OctodnsProvider
    from sipctl.providers.dns.octodns_reads import prepare_apply
    from sipctl.providers.dns.octodns_records import new_record, new_zone
    from sipctl.schemas.loader import load_spec_text

    z, r53 = route53_zone, route53_env
    claim = f"_sipctl-claim.pbx.{z}."
    hold = '"domain=hold."'

    def batch(*actions: str) -> None:
        rrset = {"Name": claim, "Type": "TXT", "TTL": 300, "ResourceRecords": [{"Value": hold}]}
        changes = [{"Action": action, "ResourceRecordSet": rrset} for action in actions]
        r53.client().change_resource_record_sets(
            HostedZoneId=r53.zone_ids[z], ChangeBatch={"Changes": changes}
        )

    batch("CREATE", "DELETE")  # in order: held absent, and left absent
    assert (claim, "TXT") not in r53.rrsets(z)
    r53.change(z, "CREATE", "_sipctl-claim.pbx", "TXT", 300, ['"domain=a.example."'])
    with pytest.raises(botocore.exceptions.ClientError, match=r"create .* already exists"):
        batch("CREATE", "DELETE")  # another domain claimed it: refused whole
    r53.change(z, "DELETE", "_sipctl-claim.pbx", "TXT", 300, ['"domain=a.example."'])

    loaded = load_spec_text(route53_spec(z), base_dir=tmp_path)
    provider = OctodnsProvider(loaded, RunContext(base_dir=tmp_path))
    plugin = provider.plugin.instance()
    existing, desired = new_zone(provider.zone), new_zone(provider.zone)
    record = new_record(desired, claim, "TXT", 300, [hold])
    plan = Plan(existing, desired, [Create(record), Delete(record)], True)
    prepare_apply(plugin, provider.zone, [claim])
    with pytest.raises(botocore.exceptions.ClientError, match=r"delete .* not found"):
        plugin.apply(plan)  # sent as DELETE, CREATE: the DELETE finds nothing
    assert (claim, "TXT") not in r53.rrsets(z)
