"""Live data is data: any byte a zone can hold in a NAPTR gives a correct reading or a clear
message, never a traceback; ``import`` writes valid YAML that means what was read.

The attack: one apex ``NAPTR 70 10 "s" "SIP+D2U\\255\\254" ""`` made plan, import and drift
die with a UnicodeEncodeError, and a newline in a NAPTR service stepped out of the comment
``import`` writes into the YAML itself. Here the zone is read by the zonefile provider
(dnspython, the same parser BIND's presentation format is read with), through the CLI.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import dns.exception
import pytest
import yaml
from fixtures.bind import BindServer, bind_env, dns_spec
from fixtures.properties import examples
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.providers.base import RunContext
from sipctl.providers.dns.rfc2136 import Rfc2136Provider
from sipctl.reconciler.diff import diff
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render.dns import render_dns
from sipctl.reconciler.resources import LiveState
from sipctl.schemas.loader import load_spec, load_spec_text

ZONE = """\
$ORIGIN example.org.
@ 3600 IN SOA ns.example.org. hostmaster.example.org. 1 7200 900 1209600 300
@ 3600 IN NS ns.example.org.
ns 3600 IN A 192.0.2.1
_sip._udp 3600 IN SRV 10 0 5060 pbx.example.org.
pbx 3600 IN A 192.0.2.5
@ 3600 IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.example.org.
"""


def presentation(data: bytes) -> str:
    """A character-string in zone-file text: every byte as \\DDD (RFC 1035 5.1)."""
    return '"' + "".join(f"\\{b:03d}" for b in data) + '"'


FIELD = st.binary(max_size=24)
SERVICE = st.one_of(FIELD, FIELD.map(lambda b: b"SIP+D2U" + b), FIELD.map(lambda b: b"SIPS+" + b))


def _in(directory: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``sipctl ARGS`` in ``directory``: its exit code and what it printed; a traceback (an
    unexpected error) fails the test whatever the code."""
    before = Path.cwd()
    os.chdir(directory)
    try:
        code = run(list(args))
    finally:
        os.chdir(before)
    captured = capsys.readouterr()
    assert "unexpected error" not in captured.err and "Traceback" not in captured.err
    return code, captured.out + captured.err


def _import(work: Path, capsys: pytest.CaptureFixture[str]) -> int:
    zone = "zonefile:example.org.zone"
    return _in(
        work, capsys, "import", "--domain", "example.org", "--dns", zone, "--out", "sipctl.yaml"
    )[0]


@given(
    flags=FIELD,
    service=SERVICE,
    regexp=FIELD,
    label=st.binary(min_size=1, max_size=12).filter(lambda b: b not in (b"@", b"*")),
)
@settings(max_examples=examples(25), deadline=None, suppress_health_check=list(HealthCheck))
def test_any_bytes_in_a_naptr_are_read_planned_and_imported(
    capsys: pytest.CaptureFixture[str], flags: bytes, service: bytes, regexp: bytes, label: bytes
) -> None:
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        odd = f"@ 3600 IN NAPTR 70 10 {presentation(flags)} {presentation(service)} "
        odd += f"{presentation(regexp)} _sip._udp.example.org.\n"
        # and an SRV whose target's label holds any byte (a DNS name may), with its address:
        # an in-zone target without one is a live setup no spec can hold (import refuses it)
        name = "".join(f"\\{b:03d}" for b in label)
        odd += f"_sip._tcp 3600 IN SRV 20 0 5060 {name}.example.org.\n"
        odd += f"{name} 3600 IN A 192.0.2.6\n"
        (work / "example.org.zone").write_text(ZONE + odd, encoding="ascii")
        assert _import(work, capsys) == 0
        text = (work / "sipctl.yaml").read_text(encoding="utf-8")
        # nothing read from the zone is a line break or another control character here
        assert all(c == "\n" or c.isprintable() for c in text), text
        # the comments mean nothing: the YAML without them is the same document
        body = "".join(line for line in text.splitlines(True) if not line.startswith("#"))
        assert yaml.safe_load(text) == yaml.safe_load(body)
        load_spec(work / "sipctl.yaml")  # valid
        # 0; 3 when deleting the odd SIP NAPTR is more than the safety limit allows; 1 with
        # a message
        code, _ = _in(work, capsys, "plan", "-f", "sipctl.yaml", "--json")
        assert code in (0, 1, 3)


def test_the_reported_naptr_is_planned_imported_and_drift_with_its_bytes_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zone = tmp_path / "example.org.zone"
    zone.write_text(ZONE, encoding="ascii")
    assert _import(tmp_path, capsys) == 0
    code, _ = _in(tmp_path, capsys, "apply", "-f", "sipctl.yaml", "--auto-approve", "--no-verify")
    assert code == 0
    odd = '@ 3600 IN NAPTR 70 10 "s" "SIP+D2U\\255\\254" "" _sip._udp.example.org.\n'
    zone.write_text(zone.read_text(encoding="ascii") + odd, encoding="ascii")
    shown = '70 10 "s" "SIP+D2U\\255\\254" "" _sip._udp.example.org'
    code, out = _in(tmp_path, capsys, "plan", "-f", "sipctl.yaml", "--markdown")
    assert code == 0 and shown in out, out
    code, out = _in(tmp_path, capsys, "drift", "-f", "sipctl.yaml")
    assert code in (0, 2) and "NAPTR" in out, out
    (tmp_path / "sipctl.yaml").unlink()
    assert _import(tmp_path, capsys) == 0
    text = (tmp_path / "sipctl.yaml").read_text(encoding="utf-8")
    assert "NAPTR service SIP+D2U\\255\\254 has no sipctl transport" in text


@pytest.mark.bind
def test_any_bytes_in_a_naptr_served_by_bind_are_read_and_replaced(
    bind: BindServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The same through a real BIND and the rfc2136 provider's own wire reading: the odd
    record is read (a SIP one is owned and replaced, any other left), a second plan is
    empty, and nothing raises."""
    zone = bind.new_zone()
    work = tmp_path_factory.mktemp("bind-odd")
    text = dns_spec(bind, zone, transports="{udp: {port: 5060}}")

    def plan(ctx: RunContext) -> tuple[Rfc2136Provider, LiveState, list[Change]]:
        loaded = load_spec_text(text, source=str(work / "sipctl.yaml"), base_dir=work)
        provider = Rfc2136Provider(loaded, ctx)
        desired = render_dns(loaded.spec)
        live = provider.read(desired)
        return provider, live, diff(desired, live)

    @given(flags=FIELD, service=SERVICE, regexp=FIELD)
    @settings(max_examples=examples(20), deadline=None, suppress_health_check=list(HealthCheck))
    def check(flags: bytes, service: bytes, regexp: bytes) -> None:
        odd = f"70 10 {presentation(flags)} {presentation(service)} {presentation(regexp)} ."
        try:
            bind.update(
                zone, delete=[(f"{zone}.", "NAPTR")], add=[(f"{zone}.", 3600, "NAPTR", odd)]
            )
        except dns.exception.FormError:
            assume(False)  # BIND itself refuses such a record (its flags are checked)
        ctx = RunContext(base_dir=work, env=bind_env(bind))
        try:
            provider, live, changes = plan(ctx)
            provider.apply(changes, live)
            assert plan(ctx)[2] == [], "a second plan after apply is empty"
        finally:
            ctx.close()
        ours = f'10 10 "s" "SIP+D2U" "" _sip._udp.{zone}.'
        kept = [r for r in bind.query(zone, "NAPTR") if r != ours]
        sip = service.upper().startswith((b"SIP+", b"SIPS+")) or service.upper() in (
            b"SIP",
            b"SIPS",
        )
        assert len(kept) == (0 if sip else 1), kept
        served.append(odd)

    served: list[str] = []
    try:
        check()
        assert len(served) >= 5, served  # most odd records are BIND's to serve
    finally:
        bind.delete_zone(zone)


REPO = Path(__file__).resolve().parent.parent
ADMIN_FILES = ("pjsip.conf", "extensions.conf", "http.conf", "rtp.conf", "confbridge.conf")


@pytest.fixture(scope="module")
def applied_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("example")
    (work / "sipctl.yaml").write_text((REPO / "examples" / "mysite.yaml").read_text())
    before = Path.cwd()
    os.chdir(work)
    try:
        assert run(["apply", "--auto-approve", "--no-verify", "-f", "sipctl.yaml"]) == 0
    finally:
        os.chdir(before)
    return work


@given(
    name=st.sampled_from(ADMIN_FILES),
    junk=st.binary(max_size=64),
    at=st.sampled_from(["start", "end", "replace"]),
)
@settings(max_examples=examples(40), deadline=None, suppress_health_check=list(HealthCheck))
def test_any_bytes_in_the_admins_asterisk_files_give_a_plan_or_a_message(
    applied_example: Path, capsys: pytest.CaptureFixture[str], name: str, junk: bytes, at: str
) -> None:
    conf = applied_example / "state" / "pbx" / "etc" / "asterisk" / name
    kept = conf.read_bytes()
    conf.write_bytes(junk + kept if at == "start" else kept + junk if at == "end" else junk)
    try:
        code, _ = _in(applied_example, capsys, "plan", "-f", "sipctl.yaml", "--markdown")
        assert code in (0, 1, 3)  # a plan, a refusal, or a message: never a traceback
    finally:
        conf.write_bytes(kept)
