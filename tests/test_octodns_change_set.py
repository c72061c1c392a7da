"""One apply = the lock taken + ONE change set (the zone's changes, the record of the last apply
and the lock's release), and a write that fails part-way is retried from a fresh read, never
replayed. Against a real PowerDNS and moto's Route53, through a counting proxy
(tests/fixtures/api_proxy.py) that can also fail a chosen request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.api_proxy import Answer, ApiProxy, Seen
from fixtures.moto_route53 import MotoRoute53
from fixtures.powerdns import PowerDnsServer
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from octodns_specs import PDNS_KEY_ENV as KEY_ENV
from octodns_specs import allow_test_plugins, pdns_spec, route53_spec

from sipctl.cli import run
from sipctl.providers.dns import octodns_plugin

PDNS_503 = Answer(503, b'{"error": "Service Unavailable"}')
ROUTE53_500 = Answer(
    500,
    b'<?xml version="1.0"?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
    b"<Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>We encountered an "
    b"internal error</Message></Error><RequestId>lost-answer</RequestId></ErrorResponse>",
    after_forwarding=True,
)


def sipctl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def pdns_writes(proxy: ApiProxy) -> list[list[tuple[str, str, str]]]:
    """Each PATCH that PowerDNS accepted: its (changetype, name, type)s."""
    return [
        [(r["changetype"], r["name"], r["type"]) for r in json.loads(s.body)["rrsets"]]
        for s in proxy.requests("PATCH")
        if s.answered < 300
    ]


def route53_batches(proxy: ApiProxy) -> list[Seen]:
    return [s for s in proxy.requests("POST") if s.path.rstrip("/").endswith("/rrset")]


@pytest.fixture
def pdns_proxy(powerdns: PowerDnsServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiProxy]:
    monkeypatch.setenv(KEY_ENV, powerdns.api_key)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(octodns_plugin, "BACKOFF", 0.05)
    proxy = ApiProxy(powerdns.api_port)
    yield proxy
    proxy.close()


@pytest.fixture
def route53_proxy(route53_env: MotoRoute53, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiProxy]:
    proxy = ApiProxy(route53_env.port)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.setattr(octodns_plugin, "BACKOFF", 0.05)
    yield proxy
    proxy.close()


def test_powerdns_apply_is_lock_plus_one_change_set(
    powerdns: PowerDnsServer,
    pdns_proxy: ApiProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    z = powerdns.new_zone()
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(pdns_spec(z, pdns_proxy.port))
    code, out = sipctl(capsys, "apply", "-f", str(spec), "--auto-approve")
    assert code == 0, out
    lock, state = f"_sipctl-lock.{z}.", f"_sipctl-state.{z}."
    take, change_set = pdns_writes(pdns_proxy)  # two writes, no more
    assert take == [("REPLACE", lock, "TXT")]
    assert ("DELETE", lock, "TXT") in change_set  # the release rides in the change set
    assert ("REPLACE", state, "TXT") in change_set  # and so does the record of the apply
    assert ("REPLACE", f"_sip._udp.{z}.", "SRV") in change_set
    assert ("REPLACE", f"_sipctl-claim.sip.{z}.", "TXT") in change_set  # the domain's claim
    assert len(change_set) == 8 and ("REPLACE", f"{z}.", "NAPTR") in change_set, change_set[6:]
    rrsets = powerdns.rrsets(z)
    assert (lock, "TXT") not in rrsets and (state, "TXT") in rrsets
    pdns_proxy.reset()
    code, out = sipctl(capsys, "drift", "-f", str(spec))
    assert code == 0, out  # the record rode in and says what is live
    assert pdns_writes(pdns_proxy) == []


def test_route53_apply_is_lock_plus_one_change_batch(
    route53_env: MotoRoute53,
    route53_proxy: ApiProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    z = route53_env.new_zone()
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(route53_spec(z))
    code, out = sipctl(capsys, "apply", "-f", str(spec), "--auto-approve")
    assert code == 0, out
    take, batch = route53_batches(route53_proxy)
    assert take.body.count(b"<Action>") == 1 and b"_sipctl-lock" in take.body
    assert b"<Action>CREATE</Action>" in take.body
    changes = batch.body.decode().split("<Change>")[1:]
    lock = [c for c in changes if "_sipctl-lock" in c]
    state = [c for c in changes if "_sipctl-state" in c]
    assert len(lock) == 1 and "<Action>DELETE</Action>" in lock[0]
    assert len(state) == 1 and "<Action>CREATE</Action>" in state[0]
    assert any("_sip._udp" in c for c in changes)
    rrsets = route53_env.rrsets(z)
    assert (f"_sipctl-lock.{z}.", "TXT") not in rrsets
    assert (f"_sipctl-state.{z}.", "TXT") in rrsets
    # reads asked for names, never for the whole zone (apply included)
    listings = [s for s in route53_proxy.requests("GET") if "/rrset" in s.path]
    assert listings and all("name=" in s.path for s in listings), listings


def test_a_change_set_failing_half_way_is_retried_from_a_fresh_read(
    powerdns: PowerDnsServer,
    pdns_proxy: ApiProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A per-record plugin (one request per rrset): one write fails once (503), at every
    position in turn, from the lock's take to its release. The retry reads again and sends
    only what had not landed: every rrset is written exactly once, and the run converges."""
    plugin = "octodns_test_plugins.PowerDnsPerRecord"
    monkeypatch.setenv("SIPCTL_PROFILE", str(allow_test_plugins(tmp_path, pdns_proxy.port)))
    writes_per_run = 9  # the lock, 6 records (a claim among them), the record, the release
    for position in range(writes_per_run):
        z = powerdns.new_zone()
        spec = tmp_path / f"sipctl-{position}.yaml"
        spec.write_text(pdns_spec(z, pdns_proxy.port, plugin=plugin))
        pdns_proxy.reset()
        pdns_proxy.fail = lambda method, _path, n, at=position: (
            PDNS_503 if method == "PATCH" and n == at else None
        )
        code, out = sipctl(capsys, "apply", "-f", str(spec), "--auto-approve")
        assert code == 0, (position, out)
        failed = pdns_proxy.requests("PATCH")[position]
        assert failed.answered == 503
        lost = json.loads(failed.body)["rrsets"][0]
        writes = [w for patch in pdns_writes(pdns_proxy) for w in patch]
        assert len(writes) == len(set(writes)) == writes_per_run, (position, writes)
        assert (lost["changetype"], lost["name"], lost["type"]) in writes  # sent again
        assert (f"_sipctl-lock.{z}.", "TXT") not in powerdns.rrsets(z)
        assert sipctl(capsys, "plan", "-f", str(spec), "--detailed-exitcode")[0] == 0


def test_a_run_that_fails_half_way_converges_on_rerun(
    powerdns: PowerDnsServer,
    pdns_proxy: ApiProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The change set keeps failing after its first write: the run stops with one line (the
    lock is still released), and the next run writes exactly what is missing."""
    monkeypatch.setenv("SIPCTL_PROFILE", str(allow_test_plugins(tmp_path, pdns_proxy.port)))
    z = powerdns.new_zone()
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(pdns_spec(z, pdns_proxy.port, plugin="octodns_test_plugins.PowerDnsPerRecord"))
    failures = []

    def fail(method: str, _path: str, n: int) -> Answer | None:
        if method == "PATCH" and n >= 2 and len(failures) <= octodns_plugin.RETRIES:
            failures.append(n)
            return PDNS_503
        return None

    pdns_proxy.fail = fail
    code, out = sipctl(capsys, "apply", "-f", str(spec), "--auto-approve")
    assert code == 1, out
    assert "kept failing on its side" in out and "Traceback" not in out
    assert "part of this change set may have landed: run apply again" in out
    assert powerdns.api_key not in out
    landed = [w for patch in pdns_writes(pdns_proxy) for w in patch]
    assert (f"_sipctl-lock.{z}.", "TXT") not in powerdns.rrsets(z)  # released all the same
    half = powerdns.rrsets(z)
    pdns_proxy.reset()
    code, out = sipctl(capsys, "apply", "-f", str(spec), "--auto-approve")
    assert code == 0, out
    again = [w for patch in pdns_writes(pdns_proxy) for w in patch]
    # the record that landed in the failed run is not written again
    first_record = landed[1]
    assert first_record not in again and len(again) == len(set(again)), again
    assert sipctl(capsys, "plan", "-f", str(spec), "--detailed-exitcode")[0] == 0
    after = powerdns.rrsets(z)
    assert after[(f"_sip._udp.{z}.", "SRV")][1] == [f"10 0 5060 sip.{z}."]
    assert after[(first_record[1], first_record[2])] == half[(first_record[1], first_record[2])]


def test_a_route53_batch_whose_answer_is_lost_is_not_sent_again(
    route53_env: MotoRoute53,
    route53_proxy: ApiProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The change batch lands, but its answer is lost (500). Sent again, it would be refused
    (its CREATEs exist now: moto refuses that repeat, as Route53 does); the retry reads
    instead, finds it landed, and sends nothing more."""
    z = route53_env.new_zone()
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(route53_spec(z))

    def lose(method: str, path: str, n: int) -> Answer | None:
        batch = method == "POST" and path.rstrip("/").endswith("/rrset")
        return ROUTE53_500 if batch and n == 1 else None

    route53_proxy.fail = lose
    code, out = sipctl(capsys, "apply", "-f", str(spec), "--auto-approve")
    assert code == 0, out
    assert [s.answered for s in route53_batches(route53_proxy)] == [200, 500]
    rrsets = route53_env.rrsets(z)
    assert (f"_sipctl-lock.{z}.", "TXT") not in rrsets
    assert rrsets[(f"_sip._udp.{z}.", "SRV")] == (300, [f"10 0 5060 sip.{z}."])
    assert sipctl(capsys, "plan", "-f", str(spec), "--detailed-exitcode")[0] == 0


@settings(max_examples=examples(200), deadline=None)
@given(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=900),
    st.integers(min_value=1, max_value=255),
    st.integers(min_value=1, max_value=255),
)
def test_a_txt_reads_the_same_however_its_strings_are_cut(text: str, one: int, other: int) -> None:
    """What sipctl wrote (cut at 250) and what a plugin reads back (cut at its own length)
    compare equal, so a retry or a read-back never takes a landed record for a missing one."""
    from sipctl.providers.dns.octodns import _canonical
    from sipctl.providers.dns.owned import LiveRrset
    from sipctl.reconciler.dns_records import canonical_text, txt_text

    def cut(size: int) -> LiveRrset:
        exact = txt_text(*[text[i : i + size] for i in range(0, len(text), size)] or [""])
        return LiveRrset(60, ((canonical_text("TXT", exact), exact),))

    assert _canonical("TXT", cut(one)) == _canonical("TXT", cut(other))
    assert _canonical("TXT", cut(one)) != _canonical("TXT", LiveRrset(61, cut(one).records))
