"""``sipctl audit`` against a real Asterisk 22 (PJSIP) found through a real BIND.

The PBX gets sipctl's guest setup by a real apply; every declared extension has a phone (a
socket that records INVITEs and answers busy). A clean audit must find nothing and ring no
phone. Then holes are made behind sipctl's back, one at a time, the way admins and
attackers make them (runtime ``dialplan add``, an ``include``, a changed ``Dial``, the
admin's ``[guest-call](+)``, a management port): each must be found and named, and once it
is closed the audit must be clean again.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from asterisk_helpers import Phone, apply_spec, spec_data, write_spec
from fixtures.asterisk import LOCAL_EXTENSIONS, AsteriskInstance, running_asterisk
from fixtures.bind import SECRET_ENV, BindServer
from fixtures.common import free_port, own_loopback_address

from sipctl.cli import run
from sipctl.reconciler.audit.report import AuditReport
from sipctl.reconciler.audit.run import AuditLimits, run_audit
from sipctl.reconciler.audit.schema import audit_report_schema
from sipctl.schemas.loader import load_spec

pytestmark = [pytest.mark.asterisk, pytest.mark.bind]
USERS = {"director": "105", "alex": "106", "101": "101"}
LIMITS = AuditLimits(rate=50.0, parallel=4)
# The audit knocks on every management port of the PBX's address (AMI 5038, SSH 22, ...):
# on 127.0.0.1, any other test run's or program's listener there would be a finding here.
PBX = own_loopback_address()


@pytest.fixture(scope="module")
def asterisk() -> Iterator[AsteriskInstance]:
    """This module's PBX, its SIP transports on :data:`PBX` (phones stay on 127.0.0.1)."""
    with running_asterisk(bind_address=PBX) as instance:
        yield instance


@pytest.fixture(scope="module")
def phones(asterisk: AsteriskInstance) -> Iterator[dict[str, Phone]]:
    """A phone for every declared extension: 105's is the fixture's, 101 and 106 get one."""
    made = {"105": Phone(asterisk.phone_port)}
    pjsip = (asterisk.config_dir / "pjsip.conf").read_text()
    for ext in ("101", "106"):
        phone = Phone(free_port())
        made[ext] = phone
        pjsip = pjsip.replace(
            f"[{ext}]\ntype=aor\nmax_contacts=1\n",
            f"[{ext}]\ntype=aor\nmax_contacts=1\n"
            f"contact=sip:{ext}@127.0.0.1:{phone.sock.getsockname()[1]}\n",
        )
    asterisk.write_admin_file("pjsip.conf", identified_by_address(pjsip))
    asterisk.rx("module reload res_pjsip.so")
    yield made
    for phone in made.values():
        phone.close()


# ip alone would not do for a phone that registers: Asterisk 22.10's registrar finds the AOR
# of a REGISTER only through username/auth_username (docs/enumeration.md).
BY_ADDRESS = "identify_by=ip,auth_username\n"


def identified_by_address(pjsip: str) -> str:
    """The fix the audit names for enumeration by From (measured with sipvicious): each
    phone's endpoint identified by its address (the phones here never call in: 127.0.0.2)."""
    for ext in LOCAL_EXTENSIONS:
        pjsip = pjsip.replace(f"[{ext}]\ntype=endpoint\n", f"[{ext}]\ntype=endpoint\n{BY_ADDRESS}")
        pjsip += f"\n[{ext}-address]\ntype=identify\nendpoint={ext}\nmatch=127.0.0.2\n"
    return pjsip


@pytest.fixture(scope="module")
def zone(bind: BindServer, asterisk: AsteriskInstance) -> Iterator[str]:
    port = asterisk.sip_port
    name = bind.new_zone(
        extra=(
            '@ IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp\n'
            '@ IN NAPTR 20 10 "s" "SIP+D2T" "" _sip._tcp\n'
            f"_sip._udp IN SRV 10 0 {port} pbx\n_sip._tcp IN SRV 10 0 {port} pbx\n"
            f"pbx IN A {PBX}\n"
        )
    )
    yield name
    bind.delete_zone(name)


def _spec(directory: Path, bind: BindServer, zone: str, pbx: AsteriskInstance,
          **asterisk: Any) -> Path:  # fmt: skip
    data = spec_data(pbx, users=USERS, **asterisk)
    data["domain"] = zone
    data["servers"] = [{"host": f"pbx.{zone}", "ipv4": [PBX]}]
    data["dns"] = {
        "provider": "rfc2136",
        "server": bind.server,
        "tsig": {"name": bind.key_name, "secret_env": SECRET_ENV},
    }
    data["fail2ban"] = {"logpath": str(pbx.log_path)}  # read through the (local) target
    return write_spec(directory, data, f"audit-{asterisk.get('unknown_callers', 'reject')}.yaml")


@pytest.fixture(scope="module")
def applied(
    asterisk: AsteriskInstance,
    phones: dict[str, Phone],
    bind: BindServer,
    zone: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    spec = _spec(tmp_path_factory.mktemp("audit"), bind, zone, asterisk)
    apply_spec(spec)
    return spec


def _audit(spec: Path, bind: BindServer) -> AuditReport:
    return run_audit(load_spec(spec), bind.server, limits=LIMITS)


def test_a_clean_domain_is_clean_and_no_phone_rings(
    applied: Path, bind: BindServer, phones: dict[str, Phone], capsys: pytest.CaptureFixture[str]
) -> None:
    before = {ext: len(p.invites) for ext, p in phones.items()}
    code = run(["audit", "-f", str(applied), "--nameserver", bind.server, "--json"])
    [domain] = json.loads(capsys.readouterr().out)["domains"]
    data = domain["audit"]
    assert code == 0, json.dumps(data, indent=2)
    assert domain["status"] == "clean"
    jsonschema.validate(data, audit_report_schema())
    assert data["findings"] == [] and data["errors"] == []
    assert {ext: len(p.invites) for ext, p in phones.items()} == before
    kinds = {p["kind"]: p for p in data["probes"]}
    assert kinds["invite"]["requests"] >= 60 and kinds["options"]["requests"] == 6
    assert 0 < data["packets"] < 600 and data["seconds"] < 60
    assert any("'Wrong call' line" in check for check in data["checks"])


Hole = tuple[Callable[[AsteriskInstance], None], Callable[[AsteriskInstance], None]]


def _rx(*clis: str) -> Callable[[AsteriskInstance], None]:
    def do(pbx: AsteriskInstance) -> None:
        for cli in clis:
            pbx.rx(cli)

    return do


def _admin_addition(pbx: AsteriskInstance) -> None:
    text = (pbx.config_dir / "extensions.conf").read_text()
    pbx.write_admin_file(
        "extensions.conf",
        text + "\n[guest-call](+)\nexten => _9X.,1,Dial(PJSIP/${EXTEN:1}@trunk)\n",
    )
    pbx.rx("dialplan reload")


def _admin_removal(pbx: AsteriskInstance) -> None:
    text = (pbx.config_dir / "extensions.conf").read_text()
    pbx.write_admin_file("extensions.conf", text.split("\n[guest-call](+)\n", 1)[0])
    pbx.rx("dialplan reload")


HOLES: dict[str, tuple[Hole, str, str]] = {
    "runtime outside-line pattern": (
        (
            _rx(r"dialplan add extension _011X.,1,Dial(PJSIP/${EXTEN}@trunk) into guest-call"),
            _rx("dialplan reload"),
        ),
        "dialplan-pattern",
        "extension _011X. [pbx_config]",
    ),
    "internal number": (
        (
            _rx("dialplan add extension 105,1,Dial(PJSIP/105) into guest-call"),
            _rx("dialplan reload"),
        ),
        "dialplan-extension",
        "extension 105 [pbx_config]",
    ),
    "dial to a trunk": (
        (
            _rx(
                "dialplan add extension alex,4,Dial(PJSIP/0049301234@trunk) into guest-call replace"
            ),
            _rx("dialplan reload"),
        ),
        "dialplan-step",
        "extension alex, priority 4 [pbx_config]",
    ),
    "open relay": (
        (
            _rx(
                "dialplan add extension _sipctlaudit,1,"
                r"Dial(PJSIP/relay/sip:${EXTEN}@${SIPDOMAIN}) into guest-call"
            ),
            _rx("dialplan reload"),
        ),
        "open-relay",  # a stranger's call to sipctlaudit@sipctl-audit.invalid went elsewhere
        "",
    ),
    "admin's (+) addition": (
        (_admin_addition, _admin_removal),
        "dialplan-pattern",
        "extension _9X. [extensions.conf:",
    ),
}


@pytest.mark.parametrize("hole", list(HOLES))
def test_each_hole_is_found_and_named_then_closed(
    hole: str, applied: Path, bind: BindServer, asterisk: AsteriskInstance,
    phones: dict[str, Phone],
) -> None:  # fmt: skip
    (make, undo), code, where = HOLES[hole]
    make(asterisk)
    try:
        report = _audit(applied, bind)
    finally:
        undo(asterisk)
    text = report.to_text()
    assert report.exit_code == 2, text
    named = [f for f in report.findings if f.code == code and where in f.where]
    assert named, text
    assert named[0].severity == "critical" and named[0].fix
    jsonschema.validate(report.to_json(), audit_report_schema())
    assert phones["105"].invites == [] or hole != "internal number"
    again = _audit(applied, bind)
    assert again.exit_code == 0, again.to_text()


def test_a_trunks_password_in_the_live_dialplan_is_never_shown(
    applied: Path, bind: BindServer, asterisk: AsteriskInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    """Admins write a trunk's credentials into the dial string (IAX2/user:secret@host) and
    into a switch: the audit quotes those steps as Asterisk shows them, into CI logs, and
    shows them with the password hidden, in text and in JSON alike."""
    text = (asterisk.config_dir / "extensions.conf").read_text()
    asterisk.write_admin_file(
        "extensions.conf", text + "\n[guest-call](+)\nswitch => IAX2/peer:Sw1tchPW@192.0.2.2/x\n"
    )
    asterisk.rx("dialplan reload")  # before the runtime addition, which a reload drops
    asterisk.rx(
        "dialplan add extension _00X.,1,Dial(IAX2/trunk:Tru5tMeNot@192.0.2.1/${EXTEN}) "
        "into guest-call"
    )
    try:
        shown = ""
        for extra in ([], ["--json"]):
            code = run(["audit", "-f", str(applied), "--nameserver", bind.server, *extra])
            out, err = capsys.readouterr()
            assert code == 2, out + err
            shown += out + err
    finally:
        asterisk.write_admin_file("extensions.conf", text)
        asterisk.rx("dialplan reload")
    assert "Tru5tMeNot" not in shown and "Sw1tchPW" not in shown, shown
    assert "IAX2/trunk:***@192.0.2.1" in shown and "IAX2/peer:***@192.0.2.2" in shown, shown


def test_an_include_in_a_not_found_guest_context_is_found(
    asterisk: AsteriskInstance, applied: Path, bind: BindServer, zone: str, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, bind, zone, asterisk, unknown_callers="not-found")
    apply_spec(spec)
    try:
        first = _audit(spec, bind)
        assert first.exit_code == 0, first.to_text()
        asterisk.rx("dialplan add include default into guest-call")
        try:
            report = _audit(spec, bind)
        finally:
            asterisk.rx("dialplan remove include default from guest-call")
        (finding,) = [f for f in report.findings if f.code == "dialplan-include"]
        assert "include => default [pbx_config]" in finding.where
        assert any("Dial(PJSIP/105,20)" in d for d in finding.details)
        assert _audit(spec, bind).exit_code == 0
    finally:
        apply_spec(applied)


def test_a_management_port_beyond_the_firewall_is_found(applied: Path, bind: BindServer) -> None:
    with socket.socket() as ami:
        ami.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ami.bind((PBX, 5038))
        ami.listen(8)
        report = _audit(applied, bind)
    (finding,) = [f for f in report.findings if f.code == "port-open"]
    assert finding.where == f"tcp {PBX}:5038" and "AMI" in finding.title
    assert finding.severity == "critical"
    again = _audit(applied, bind)
    assert again.exit_code == 0, again.to_text()


def test_a_declared_name_without_a_phone_ends_like_an_undeclared_one(
    asterisk: AsteriskInstance, applied: Path, bind: BindServer, zone: str, tmp_path: Path,
    phones: dict[str, Phone],
) -> None:  # fmt: skip
    """Enumeration by INVITE: 'ghost' (extension 107, no endpoint, no phone) is called."""
    global USERS
    saved, USERS = USERS, {**USERS, "ghost": "107"}
    try:
        spec = _spec(tmp_path, bind, zone, asterisk)
    finally:
        USERS = saved
    apply_spec(spec)
    before = {ext: len(p.invites) for ext, p in phones.items()}
    try:
        report = _audit(spec, bind)
    finally:
        apply_spec(applied)
    assert any("enumeration by INVITE: 1 declared name(s)" in c for c in report.checks), (
        report.to_text()
    )
    assert report.exit_code == 0, report.to_text()
    assert {ext: len(p.invites) for ext, p in phones.items()} == before


def test_a_phone_behind_an_aor_of_another_name_is_never_called(
    asterisk: AsteriskInstance, applied: Path, bind: BindServer, phones: dict[str, Phone]
) -> None:
    """Endpoint 105 rings AOR '105desk' and its static contact: the audit resolves declared
    name -> extension -> endpoint -> AORs -> contacts through the live PBX, so 'director'
    (105) is not called, although no AOR is named 105."""
    pjsip = (asterisk.config_dir / "pjsip.conf").read_text()
    desk = pjsip.replace("aors=105\n", "aors=105desk\n").replace(
        "[105]\ntype=aor\n", "[105desk]\ntype=aor\n"
    )
    assert desk.count("105desk") == 2
    asterisk.write_admin_file("pjsip.conf", desk)
    asterisk.rx("module reload res_pjsip.so")
    before = {ext: len(p.invites) for ext, p in phones.items()}
    try:
        assert "105desk/sip:105@" in asterisk.rx("pjsip show endpoint 105")
        report = _audit(applied, bind)
    finally:
        asterisk.write_admin_file("pjsip.conf", pjsip)
        asterisk.rx("module reload res_pjsip.so")
    assert {ext: len(p.invites) for ext, p in phones.items()} == before, report.to_text()
    assert any("every declared name has a phone" in c for c in report.checks), report.to_text()


def test_a_stock_pbx_applied_leaks_no_version_and_an_unmanaged_one_is_low(
    asterisk: AsteriskInstance, applied: Path, bind: BindServer, zone: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """A stock pjsip.conf (no user_agent: 'Asterisk PBX 22.x'): the default server_header
    (no-version) gives a header without a version and a clean audit; 'unmanaged' gives the
    admin's file back byte for byte, a LOW version leak, exit 0, and exit 2 with --fail-on low."""
    pjsip = (asterisk.config_dir / "pjsip.conf").read_text()
    stock = pjsip.replace("user_agent=TestPBX ; the admin's own global settings\n", "")
    assert "user_agent" not in stock
    asterisk.write_admin_file("pjsip.conf", stock)
    unmanaged = _spec(tmp_path, bind, zone, asterisk, server_header="unmanaged")
    try:
        asterisk.rx("module reload res_pjsip.so")
        assert "Asterisk PBX 22" in asterisk.rx("pjsip show settings")
        apply_spec(applied)
        assert "user_agent=PBX ; sipctl" in (asterisk.config_dir / "pjsip.conf").read_text()
        assert "Asterisk PBX 22" not in asterisk.rx("pjsip show settings")
        report = _audit(applied, bind)
        assert report.exit_code == 0 and report.findings == [], report.to_text()
        apply_spec(unmanaged)
        assert (asterisk.config_dir / "pjsip.conf").read_text() == stock
        code = run(["audit", "-f", str(unmanaged), "--nameserver", bind.server, "--json"])
        [domain] = json.loads(capsys.readouterr().out)["domains"]
        assert code == 0, domain
        assert [f["code"] for f in domain["audit"]["findings"]] == ["version-leak"]
        assert domain["audit"]["findings"][0]["severity"] == "low"
        assert "asterisk.server_header" in domain["audit"]["findings"][0]["fix"]
        strict = ["audit", "-f", str(unmanaged), "--nameserver", bind.server, "--fail-on", "low"]
        assert run(strict) == 2
        assert "Asterisk PBX 22" in capsys.readouterr().out
    finally:
        asterisk.write_admin_file("pjsip.conf", pjsip)
        apply_spec(applied)
        asterisk.rx("module reload res_pjsip.so")
    assert (asterisk.config_dir / "pjsip.conf").read_text() == pjsip


def test_verify_says_per_name_what_a_caller_gets_and_rings_no_phone(
    asterisk: AsteriskInstance, applied: Path, bind: BindServer, zone: str, tmp_path: Path,
    phones: dict[str, Phone], capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """director (105, a static contact that answers OPTIONS) rings; alex (106, no contact)
    is unavailable: not registered; the ring group team rings through 101 although 107 has
    no endpoint; then 106's contact points at a dead port: unreachable. verify sends OPTIONS
    only: no phone gets an INVITE."""
    from sipctl.reconciler.verify.run import run_verify
    from sipctl.schemas.outputs import verify_schema

    global USERS
    saved, USERS = USERS, {"director": "105", "alex": "106", "team": {"ring": ["101", "107"]}}
    try:
        spec = _spec(tmp_path, bind, zone, asterisk)
    finally:
        USERS = saved
    pjsip = (asterisk.config_dir / "pjsip.conf").read_text()
    port_106 = phones["106"].sock.getsockname()[1]
    contact_106 = f"contact=sip:106@127.0.0.1:{port_106}\n"
    assert contact_106 in pjsip
    before = {ext: len(p.invites) for ext, p in phones.items()}
    asterisk.write_admin_file("pjsip.conf", pjsip.replace(contact_106, ""))
    asterisk.rx("module reload res_pjsip.so")
    try:
        apply_spec(spec)
        assert run(["verify", "-f", str(spec), "--nameserver", bind.server, "--json"]) == 0
        [domain] = json.loads(capsys.readouterr().out)["domains"]
        data = domain["verify"]
        jsonschema.validate(data, verify_schema())
        names = {n["name"]: n for n in data["names"]}
        assert names["director"]["state"] == "rings", names
        assert "answers OPTIONS" in names["director"]["why"]
        assert names["alex"]["state"] == "unavailable", names
        assert "not registered" in names["alex"]["why"]
        team = names["team"]
        assert team["kind"] == "ring group" and team["state"] == "rings", team
        assert [(p["extension"], p["state"]) for p in team["phones"]] == [
            ("101", "rings"), ("107", "unavailable")
        ]  # fmt: skip
        assert "no endpoint 107" in team["phones"][1]["why"]
        dead = pjsip.replace(contact_106, f"contact=sip:106@127.0.0.1:{free_port()}\n")
        asterisk.write_admin_file("pjsip.conf", dead)
        asterisk.rx("module reload res_pjsip.so")
        report = run_verify(load_spec(spec), bind.server, 2.0)
        text = report.to_text()
        alex = next(n for n in report.names if n["name"] == "alex")
        assert alex["state"] == "unavailable" and "unreachable" in alex["why"], text
        assert "callers of alex hear the unavailable sound" in text, text
    finally:
        asterisk.write_admin_file("pjsip.conf", pjsip)
        asterisk.rx("module reload res_pjsip.so")
        apply_spec(applied)
    assert {ext: len(p.invites) for ext, p in phones.items()} == before


def _svwar(pbx: AsteriskInstance, method: str) -> set[str]:
    """The extensions sipvicious' svwar (from PyPI) lists for 100-110 on the PBX's UDP port."""
    import shutil
    import subprocess
    import sys

    program = shutil.which("sipvicious_svwar") or str(
        Path(sys.executable).with_name("sipvicious_svwar")
    )
    done = subprocess.run(
        [program, "-m", method, "-e100-110", "-b", "127.0.0.1", "-x", "127.0.0.1",
         "-P", str(free_port()), "-p", str(pbx.sip_port), PBX],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    found = set()
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].isdigit():
            found.add(cells[0])
    return found


@pytest.fixture(scope="module")
def over_tls(
    asterisk: AsteriskInstance, bind: BindServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A spec of a second domain whose DNS names the PBX over UDP, TCP and TLS (the admin's
    TLS transport, added by a reload, with a self-signed certificate naming that domain and
    its SRV target). Its own zone, so the other tests' domain keeps no TLS target."""
    import subprocess

    tls_port = free_port(host=PBX)
    port = asterisk.sip_port
    name = bind.new_zone(
        extra=(
            f"_sip._udp IN SRV 10 0 {port} pbx\n_sip._tcp IN SRV 10 0 {port} pbx\n"
            f"_sips._tcp IN SRV 10 0 {tls_port} pbx\npbx IN A {PBX}\n"
        )
    )
    cert, key = asterisk.config_dir / "audit-tls.pem", asterisk.config_dir / "audit-tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name},DNS:pbx.{name}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    key.chmod(0o644)  # read by the chroot's asterisk user
    pjsip = asterisk.config_dir / "pjsip.conf"
    pjsip.write_text(
        pjsip.read_text()
        + f"\n[transport-tls]\ntype=transport\nprotocol=tls\nbind={PBX}:{tls_port}\n"
        f"cert_file=/etc/asterisk/{cert.name}\npriv_key_file=/etc/asterisk/{key.name}\n"
        "method=tlsv1_2\n"
    )
    asterisk.rx("module reload res_pjsip.so")
    yield _spec(tmp_path_factory.mktemp("audit-tls"), bind, name, asterisk)
    bind.delete_zone(name)


def test_svwar_and_audit_find_the_internal_extensions_then_neither_after_the_fix(
    asterisk: AsteriskInstance,
    applied: Path,
    over_tls: Path,
    bind: BindServer,
    phones: dict[str, Phone],
) -> None:
    """With Asterisk's default identify_by=username, svwar's OPTIONS and INVITE scans list
    101, 105 and 106 (a From naming a phone is challenged, any other is a guest); the audit
    finds the same, on UDP, TCP and TLS. With the phones identified by address (the fixture's
    default, the fix the audit names) neither finds anything. No phone gets an INVITE from
    the audit (svwar's INVITE scan does ring 101: a declared name anyone may call)."""
    fixed = (asterisk.config_dir / "pjsip.conf").read_text()
    by_username = fixed.replace(BY_ADDRESS, "")
    asterisk.write_admin_file("pjsip.conf", by_username)
    asterisk.rx("module reload res_pjsip.so")
    try:
        assert _svwar(asterisk, "OPTIONS") == {"101", "105", "106"}
        assert _svwar(asterisk, "INVITE") == {"101", "105", "106"}
        before = {ext: len(p.invites) for ext, p in phones.items()}
        report = _audit(over_tls, bind)
        assert {ext: len(p.invites) for ext, p in phones.items()} == before
    finally:
        asterisk.write_admin_file("pjsip.conf", fixed)
        asterisk.rx("module reload res_pjsip.so")
    found = [f for f in report.findings if f.code == "enumeration-by-identity"]
    text = report.to_text()
    methods = {(f.where.split()[0], f.sent.split()[0] if f.sent else "") for f in found}
    assert {
        ("udp", "OPTIONS"),
        ("udp", "INVITE"),
        ("tcp", "OPTIONS"),
        ("tcp", "INVITE"),
        ("tls", "OPTIONS"),
        ("tls", "INVITE"),
    } <= methods, text
    # a stranger's REGISTER finds no endpoint (asterisk.GUEST_REQUESTS): 401 like a phone's,
    # so REGISTER no longer tells them apart (it was 401 against the guest endpoint's 403)
    assert not [m for m in methods if m[1] == "REGISTER"], text
    assert all("identify_by=ip" in f.fix for f in found) and report.exit_code == 2, text
    # what the log fail2ban reads shows of the scan is named (the challenged requests leave
    # no line; a stray pjproject parse error of a late packet may)
    assert any("name this machine" in d for f in found for d in f.details), text
    assert _svwar(asterisk, "OPTIONS") == set() and _svwar(asterisk, "INVITE") == set()
    before = {ext: len(p.invites) for ext, p in phones.items()}
    after = _audit(over_tls, bind)
    assert not [f for f in after.findings if f.code.startswith("enumeration")], after.to_text()
    assert "on udp, tcp, tls" in "\n".join(after.checks), after.to_text()
    assert {ext: len(p.invites) for ext, p in phones.items()} == before


DESK = """
[108]
type=endpoint
context=default
disallow=all
allow=ulaw,alaw
auth=108-auth
aors=108

[108-auth]
type=auth
auth_type=digest
username=108
password=secret108

[108]
type=aor
max_contacts=1
remove_existing=yes
"""


def test_unknown_callers_challenge_hides_the_internal_extensions_and_phones_still_work(
    asterisk: AsteriskInstance,
    applied: Path,
    over_tls: Path,
    bind: BindServer,
    phones: dict[str, Phone],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A stock PBX (phones identified by their From user, 108 a real phone that registers):
    svwar and the audit find the internal extensions. The spec turns on unknown_callers:
    challenge and applies it: svwar's OPTIONS, INVITE and REGISTER scans find nothing, the
    audit passes at --fail-on medium over UDP, TCP and TLS, and the real phone (baresip)
    still registers, rings when a guest calls its name, and calls a colleague in its own
    context. No phone gets an INVITE from the audit."""

    import yaml
    from fixtures.baresip import baresip_phone

    from sipctl.providers.sip_attack import SipAgent

    fixed = (asterisk.config_dir / "pjsip.conf").read_text()
    asterisk.write_admin_file("pjsip.conf", fixed.replace(BY_ADDRESS, "") + DESK)
    asterisk.rx("module reload res_pjsip.so")
    data = yaml.safe_load(over_tls.read_text())
    data["users"]["desk"] = "108"
    reject = write_spec(over_tls.parent, data, "desk-reject.yaml")
    data["asterisk"]["unknown_callers"] = "challenge"
    challenge = write_spec(over_tls.parent, data, "desk-challenge.yaml")
    before = {ext: len(p.invites) for ext, p in phones.items()}
    try:
        apply_spec(reject)
        assert _svwar(asterisk, "OPTIONS") == {"101", "105", "106", "108"}
        found = _audit(reject, bind)
        assert {f.code for f in found.findings} >= {"enumeration-by-identity"}, found.to_text()
        apply_spec(challenge)
        assert "sipctl-guest" in asterisk.rx("pjsip show endpoints")
        for method in ("OPTIONS", "INVITE", "REGISTER"):
            assert _svwar(asterisk, method) == set(), method
        code = run(["audit", "-f", str(challenge), "--nameserver", bind.server, "--json",
                    "--fail-on", "medium"])  # fmt: skip
        [domain] = json.loads(capsys.readouterr().out)["domains"]
        report = domain["audit"]
        # svwar's own probes find nothing; the declared name 'desk' called with a phone's
        # extension in From still tells them apart (the username identifier comes before
        # request_uri in the default order): the finding names the admin's order fix, and
        # nothing else is found (the forged Authorization header tells nothing)
        assert code != 0, json.dumps(report, indent=2)
        found = [f for f in report["findings"] if f["area"] == "enumeration"]
        assert found and {
            (f["code"], f["fix"].count("endpoint_identifier_order=ip,request_uri")) for f in found
        } == {("enumeration-by-identity", 1)}, report
        assert all("with the extension in From" in f["title"] for f in found), report
        assert "No matching endpoint found" in found[0]["details"][0], report
        checks = "\n".join(report["checks"])
        assert "on udp, tcp, tls" in checks, checks
        assert {ext: len(p.invites) for ext, p in phones.items()} == before
        # verify (over UDP and TCP: the other domain) expects an unknown name challenged
        data["domain"] = yaml.safe_load(applied.read_text())["domain"]
        data["servers"] = [{"host": f"pbx.{data['domain']}", "ipv4": [PBX]}]
        plain = write_spec(over_tls.parent, data, "desk-challenge-plain.yaml")
        code = run(["verify", "-f", str(plain), "--nameserver", bind.server, "--json"])
        verified = capsys.readouterr().out
        assert code == 0 and "401" in verified, verified
        # the real phone: registers, rings for a guest, calls in its own context
        registrar = f"{PBX}:{asterisk.sip_port}"
        offset = asterisk.log_size(asterisk.full_log_path)
        with baresip_phone(registrar, "108", "secret108", dial=f"sip:106@{registrar}"):
            contacts = asterisk.rx("pjsip show contacts")  # registered: the phone got its 200
            assert "108/sip:" in contacts, contacts
            with SipAgent(PBX, asterisk.sip_port, "udp", data["domain"]) as guest:
                call = guest.invite("desk", 5.0, 0.2)
                stranger = guest.invite("sipctlnobody", 5.0, 0.2)
        assert call.rang, call.summary()
        assert stranger.final == 401 and not stranger.answered, stranger.summary()
        asterisk.wait_log(r"106@default:1", offset, asterisk.full_log_path)
    finally:
        asterisk.write_admin_file("pjsip.conf", fixed)
        asterisk.rx("module reload res_pjsip.so")
        apply_spec(applied)
