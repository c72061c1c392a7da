"""Host files and customer files: their rules, how a directory composes them, and what a
plan of the host does when customers come and go (dir: targets, no programs)."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures.common import EXAMPLES
from fixtures.hosting import bind_customer, copy_example, set_local_contexts
from fixtures.properties import examples
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.errors import SpecError
from sipctl.reconciler.render.asterisk import dialplan_text
from sipctl.schemas.hosting import readable_domain
from sipctl.schemas.loader import load_spec, load_spec_text

CUSTOMER = "version: 1\ndomain: a.example\nhost: pbx1\nlocal_context: a-phones\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\ndomain: a.example\nhost: pbx1\nhosting: {name: pbx1}\n", "not both"),
        (CUSTOMER + "asterisk: {target: local}\n", "asterisk belongs to the host's file"),
        (CUSTOMER + "firewall: {backend: iptables}\n", "firewall belongs to the host's file"),
        ("version: 1\ndomain: a.example\nhost: pbx1\n", "needs local_context"),
        ("version: 1\ndomain: a.example\nlocal_context: x\n", "belongs to a customer file"),
        ("version: 1\ndomain: h.example\nhosting: {name: pbx1}\n", "needs an asterisk section"),
        (
            "version: 1\ndomain: h.example\nhosting: {name: pbx1}\nasterisk: {}\n"
            "users: {director: 105}\n",
            "no users or rooms",
        ),
        ("version: 1\ndomain: a.example\nhost: PBX1\nlocal_context: x\n", "host"),
    ],
)
def test_the_roles_of_a_file(text: str, expected: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(text)
    assert expected in str(caught.value) + " ".join(caught.value.problems)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("version: 1\ndomain: a.example\nhost: pbx1\nhosting: {name: pbx1}\n", "3:1: host:"),
        (CUSTOMER + "asterisk: {target: local}\n", "5:1: asterisk:"),
        (CUSTOMER + "webrtc: {host: w.example}\n", "5:10: webrtc.host:"),
        ("version: 1\ndomain: a.example\nhost: pbx1\n", "3:1: host:"),
        ("version: 1\ndomain: a.example\nlocal_context: x\n", "3:1: local_context:"),
        ("version: 1\ndomain: h.example\nhosting: {name: pbx1}\n", "3:1: hosting:"),
        (
            "version: 1\ndomain: h.example\nhosting: {name: pbx1}\nasterisk: {}\n"
            "rooms: {meeting: {}}\n",
            "5:1: rooms:",
        ),
    ],
)
def test_a_files_role_is_refused_at_the_key_that_breaks_it(text: str, where: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, source="f.yaml")
    assert caught.value.message.startswith(f"f.yaml:{where} "), caught.value.message


@pytest.fixture
def hoster(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "hoster")


def test_a_customer_takes_its_hosts_transports_and_servers(hoster: Path) -> None:
    customer = load_spec(hoster / "alpha.example.yaml").spec
    host = load_spec(hoster / "pbx1.yaml").spec
    assert customer.servers == host.servers and customer.transports == host.transports
    assert [c.domain for c in host.customers] == ["alpha.example", "beta.example"]
    assert [c.domain for c in load_spec(hoster / "pbx2.yaml").spec.customers] == ["gamma.example"]


def test_a_customer_without_its_host_file_is_refused(hoster: Path) -> None:
    (hoster / "pbx2.yaml").unlink()
    with pytest.raises(
        SpecError, match=r"host: no file beside gamma.example.yaml has 'hosting: \{name: pbx2\}'"
    ):
        load_spec(hoster / "gamma.example.yaml")


def test_a_customer_file_that_does_not_load_fails_its_host(hoster: Path) -> None:
    """Planned without it, the host would remove that customer."""
    path = hoster / "beta.example.yaml"
    good = path.read_text()
    path.write_text(good.replace("director: 105", "director: [105"))
    with pytest.raises(SpecError, match=r"beta\.example\.yaml \(a customer of pbx1\)") as raised:
        load_spec(hoster / "pbx1.yaml")
    # the host's own plan says what the file is to it, and what to do
    what_to_do = "fix the file, or delete it to remove the customer"
    assert raised.value.hint is not None and what_to_do in raised.value.hint, raised.value.hint
    assert f"{path} is a customer file of pbx1" in raised.value.hint, raised.value.hint
    # a problem of the schema too (printed as its problems, file:line first)
    path.write_text(good + "colour: red\n")
    with pytest.raises(SpecError) as raised:
        load_spec(hoster / "pbx1.yaml")
    assert raised.value.problems[0].startswith(f"{path}:"), raised.value.problems
    hint = raised.value.hint or ""
    assert f"{path} is a customer file of pbx1" in hint and what_to_do in hint, hint
    assert "sipctl schema --kind reference" in hint, hint  # the loader's own hint stays


def test_a_single_company_spec_is_both_at_once() -> None:
    loaded = load_spec(EXAMPLES / "mysite.yaml")
    assert loaded.spec.host is None and loaded.spec.hosting is None
    assert "sipctl-domains" not in dialplan_text(loaded.spec)


def _plan(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = run(["plan", "-f", str(path), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _apply(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> int:
    code = run(["apply", "-f", str(path), "--auto-approve", *extra])
    capsys.readouterr()
    return code


def test_customers_come_and_go_with_their_files(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(hoster)
    host = hoster / "pbx1.yaml"
    assert _apply(host, capsys) == 0
    dialplan = hoster / "state" / "pbx1" / "etc" / "asterisk" / "extensions_sipctl.conf"
    first = dialplan.read_text()
    # what the apply recorded is what it wrote (the record is rendered with the customers)
    assert run(["drift", "-f", str(host)]) == 0
    assert "No drift" in capsys.readouterr().out

    # adding a customer adds its own lines only
    (hoster / "delta.example.yaml").write_text(
        CUSTOMER.replace("a.example", "delta.example").replace("a-phones", "delta-phones")
        + "users: {director: 105}\n"
    )
    bind_customer(host, "delta.example", "delta-phones")  # the host's admin binds it first
    code, shown = _plan(host, capsys)
    assert "+ user director@delta.example → 105" in shown and "0 to destroy" in shown, shown
    assert _apply(host, capsys) == 0
    added = dialplan.read_text().splitlines()
    matcher = difflib.SequenceMatcher(a=first.splitlines(), b=added, autojunk=False)
    edits = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    assert {op[0] for op in edits} == {"insert"}, edits  # nothing of the others changed
    inserted = [ln for op in edits for ln in added[op[3] : op[4]]]
    assert inserted[:2] == [
        "exten => delta.example,1,Goto(sipctl-guest-delta.example,${SIPCTL_NAME},1)",
        "exten => delta.example.,1,Goto(sipctl-guest-delta.example,${SIPCTL_NAME},1)",
    ]
    assert inserted[2:4] == [
        "; Customer delta.example: its phones are in delta-phones.",
        "[sipctl-guest-delta.example]",
    ]

    # a customer whose file is gone: planned for removal, counted by the safety limit
    (hoster / "beta.example.yaml").unlink()
    (hoster / "delta.example.yaml").unlink()
    code, shown = _plan(host, capsys)
    assert "- user director@beta.example → 105" in shown, shown
    assert "- user support@beta.example → 110" in shown, shown
    assert "- room meeting@beta.example → room (ConfBridge)" in shown, shown
    assert "removes 2 of 3 customers" in shown, shown
    assert _apply(host, capsys) != 0  # refused without --force
    assert _apply(host, capsys, "--force") == 0
    after = dialplan.read_text()
    assert "beta.example" not in after and "delta.example" not in after
    rooms = (dialplan.parent / "confbridge_sipctl.conf").read_text()
    assert "[sipctl-room-meeting@alpha.example]" in rooms and "beta.example" not in rooms
    alpha = [ln for ln in first.splitlines() if "alpha" in ln]
    assert [ln for ln in after.splitlines() if "alpha" in ln] == alpha
    code, shown = _plan(host, capsys)
    assert code == 0 and "No changes" in shown, shown


def test_the_same_room_at_two_customers_is_two_rooms(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(hoster)
    code, shown = _plan(hoster / "pbx1.yaml", capsys)
    assert code == 0, shown
    assert "+ room meeting@alpha.example → room (ConfBridge), at most 10 members" in shown
    assert "+ room meeting@beta.example → room (ConfBridge), at most 5 members" in shown
    text = dialplan_text(load_spec(hoster / "pbx1.yaml").spec)
    assert "ConfBridge(meeting@alpha.example,sipctl-room-meeting@alpha.example," in text
    assert "ConfBridge(meeting@beta.example,sipctl-room-meeting@beta.example," in text
    # a customer's phones reach its own rooms: its local_context includes them
    assert "[alpha-phones]\ninclude => sipctl-rooms-alpha.example\n" in text


def test_a_host_change_is_planned_once(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customers' own plans hold their DNS records only: the host's parts are in the
    host's plan."""
    monkeypatch.chdir(hoster)
    code, shown = _plan(hoster, capsys)
    assert code == 0, shown
    assert shown.count("# asterisk at dir:state/pbx1") == 1, shown
    assert shown.count("# fail2ban at dir:state/pbx1") == 1, shown


def test_a_shard_holds_a_host_with_all_its_customers(hoster: Path) -> None:
    from sipctl.reconciler.gitops.multi import Domain
    from sipctl.reconciler.gitops.shards import take_shard

    domains = [Domain(path=p, loaded=load_spec(p)) for p in sorted(hoster.glob("*.yaml"))]
    for count in (2, 3, 5):
        for index in range(1, count + 1):
            names = {d.name for d in take_shard(domains, f"{index}/{count}")}
            for host, customers in (
                ("pbx1.hoster.example", {"alpha.example", "beta.example"}),
                ("pbx2.hoster.example", {"gamma.example"}),
            ):
                assert (host in names) == (customers <= names), (count, index, names)
                assert not (customers & names) or customers <= names


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("alpha.example", "domain: alpha.example is also the domain of .*alpha.example.yaml:"),
        ("al-pha.example", "domain: al-pha.example is to Asterisk .* the same as the domain of"),
    ],
)
def test_two_customers_asterisk_cannot_tell_apart(hoster: Path, domain: str, expected: str) -> None:
    text = (hoster / "alpha.example.yaml").read_text().replace("alpha.example", domain)
    (hoster / "twin.yaml").write_text(text)
    with pytest.raises(SpecError, match=expected):
        load_spec(hoster / "pbx1.yaml")


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("pbx1.hoster.example", "domain: pbx1.hoster.example is the domain of the host pbx1"),
        ("PBX1.hoster.example.", "is the domain of the host pbx1 itself .*pbx1.yaml:"),
        ("pbx1.ho-ster.example", "is to Asterisk .* the same as the domain of the host pbx1"),
    ],
)
def test_a_customer_cannot_take_its_hosts_own_domain(
    hoster: Path, domain: str, expected: str
) -> None:
    """The host's domain is the host's: a customer file naming it would route the host's
    domain to the customer's phones, and publish the host's server names in its own zone."""
    text = (
        (hoster / "beta.example.yaml")
        .read_text()
        .replace("domain: beta.example", f"domain: {domain}")
    )
    (hoster / "beta.example.yaml").write_text(text)
    with pytest.raises(SpecError, match=expected):
        load_spec(hoster / "pbx1.yaml")
    assert run(["plan", "-f", str(hoster)]) == 1


def test_a_customer_file_moved_to_another_host_moves_the_customer(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(hoster)
    assert _apply(hoster, capsys) == 0
    gamma = hoster / "gamma.example.yaml"
    gamma.write_text(gamma.read_text().replace("host: pbx2", "host: pbx1"))
    bind_customer(hoster / "pbx1.yaml", "gamma.example", "gamma-phones")
    _code, shown = _plan(hoster / "pbx2.yaml", capsys)
    assert "- user office@gamma.example → 200" in shown, shown
    # its DNS records are its file's, which still declares it: the old host leaves them
    assert "# dns" not in shown and "SRV" not in shown, shown
    _code, shown = _plan(hoster / "pbx1.yaml", capsys)
    assert "+ user office@gamma.example → 200" in shown and "0 to destroy" in shown, shown
    assert _apply(hoster / "pbx1.yaml", capsys) == 0
    assert _apply(hoster / "pbx2.yaml", capsys, "--force") == 0  # its only customer left
    etc = hoster / "state"
    assert "gamma.example" in (etc / "pbx1/etc/asterisk/extensions_sipctl.conf").read_text()
    assert "gamma.example" not in (etc / "pbx2/etc/asterisk/extensions_sipctl.conf").read_text()
    # its own plan points its SRV records at its new host (2 of its 5 records replaced)
    assert _apply(hoster, capsys, "--force") == 0
    assert "SRV\t10 0 5060 pbx1.hoster.example." in (etc / "gamma.example.zone").read_text()
    code, shown = _plan(hoster, capsys, "--detailed-exitcode")
    assert code == 0, shown


def test_a_customer_file_whose_domain_changed_is_told_so(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is still there, under its new domain: the refusal says the domain changed,
    not that a customer file is missing."""
    monkeypatch.chdir(hoster)
    assert _apply(hoster / "pbx1.yaml", capsys) == 0
    beta = hoster / "beta.example.yaml"
    beta.write_text(beta.read_text().replace("beta.example", "beta-new.example"))
    bind_customer(hoster / "pbx1.yaml", "beta-new.example", "beta-phones")
    _code, shown = _plan(hoster / "pbx1.yaml", capsys)
    assert "removes 1 of 2 customers (beta.example; 50%" in shown, shown
    assert "the plan also adds beta-new.example: did a customer file's domain change?" in shown
    # and where nothing arrives, the file is what is missing
    beta.unlink()
    _code, shown = _plan(hoster / "pbx1.yaml", capsys)
    assert "50%, the limit is 30%): is a customer file missing from the directory?" in shown
    assert "domain change" not in shown, shown


def test_removing_a_customers_file_removes_its_dns_records(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host's record keeps how each customer's records were written; a plan of the
    host removes them through that, with its dialplan, and nothing of the others."""
    monkeypatch.chdir(hoster)
    assert _apply(hoster, capsys) == 0
    zones = hoster / "state"
    alpha, beta = (zones / "alpha.example.zone").read_text(), zones / "beta.example.zone"
    assert "SIP+D2U" in beta.read_text()
    (hoster / "beta.example.yaml").unlink()
    # a removal not applied yet is no drift of the host
    assert run(["drift", "-f", str(hoster / "pbx1.yaml")]) == 0
    shown = capsys.readouterr().out
    assert "No drift" in shown and "cannot be told" not in shown, shown
    code, shown = _plan(hoster, capsys)
    assert (
        "# dns at zonefile:state/beta.example.zone (customer beta.example: its file is gone)"
        in shown
    ), shown
    for line in (
        "- user director@beta.example → 105",
        '- dns NAPTR beta.example 10 10 "s" "SIP+D2U" "" _sip._udp.beta.example',
        "- dns SRV _sip._udp.beta.example 10 0 5060 pbx1.hoster.example",
        '- dns TXT _sipctl.beta.example "sipctl-registry=1"',
    ):
        assert line in shown, shown
    # the JSON plan names the customer whose records a target removes, as its schema says
    import jsonschema

    from sipctl.schemas.outputs import plan_schema

    assert run(["plan", "-f", str(hoster / "pbx1.yaml"), "--json"]) in (0, 3)
    (domain,) = json.loads(capsys.readouterr().out)["domains"]
    data = domain["plan"]
    jsonschema.validate(data, plan_schema())
    assert [t.get("customer") for t in data["targets"] if t["layer"] == "dns"] == ["beta.example"]
    # one customer of two, counted once (not also as 100% of its zone's records)
    assert "removes 1 of 2 customers" in shown and "managed records" not in shown, shown
    assert _apply(hoster, capsys) != 0  # refused without --force
    assert "SIP+D2U" in beta.read_text()
    code = run(["apply", "-f", str(hoster / "pbx1.yaml"), "--auto-approve", "--force", "-vv"])
    shown = capsys.readouterr()
    assert code == 0, shown
    # the zone the host's plan writes is locked like any zone an apply writes
    assert re.search(r"locked zone file lock \S+ \(for \S+/beta\.example\.zone\)", shown.err)
    assert "Removed the record of customer beta.example's last apply" in shown.out + shown.err
    left = beta.read_text()
    assert "SIP" not in left and "_sipctl" not in left and "SOA" in left, left
    assert (zones / "alpha.example.zone").read_text() == alpha
    code, shown = _plan(hoster, capsys, "--detailed-exitcode")
    assert code == 0, shown


def test_a_saved_plan_removes_a_departed_customers_records(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(hoster)
    assert _apply(hoster, capsys) == 0
    (hoster / "beta.example.yaml").unlink()
    code, shown = _plan(hoster / "pbx1.yaml", capsys, "--out", "pbx1.plan", "--force")
    assert code == 0 and "customer beta.example: its file is gone" in shown, shown
    assert run(["apply", "pbx1.plan", "--auto-approve", "--force"]) == 0, capsys.readouterr()
    assert "SIP" not in (hoster / "state" / "beta.example.zone").read_text()
    code, shown = _plan(hoster / "pbx1.yaml", capsys, "--detailed-exitcode")
    assert code == 0, shown


def test_a_departure_whose_zone_the_run_did_not_lock_is_refused(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which zones an apply locks comes from the host's record, read before the locks; the
    plan under them reads it again. Another run's apply of the host in between may make it
    name a customer whose file is gone here: its zone is not locked, so nothing is done."""
    from sipctl.reconciler.gitops import guarded

    monkeypatch.chdir(hoster)
    assert _apply(hoster, capsys) == 0
    (hoster / "beta.example.yaml").unlink()
    [record] = (hoster / "state" / "pbx1" / "var" / "lib" / "sipctl").glob("*.state.json")
    then = record.read_text()
    without_beta = json.loads(then)
    del without_beta["customers"]["beta.example"]
    lock_sites = guarded.lock_sites

    def another_run_in_between(*args: Any, **kwargs: Any) -> Any:
        record.write_text(json.dumps(without_beta))  # what the locks are chosen by
        sites = lock_sites(*args, **kwargs)
        record.write_text(then)  # what the other run's apply recorded meanwhile
        return sites

    monkeypatch.setattr(guarded, "lock_sites", another_run_in_between)
    beta_zone = (hoster / "state" / "beta.example.zone").read_text()
    dialplan = hoster / "state" / "pbx1" / "etc" / "asterisk" / "extensions_sipctl.conf"
    before = dialplan.read_text()
    code = run(["apply", "-f", str(hoster / "pbx1.yaml"), "--auto-approve", "--force"])
    shown = capsys.readouterr()
    assert code == 3, shown
    assert "customer beta.example (dns at zonefile:state/beta.example.zone)" in shown.err
    assert "its zone is not locked by this run. Nothing was changed" in shown.err, shown
    assert (hoster / "state" / "beta.example.zone").read_text() == beta_zone
    assert dialplan.read_text() == before
    monkeypatch.setattr(guarded, "lock_sites", lock_sites)  # run again: it locks the zone
    assert _apply(hoster / "pbx1.yaml", capsys, "--force") == 0
    assert "SIP" not in (hoster / "state" / "beta.example.zone").read_text()


def test_only_domains_listed_in_both_spellings_count_as_customers() -> None:
    """Other extensions of the domains context (the catch-all, or the special h, i, t, T, e
    an earlier version wrote there) are no customers: they would dilute the safety limit."""
    from sipctl.reconciler.safety import hosted_domains

    def context(*names: str) -> dict[str, list[str]]:
        return {f"sipctl-domains,{name}": ["Goto(...)"] for name in names}

    specials = ("_-.", "h", "i", "t", "T", "e")
    three = ("a.example", "a.example.", "b.example", "b.example.", "c.example", "c.example.")
    assert hosted_domains(context(*three, *specials)) == {"a.example", "b.example", "c.example"}
    assert hosted_domains({**context(*three), "sipctl-guest-a.example,h": []}) == {
        "a.example",
        "b.example",
        "c.example",
    }
    assert hosted_domains("not a dialplan") == set()


def test_a_customer_moved_to_a_host_in_another_directory_keeps_its_records(
    hoster: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The old host's directory no longer has its file: the customer's records, pointing at
    the new host's servers once the new directory was applied, are left to it. Its zone
    file stays where it is, in a directory of zones the runner profile allows."""
    (tmp_path / "zones").mkdir()
    zone = tmp_path / "zones" / "gamma.zone"
    (tmp_path / "runner-profile.yaml").write_text("version: 1\nzone_files: [zones]\n")
    monkeypatch.setenv("SIPCTL_PROFILE", str(tmp_path / "runner-profile.yaml"))
    gamma = hoster / "gamma.example.yaml"
    gamma.write_text(gamma.read_text().replace("state/gamma.example.zone", str(zone)))
    monkeypatch.chdir(hoster)
    assert _apply(hoster, capsys) == 0
    other = tmp_path / "hoster2"
    other.mkdir()
    host = (
        (hoster / "pbx1.yaml")
        .read_text()
        .replace("pbx1", "pbx3")
        .replace("203.0.113.10", "203.0.113.30")
    )
    (other / "pbx3.yaml").write_text(host)
    set_local_contexts(other / "pbx3.yaml", {"gamma.example": "gamma-phones"})
    (other / "gamma.example.yaml").write_text(gamma.read_text().replace("host: pbx2", "host: pbx3"))
    gamma.unlink()
    monkeypatch.chdir(other)
    assert _apply(other, capsys, "--force") == 0  # its SRV records now point at pbx3
    assert "pbx3.hoster.example" in zone.read_text()
    monkeypatch.chdir(hoster)
    code, shown = _plan(hoster / "pbx2.yaml", capsys)
    assert "- user office@gamma.example → 200" in shown, shown
    assert "# dns" not in shown and "point at pbx3.hoster.example" in shown, shown
    assert _apply(hoster / "pbx2.yaml", capsys, "--force") == 0
    assert "SRV\t10 0 5060 pbx3.hoster.example." in zone.read_text()
    code, shown = _plan(hoster / "pbx2.yaml", capsys, "--detailed-exitcode")
    assert code == 0, shown


def test_a_customer_removed_in_two_steps_or_unrecorded(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An apply of the Asterisk layer alone (--target) removes the dialplan and keeps the
    customer recorded: the next whole plan removes its records, counted as that customer. A
    customer the host serves without a record (applied by an earlier sipctl) loses its
    dialplan, and the plan says its records are left."""
    monkeypatch.chdir(hoster)
    assert _apply(hoster, capsys) == 0
    beta = hoster / "state" / "beta.example.zone"
    (hoster / "beta.example.yaml").unlink()
    assert _apply(hoster / "pbx1.yaml", capsys, "--target", "asterisk", "--force") == 0
    assert "SIP+D2U" in beta.read_text()
    code, shown = _plan(hoster / "pbx1.yaml", capsys)
    assert "(customer beta.example: its file is gone)" in shown, shown
    assert "user director@beta.example" not in shown, shown  # its dialplan went first
    assert "removes 1 of 1 customers (beta.example" in shown, shown
    assert _apply(hoster / "pbx1.yaml", capsys, "--force") == 0
    assert "SIP" not in beta.read_text()

    (record,) = (hoster / "state" / "pbx1" / "var" / "lib" / "sipctl").glob("*.state.json")
    data = json.loads(record.read_text())
    del data["customers"]  # as an earlier sipctl wrote it
    record.write_text(json.dumps(data))
    (hoster / "alpha.example.yaml").unlink()
    code, shown = _plan(hoster / "pbx1.yaml", capsys)
    assert code == 3, shown  # its only customer left: refused without --force
    assert "- user director@alpha.example → 105" in shown, shown
    assert "# dns" not in shown, shown
    assert "customer alpha.example: no file declares it, and the host's record" in shown, shown


@pytest.mark.parametrize(
    ("broken", "at"),
    [
        # a typo in host: names no host file; the file fails on its own
        (lambda text: text.replace("host: pbx1", "host: pbx9"), "beta.example.yaml:5:1: host:"),
        # a YAML syntax error hides its host: line from the host
        (lambda text: text.replace("host: pbx1", "  host: pbx1"), "beta.example.yaml:5:"),
    ],
    ids=["typo-in-host", "yaml-syntax-error"],
)
def test_a_file_that_does_not_load_is_no_departed_customer(
    hoster: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    broken: Callable[[str], str],
    at: str,
) -> None:
    """A customer file that does not load declares nothing the host can see: the host's
    plan refuses to take that customer for gone, names the file, and removes nothing."""
    monkeypatch.chdir(hoster)
    assert _apply(hoster, capsys) == 0
    dialplan = hoster / "state" / "pbx1" / "etc" / "asterisk" / "extensions_sipctl.conf"
    before = dialplan.read_text()
    beta = hoster / "beta.example.yaml"
    beta.write_text(broken(beta.read_text()))

    code, shown = _plan(hoster, capsys)
    assert code == 1, shown
    assert f"=== beta.example ({beta}) ===" in shown, shown
    assert "customer(s) beta.example of pbx1 are declared by no file that loads" in shown, shown
    assert at in shown and "(the file of customer beta.example)" in shown, shown
    assert "delete it to really remove the customer" in shown, shown
    assert "- user director@beta.example" not in shown, shown
    assert _apply(hoster, capsys, "--force") != 0
    assert dialplan.read_text() == before
    assert "SIP+D2U" in (hoster / "state" / "beta.example.zone").read_text()

    # --json: the host's entry is an error that says the same
    assert run(["plan", "-f", str(hoster), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    (host,) = [d for d in data["domains"] if d["spec"].endswith("pbx1.yaml")]
    assert host["status"] == "error" and host.get("plan") is None, host
    assert "beta.example of pbx1 are declared by no file that loads" in host["error"], host
    assert at in host["error"] and "(the file of customer beta.example)" in host["error"], host
    (failed,) = [d for d in data["domains"] if d["spec"].endswith("beta.example.yaml")]
    assert failed["domain"] == "beta.example", failed  # named by its readable domain
    assert run(["plan", "-f", str(beta), "--json"]) == 1
    (alone,) = json.loads(capsys.readouterr().out)["domains"]
    assert alone["domain"] == "beta.example" and alone["status"] == "error", alone

    # the file deleted: the customer is really removed
    beta.unlink()
    _code, shown = _plan(hoster / "pbx1.yaml", capsys)
    assert "- user director@beta.example → 105" in shown, shown
    assert "removes 1 of 2 customers" in shown, shown


def test_a_customer_file_that_is_a_link_to_nothing_is_no_departed_customer(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer's file that became a link to nothing (its target moved) was skipped as
    'not a regular file' by -f DIR and by the host's check: the customer was removed."""
    monkeypatch.chdir(hoster)
    assert _apply(hoster, capsys) == 0
    beta = hoster / "beta.example.yaml"
    beta.rename(hoster.parent / "moved.yaml")
    beta.symlink_to(hoster.parent / "gone.yaml")
    code, shown = _plan(hoster, capsys)
    assert code == 1, shown
    assert f"{beta}: a symbolic link to {hoster.parent / 'gone.yaml'}, which does not" in shown
    assert "customer(s) beta.example of pbx1 are declared by no file that loads" in shown, shown
    assert f"{beta}: cannot read it: No such file or directory" in shown, shown
    assert "- user director@beta.example" not in shown, shown


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "the spec is empty"),
        ("version: 1\ndomain: beta.example\n".encode("utf-16"), "not UTF-8 text (byte 0)"),
        (b"- version: 1\n", "the spec must be a mapping"),
    ],
    ids=["emptied", "saved-as-utf-16", "a-list"],
)
def test_a_customer_file_of_no_keys_is_no_departed_customer(
    hoster: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    content: bytes,
    said: str,
) -> None:
    """A customer's file emptied (or saved as UTF-16 by an editor) has no top-level keys:
    -f DIR skips it, and the host's check skipped it too, so the host's plan removed the
    customer, its dialplan and its DNS records, while the directory's run exited 0."""
    monkeypatch.chdir(hoster)
    assert _apply(hoster, capsys) == 0
    beta = hoster / "beta.example.yaml"
    before = beta.read_text()
    beta.write_bytes(content)
    code, shown = _plan(hoster, capsys)
    assert code == 1, shown
    assert f"{beta}: skipped: no top-level keys" in shown, shown
    assert "customer(s) beta.example of pbx1 are declared by no file that loads" in shown, shown
    assert said in shown, shown
    assert "- user director@beta.example" not in shown, shown
    assert _apply(hoster, capsys, "--force") != 0
    assert "SIP+D2U" in (hoster / "state" / "beta.example.zone").read_text()

    # a stray file of no keys beside the host blocks nothing while no customer departs
    (hoster / "notes.yaml").write_bytes(content)
    beta.write_text(before)
    assert _plan(hoster, capsys)[0] == 0


def test_a_host_file_that_fails_to_load_leaves_its_customers_unapplied(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host file that does not load (a customer file beside it is broken) had no host of
    its own to be grouped by, so apply -f DIR went on with its other customers: a new
    customer's records went out, advertising a PBX that did not serve it. A customer whose
    host's file failed is not applied, and says why."""
    monkeypatch.chdir(hoster)
    assert _apply(hoster, capsys) == 0
    beta = hoster / "beta.example.yaml"
    beta.write_text(beta.read_text().replace("host: pbx1", "  host: pbx1"))  # YAML error
    alpha = hoster / "alpha.example.yaml"
    alpha.write_text(
        alpha.read_text().replace("create_file: true", "create_file: true\n  ttl: 600")
    )
    zone = (hoster / "state" / "alpha.example.zone").read_text()

    code = run(["apply", "-f", str(hoster), "--auto-approve"])
    shown = capsys.readouterr()
    assert code == 1, shown
    said = f"{alpha.name}: not applied: pbx1.hoster.example ({hoster / 'pbx1.yaml'}), its host's"
    assert said in shown.out + shown.err, shown
    assert (hoster / "state" / "alpha.example.zone").read_text() == zone
    # another host's customer goes on
    assert "gamma.example" in shown.out and "not applied: pbx2" not in shown.out + shown.err


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


@settings(max_examples=examples(200), deadline=None)
@given(
    labels=st.lists(_LABEL, min_size=2, max_size=4),
    upper=st.booleans(),
    quote=st.sampled_from(["", "'", '"']),
    comment=st.sampled_from(["", "  # the customer's domain"]),
)
def test_a_domain_line_reads_as_the_loader_reads_it(
    labels: list[str], upper: bool, quote: str, comment: str
) -> None:
    """What names a file that does not load (its domain line, read alone) is the domain the
    real loader reads from the same line when the file loads."""
    domain = ".".join(labels).upper() if upper else ".".join(labels)
    text = f"version: 1\ndomain: {quote}{domain}{quote}{comment}\n"
    try:
        loaded = load_spec_text(text).spec.domain
    except SpecError:
        return  # not a domain the spec takes: nothing to compare
    assert readable_domain(text) == loaded.lower()


_HOST_SPELLINGS = [
    "host: pbx1",
    '"host": pbx1',
    "'host': pbx1",
    "host: !!str pbx1",
    "host: |-\n  pbx1",
    "host: >-\n  pbx1",
    'host: "pb\\x781"',
    'host: "\\u0070bx1"',
    "host:\n  pbx1",
    "host    :    'pbx1'   # the host",
    "? host\n: pbx1",
]


@settings(max_examples=examples(60), deadline=None)
@given(spelling=st.sampled_from(_HOST_SPELLINGS), comment=st.booleans(), first=st.booleans())
def test_a_host_line_in_any_yaml_spelling_is_its_hosts_customer(
    spelling: str, comment: bool, first: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Whenever the real loader reads a customer file's host as pbx1, pbx1's plan serves that
    customer: '"host": pbx1' or 'host: !!str pbx1' was valid on its own, and the host, which
    looked for the line 'host: pbx1', planned the customer's removal."""
    hoster = copy_example(tmp_path_factory.mktemp("spelling") / "hoster")
    beta = hoster / "beta.example.yaml"
    text = beta.read_text().replace("host: pbx1\n", "")
    lines = text.splitlines(keepends=True)
    at = 2 if first else len(lines)
    text = "".join([*lines[:at], spelling + "\n", *lines[at:]])
    beta.write_text(("# beta moved here from pbx2\n" if comment else "") + text)
    assert load_spec_text(beta.read_text()).spec.host == "pbx1"  # the loader's truth
    host = load_spec(hoster / "pbx1.yaml").spec
    assert "beta.example" in {c.domain for c in host.customers}


@pytest.mark.parametrize("style", ["json", "quoted keys"])
def test_a_host_file_in_any_yaml_style_is_its_customers_host(
    style: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host file written as JSON (which is YAML) was no host to its customers: 'no file
    beside alpha.example.yaml has hosting: {name: pbx1}'."""
    import yaml

    hoster = copy_example(tmp_path / "hoster")
    data = yaml.safe_load((hoster / "pbx1.yaml").read_text())
    text = (
        json.dumps(data, indent=1)
        if style == "json"
        else yaml.safe_dump(data, sort_keys=False, default_style='"')
    )
    (hoster / "pbx1.yaml").write_text(text)
    assert load_spec(hoster / "alpha.example.yaml").spec.host == "pbx1"
    assert run(["validate", "-f", str(hoster)]) == 0, capsys.readouterr()
    host = load_spec(hoster / "pbx1.yaml").spec
    assert {c.domain for c in host.customers} == {"alpha.example", "beta.example"}


# --- hosting.local_contexts: the host binds each customer to its phones' context ----------------


def _bind(hoster: Path, bindings: dict[str, str]) -> None:
    set_local_contexts(hoster / "pbx1.yaml", bindings)


BOTH = {"alpha.example": "alpha-phones", "beta.example": "beta-phones"}


def test_a_bound_customer_is_served_in_its_context(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(hoster)
    _bind(hoster, BOTH)
    host = load_spec(hoster / "pbx1.yaml").spec
    assert [c.local_context for c in host.customers] == ["alpha-phones", "beta-phones"]
    code, shown = _plan(hoster / "pbx1.yaml", capsys)
    assert code == 0 and "hosting.local_contexts" not in shown, shown


def test_a_customer_asking_for_another_context_is_refused(
    hoster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """beta's file asks for alpha's phones (or the admin's trunk context): its guests would
    ring them, or call out on the hoster's bill."""
    _bind(hoster, BOTH)
    beta = hoster / "beta.example.yaml"
    beta.write_text(beta.read_text().replace("local_context: beta-phones", "local_context: trunk"))
    expected = (
        rf"{re.escape(str(beta))}:6:\d+: local_context: trunk is not the context the host pbx1 "
        r"binds beta.example to: beta-phones \(hosting.local_contexts, .*pbx1.yaml:\d+:\d+\); "
        "write local_context: beta-phones, or ask the host's admin to change the binding"
    )
    with pytest.raises(SpecError, match=expected):
        load_spec(hoster / "pbx1.yaml")
    with pytest.raises(SpecError, match=expected):  # the customer's own plan refuses it too
        load_spec(beta)
    assert run(["plan", "-f", str(hoster)]) == 1
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    for section in ("beta.example (", "pbx1.hoster.example ("):  # the customer's, the host's
        after = shown.split(f"=== {section}", 1)[1]
        assert after.split("\n")[1].startswith("error: "), after
        assert "local_context: trunk is not the context" in after.split("\n")[1], after


def test_a_customer_the_host_does_not_bind_is_refused(hoster: Path) -> None:
    _bind(hoster, {"alpha.example": "alpha-phones"})
    expected = (
        r"beta.example.yaml:4:\d+: domain: beta.example is not listed in hosting.local_contexts "
        r"of the host pbx1 \(.*pbx1.yaml:\d+:\d+\).*local_context: beta-phones\); the host's "
        "admin adds 'beta.example: <the context of its phones>' there"
    )
    with pytest.raises(SpecError, match=expected):
        load_spec(hoster / "pbx1.yaml")
    with pytest.raises(SpecError, match=expected):
        load_spec(hoster / "beta.example.yaml")
    load_spec(hoster / "alpha.example.yaml")  # the bound one is served


def test_one_customer_bound_twice_is_refused(hoster: Path) -> None:
    _bind(hoster, {**BOTH, "Be-ta.example.": "alpha-phones"})
    with pytest.raises(SpecError) as raised:
        load_spec(hoster / "pbx1.yaml")
    shown = str(raised.value) + " ".join(raised.value.problems)
    assert "Be-ta.example. is to the host's dialplan" in shown, shown
    assert "the same customer as beta.example" in shown, shown


def _spellings(domain: str, dashes: bool = False) -> st.SearchStrategy[str]:
    """``domain`` in any case, with a trailing dot or none; with ``dashes``, '-' anywhere
    inside a label too (Asterisk ignores it: the same customer in the host's dialplan)."""

    def label(text: str) -> st.SearchStrategy[str]:
        parts = [st.sampled_from([c.lower(), c.upper()]) for c in text]
        between = ["", "-", "--"] if dashes else [""]
        marks = [st.sampled_from(between) for _ in text[1:]]
        return st.tuples(st.tuples(*parts), st.tuples(*marks)).map(
            lambda pd: pd[0][0] + "".join(d + c for d, c in zip(pd[1], pd[0][1:], strict=True))
        )

    labels = st.tuples(*(label(part) for part in domain.split(".")))
    return st.tuples(labels, st.sampled_from(["", "."])).map(lambda t: ".".join(t[0]) + t[1])


@settings(max_examples=examples(40), deadline=None)
@given(spelling=_spellings("beta.example"))
def test_any_spelling_of_a_customers_domain_binds_it(tmp_path_factory: Any, spelling: str) -> None:
    hoster = copy_example(tmp_path_factory.mktemp("spelling") / "hoster")
    _bind(hoster, {"alpha.example": "alpha-phones", f"'{spelling}'": "beta-phones"})
    host = load_spec(hoster / "pbx1.yaml").spec
    assert [c.domain for c in host.customers] == ["alpha.example", "beta.example"]
    beta = hoster / "beta.example.yaml"
    beta.write_text(beta.read_text().replace("local_context: beta-phones", "local_context: x"))
    with pytest.raises(SpecError, match="local_context: x is not the context the host pbx1"):
        load_spec(hoster / "pbx1.yaml")


@settings(max_examples=examples(40), deadline=None)
@given(spelling=_spellings("beta.example", dashes=True))
def test_a_binding_of_another_domain_the_dialplan_confuses_binds_nothing(
    tmp_path_factory: Any, spelling: str
) -> None:
    """be-ta.example is bound (its customer gone), beta.example's file arrives, a stranger's:
    one customer to the host's dialplan, but not the domain the admin bound; refused, and
    its guests never reach be-ta's phones."""
    assume("-" in spelling)
    hoster = copy_example(tmp_path_factory.mktemp("confused") / "hoster")
    _bind(hoster, {"alpha.example": "alpha-phones", f"'{spelling}'": "beta-phones"})
    expected = (
        r"domain: beta.example is not listed in hosting.local_contexts of the host pbx1; "
        rf"{re.escape(spelling)} is \(.*pbx1.yaml:\d+:\d+\), which the host's dialplan "
        "cannot tell from it"
    )
    for path in ("pbx1.yaml", "beta.example.yaml"):
        with pytest.raises(SpecError, match=expected):
            load_spec(hoster / path)


def test_customers_choose_their_contexts_while_the_host_binds_none(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Today's behaviour, and one note in the host's plan saying how to bind them."""
    monkeypatch.chdir(hoster)
    set_local_contexts(hoster / "pbx1.yaml", None)
    beta = hoster / "beta.example.yaml"
    beta.write_text(beta.read_text().replace("local_context: beta-phones", "local_context: x"))
    host = load_spec(hoster / "pbx1.yaml").spec
    assert [c.local_context for c in host.customers] == ["alpha-phones", "x"]
    code, shown = _plan(hoster / "pbx1.yaml", capsys)
    assert code == 0, shown
    assert shown.count("hosting.local_contexts is not set") == 1, shown
    assert "customer files of pbx1 choose their own dialplan contexts" in shown, shown
    code, shown = _plan(beta, capsys)
    assert code == 0 and "hosting.local_contexts" not in shown, shown


def test_a_customer_file_grown_past_a_spec_s_size_is_no_departed_customer(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer's file larger than a spec may be is not read whole (the one reader
    refuses it by its size), and the host's plan does not take it for a departure. The
    host's check of the files beside it read each whole: an 8 GB file of no keys too."""
    monkeypatch.chdir(hoster)
    assert _apply(hoster, capsys) == 0
    beta = hoster / "beta.example.yaml"
    beta.write_text(beta.read_text() + "#" * 1_000_000 + "\n")
    code, shown = _plan(hoster / "pbx1.yaml", capsys)
    assert code == 1, shown
    shown = " ".join(shown.split())
    assert "customer(s) beta.example of pbx1 are declared by no file that loads" in shown, shown
    size = f"{beta.stat().st_size:,}"
    assert f"beta.example.yaml is {size} bytes, more than the 1,000,000 bytes" in shown, shown
    assert "- user director@beta.example" not in shown, shown

    # a file of no keys, as large as a disk image: refused by its size, never read
    with beta.open("wb") as handle:
        handle.truncate(8 << 30)
    code, shown = _plan(hoster / "pbx1.yaml", capsys)
    assert code == 1, shown
    shown = " ".join(shown.split())
    assert "customer(s) beta.example of pbx1 are declared by no file that loads" in shown, shown
    assert f"beta.example.yaml is {8 << 30:,} bytes, more than the 1,000,000 bytes" in shown


@pytest.mark.parametrize("saved", [False, True], ids=["planned", "saved-plans"])
def test_a_host_removing_a_departed_customer_takes_turns_with_its_zone_files_other_specs(
    hoster: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, saved: bool
) -> None:
    """pbx1's apply removes beta.example's records and takes its zone file's lock, which is
    not one of pbx1's own: a spec of another domain in that zone file is applied after or
    before it in one worker (``--parallel``), never beside it, where one of the two was
    refused for the other's lock. Found in the plan's one read of the host's record; of a
    saved plan, in a read of it before the run applies anything."""
    import threading
    import time

    from sipctl.reconciler.gitops import guarded

    monkeypatch.chdir(hoster)
    assert _apply(hoster, capsys) == 0
    (hoster / "beta.example.yaml").unlink()
    (hoster / "sip-beta.yaml").write_text(
        "version: 1\ndomain: sip.beta.example\n"
        "servers: [{host: pbx1.hoster.example, priority: 10}]\n"
        "dns: {provider: zonefile, file: state/beta.example.zone, zone: beta.example}\n"
    )
    calls: dict[str, tuple[str, float, float]] = {}
    real = guarded.guarded_apply

    def watched(plan: Any, label: str, *args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return real(plan, label, *args, **kwargs)
        finally:
            calls[label] = (threading.current_thread().name, start, time.monotonic())

    monkeypatch.setattr(guarded, "guarded_apply", watched)
    if saved:
        plans = hoster.parent / "plans"
        plans.mkdir()
        for name in ("pbx1", "sip-beta"):
            out = f"../plans/{name}.plan"
            code, shown = _plan(hoster / f"{name}.yaml", capsys, "--out", out, "--force")
            assert code == 0, shown
        files = [str(plans / "pbx1.plan"), str(plans / "sip-beta.plan")]
        code = run(["apply", *files, "--auto-approve", "--force", "--parallel", "4"])
    else:
        code = run(["apply", "-f", str(hoster), "--auto-approve", "--force", "--parallel", "4"])
    shown = capsys.readouterr()
    assert code == 0, shown
    (host,) = [v for k, v in calls.items() if "pbx1" in k]
    (other,) = [v for k, v in calls.items() if "sip-beta" in k]
    assert host[0] == other[0], "one worker"
    assert host[2] <= other[1] or other[2] <= host[1], "one after the other"
    zone = (hoster / "state" / "beta.example.zone").read_text()
    assert "_sip._udp.sip.beta.example" in zone and "_sip._udp.beta.example" not in zone, zone


def test_validate_of_a_directory_says_a_customers_error_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host is refused for its customer's error, which named the customer's file: the
    line was printed twice, once per file, and the host's refusal said nothing of the host.
    Each error is printed once, and the host is named as not valid for it."""
    directory = copy_example(tmp_path / "hoster")
    beta = directory / "beta.example.yaml"
    beta.write_text(beta.read_text().replace("local_context: beta-phones", "local_context: x-y"))
    assert run(["validate", "-f", str(directory)]) == 1
    err = capsys.readouterr().err.splitlines()
    errors = [line for line in err if line.startswith("Error: ")]
    assert len(errors) == len(set(errors)), err
    assert any("beta.example.yaml:" in line and "x-y" in line for line in errors)
    assert any("pbx1.yaml: not valid either" in line for line in errors)
