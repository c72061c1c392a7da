"""Pure parts of the GitOps features: lock records, durations, the import parsers."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.errors import SpecError
from sipctl.reconciler.gitops.domain_report import exit_code, summary_table
from sipctl.reconciler.gitops.importer import dns_section, parse_asterisk, spec_yaml
from sipctl.reconciler.gitops.locking import Holder, new_holder, parse_duration
from sipctl.reconciler.gitops.multi import Domain, Progress
from sipctl.schemas.loader import load_spec_text


def test_a_lock_record_round_trips_and_fits_one_txt_string() -> None:
    holder = new_holder("0123456789ab", timedelta(minutes=15), {"SIPCTL_LOCK_WHO": "x" * 500})
    text = holder.to_text()
    assert len(text.encode()) < 255
    assert Holder.from_text(text) == holder
    assert Holder.from_text("v=spf1 -all") is None
    assert Holder.from_text("sipctl-lock=1 id=1 since=yesterday") is None
    odd = new_holder("-", timedelta(seconds=5), {"SIPCTL_LOCK_WHO": "ci job #7; rm -rf"})
    assert " " not in odd.who and ";" not in odd.who


def test_expiry() -> None:
    now = datetime.now(UTC)
    holder = Holder("a" * 16, "a@b", now - timedelta(minutes=2), now - timedelta(minutes=1))
    assert holder.expired()
    assert not holder.expired(now - timedelta(minutes=5))


@pytest.mark.parametrize(
    ("text", "seconds"), [("60s", 60), ("5m", 300), ("1h", 3600), ("500ms", 0.5), ("7", 7)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--lock-timeout") == seconds


def test_a_bad_duration_is_named() -> None:
    with pytest.raises(SpecError, match="--lock-timeout 'soon'"):
        parse_duration("soon", "--lock-timeout")


@settings(max_examples=examples(80), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    number=st.one_of(st.integers(0, 10**30), st.floats(0, 1e30, allow_nan=False)),
    unit=st.sampled_from(["", "ms", "s", "m", "h"]),
    option=st.sampled_from(["--lock-ttl", "--lock-timeout"]),
)
def test_any_duration_is_a_plan_or_a_human_error(
    number: float,
    unit: str,
    option: str,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--lock-ttl 999999999999h ended in an OverflowError (a lock's expiry is a date): every
    duration is taken or refused in words, before anything is read."""
    work = tmp_path_factory.mktemp("duration")
    (work / "sipctl.yaml").write_text("version: 1\ndomain: mysite.ru\nusers: {director: 105}\n")
    text = f"{number}{unit}"
    code = run(["apply", "-f", str(work / "sipctl.yaml"), "--auto-approve", option, text])
    err = capsys.readouterr().err
    assert "unexpected error" not in err and "Traceback" not in err, err
    if code == 1:
        assert f"{option} '{text}'" in err, err


def test_dns_urls() -> None:
    assert dns_section("rfc2136://10.0.0.1:5353/mysite.ru?key=k&secret_env=V", "mysite.ru") == {
        "provider": "rfc2136",
        "server": "10.0.0.1:5353",
        "tsig": {"name": "k", "secret_env": "V"},
    }
    parent = dns_section("rfc2136://ns1/example.ru?key=k&secret_file=k.key", "sip.example.ru")
    assert parent["zone"] == "example.ru" and parent["tsig"]["secret_file"] == "k.key"
    assert dns_section("zonefile:zones/x.zone", "x") == {
        "provider": "zonefile",
        "file": "zones/x.zone",
    }
    with pytest.raises(SpecError, match="unknown parameter 'secret'"):
        dns_section("rfc2136://ns1/x?key=k&secret=abc", "x")


PJSIP = """\
[transport-udp]
type=transport
protocol=udp

[anonymous]
type=endpoint
context=from-outside
allow=alaw
"""

EXTENSIONS = """\
[from-outside]
exten => director,1,NoOp(guest)
 same => n,Goto(internal,105,1)
exten => alex,1,Goto(internal,106,1)
exten => _X.,1,Playback(ss-noservice)
exten => h,1,Hangup()
"""


def test_a_pjsip_guest_setup_with_goto_is_imported() -> None:
    files = {"pjsip.conf": PJSIP, "extensions.conf": EXTENSIONS}
    found = parse_asterisk(files, "ssh://root@pbx", "/etc/asterisk")
    assert found.data["users"] == {"director": "105", "alex": "106"}
    section = found.data["asterisk"]
    assert section["channel"] == "pjsip"
    assert section["route"] == "goto" and section["local_context"] == "internal"
    assert section["reject_sound"] == "ss-noservice"
    text = spec_yaml(
        {"version": 1, "domain": "mysite.ru", **found.data}, ["imported", "", "by a test"]
    )
    assert text.startswith("# imported\n#\n# by a test\n")
    load_spec_text(text)  # what import writes is a valid spec


def test_no_guest_access_is_said_plainly() -> None:
    with pytest.raises(SpecError, match="no guest access found"):
        parse_asterisk({"extensions.conf": EXTENSIONS}, "local", "/etc/asterisk")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_line_on_a_terminal_and_silent_elsewhere() -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress("applying", 3, stream)
        for n in range(3):
            domain = Domain(Path(f"d{n}.yaml"), status="applied")
            progress.step(domain)
        progress.finish()
    assert "applying: 3/3 done" in terminal.getvalue()
    assert "\n" not in terminal.getvalue()
    assert pipe.getvalue() == ""


def test_the_summary_table_names_failures() -> None:
    ok = Domain(Path("a.yaml"), status="no changes")
    bad = Domain(Path("b.yaml"))
    bad.fail(SpecError("b.yaml:3:1: users.x: bad", ["b.yaml:3:1: users.x: bad"]))
    table = summary_table([ok, bad])
    assert "b.yaml: error: b.yaml:3:1: users.x: bad" in table
    assert table.endswith("2 domain(s): 1 ok, 1 failed.\n")
    assert exit_code([ok, bad]) == 1


def test_one_host_lock_for_every_layer_on_that_host(tmp_path: Path) -> None:
    """Asterisk, fail2ban and the firewall on one host: one lock, taken and released once."""
    from sipctl.providers.base import RunContext
    from sipctl.reconciler.gitops.locking import lock_sites
    from sipctl.schemas.loader import load_spec_text

    text = (
        "version: 1\ndomain: example.org\nusers: {alice: 201}\n"
        "asterisk: {target: 'dir:pbx'}\nfirewall: {}\nfail2ban: {}\n"
    )
    loaded = load_spec_text(text, source="sipctl.yaml", base_dir=tmp_path)
    sites = lock_sites(loaded, RunContext(base_dir=tmp_path))
    assert len(sites) == 1, [site.key for site in sites]


def test_domains_of_one_host_are_timed_each_and_stop_at_the_first_failure() -> None:
    """One host's domains run one after the other: each gets its own time, and after one
    fails the later ones are "not applied" (never left "planned"); another host goes on."""
    import time

    from sipctl.errors import RefusedError
    from sipctl.reconciler.gitops.claims import Claims
    from sipctl.reconciler.gitops.multi import _run_each_by_host

    def domain(name: str, host: str) -> Domain:
        d = Domain(Path(f"{name}.yaml"), claims=Claims(f"{name}.example", (), (), host))
        d.status = "planned"
        return d

    a, b, c, d = (domain(n, "dir:/h1") for n in "abcd")
    other = domain("x", "dir:/h2")
    # a domain of a third host failed to plan: the others of that host are not tried
    broken, after = domain("e", "dir:/h3"), domain("f", "dir:/h3")
    broken.status = "error"
    tried: list[str] = []

    def work(one: Domain) -> None:
        tried.append(one.name)
        time.sleep(0.2)
        if one is b:
            raise RefusedError("b.example: stale")
        one.status = "applied"

    _run_each_by_host([a, b, c, d, other, after, broken], 2, "applying", work)
    assert (after.status, broken.status) == ("not applied", "error")
    assert sorted(tried) == ["a.example", "b.example", "x.example"]
    assert [x.status for x in (a, b, c, d, other)] == [
        "applied",
        "refused",
        "not applied",
        "not applied",
        "applied",
    ]
    assert c.message == "b.example (b.yaml) failed first on the same host"
    assert 0.2 <= a.seconds < 0.35 and 0.2 <= b.seconds < 0.35 and c.seconds == 0
    assert exit_code([a, b, c, d, other]) == 3, "refused first: the host's run is refused"
    assert "c.yaml: not applied: b.example (b.yaml) failed first" in summary_table([a, b, c, d])


@settings(
    max_examples=examples(50),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    secret=st.from_regex(r"[A-Za-z0-9+/=_~.-]{6,40}", fullmatch=True),
    user=st.sampled_from(["", "sipctl", "key"]),
)
def test_import_never_prints_a_password_given_in_the_dns_url(
    secret: str, user: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--dns rfc2136://user:SECRET@host/zone`` (a password where a TSIG secret might be
    pasted): the header masked it, but the dns.server error printed 'user:SECRET@host'.
    Such a URL is refused before anything is read, naming no part of it."""
    url = f"rfc2136://{user}:{secret}@127.0.0.1:1/mysite.example"
    assert run(["import", "--domain", "mysite.example", "--dns", url]) == 1
    said = capsys.readouterr()
    assert secret not in said.out + said.err
    assert "carries no user or password" in said.err
