"""A guest sent into the admin's dialplan must not reach a trunk: ``plan`` refuses it.

``asterisk.route: goto`` (and every name of a hosting customer) makes the guest dialplan
``Goto(<local_context>,<extension>,1)``. The plan reads that extension as the real Asterisk
22 has it loaded (``dialplan show EXT@CONTEXT``, its includes and jumps followed in the whole
running dialplan) in the same batch as its other reads, and refuses (exit 3) when the steps
can call out: directly, through an include, at the end of a Goto chain, or through an
extension added at runtime. A plain phone extension plans as before; the PBX's admin (host
profile, never the spec) may allow one extension.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from asterisk_helpers import spec_data, write_spec
from fixtures import host_profile
from fixtures.asterisk import ADMIN_EXTENSIONS, AsteriskInstance, running_asterisk
from fixtures.hosting import customer_spec, host_spec
from fixtures.waiting import wait_until

from sipctl.cli import run
from sipctl.schemas.outputs import plan_schema

pytestmark = pytest.mark.asterisk

# The admin's own extensions, beside the phones 101, 105 and 106 of ADMIN_EXTENSIONS.
TRUNKS = """
exten => _3XX,1,Dial(PJSIP/${EXTEN},20)
exten => 201,1,Dial(PJSIP/${EXTEN}@trunk,60)
exten => 202,1,NoOp(the rest comes from an include)
exten => 203,1,Goto(forward,${EXTEN},1)
exten => 206,1,Dial(IAX2/trunk:Tr0ub4dor3@provider.example/${EXTEN})
include => outside

[outside]
exten => 202,2,Dial(SIP/provider/0049301234)

[forward]
exten => _X.,1,Set(FORWARDED=yes)
 same => n,Goto(outbound,0049${EXTEN},1)

[outbound]
exten => _X.,1,Dial(PJSIP/${EXTEN}@trunk)

[mixed]
exten => 105,1,Dial(PJSIP/105,20)
 same => n,Hangup()
exten => 106,1,Dial(PJSIP/106,20)
exten => _1XX,2,Dial(PJSIP/${EXTEN}@trunk)
exten => _X.,1,Dial(PJSIP/${EXTEN}@trunk)

[a-phones]
exten => 105,1,Dial(PJSIP/105,20)

[b-phones]
exten => 105,1,Goto(outbound,0049301234,1)

[by-name]
exten => 105,1,Dial(PJSIP/105,20)
exten => 211,1,Dial(PJSIP/provider,60)
exten => 212,1,Dial(PJSIP/105&PJSIP/byaddress,20)
exten => 213,1,Dial(PJSIP/nobody,20)
exten => 214,1,Queue(support)
exten => 215,1,AGI(forward.agi)
exten => 216,1,System(/usr/local/bin/forward)
exten => 217,1,Goto(staff,${CALLERID(num)},1)

[staff]
exten => 105,1,Dial(PJSIP/105,20)
exten => _3XX,1,Dial(PJSIP/${EXTEN},20)
"""

# The admin's trunks, beside the phones (which authenticate: auth=): one the PBX
# authenticates to and registers with, one found by its address, one with neither.
TRUNK_ENDPOINTS = """
[provider]
type=endpoint
context=from-provider
outbound_auth=provider-auth
aors=provider

[provider-auth]
type=auth
auth_type=digest
username=account
password=provider-secret

[provider]
type=aor
contact=sip:sip.provider.example

[provider-registration]
type=registration
outbound_auth=provider-auth
server_uri=sip:sip.provider.example
client_uri=sip:account@sip.provider.example

[byaddress]
type=endpoint
context=from-provider
aors=byaddress

[byaddress]
type=aor
contact=sip:192.0.2.9

[byaddress-identify]
type=identify
endpoint=byaddress
match=192.0.2.9

[nobody]
type=endpoint
context=from-provider
aors=nobody

[nobody]
type=aor
contact=sip:198.51.100.7
"""


@pytest.fixture(scope="module")
def pbx() -> Iterator[AsteriskInstance]:
    with running_asterisk(extra_files={"extensions.conf": ADMIN_EXTENSIONS + TRUNKS}) as pbx:
        with (pbx.config_dir / "pjsip.conf").open("a") as pjsip:
            pjsip.write(TRUNK_ENDPOINTS)
        pbx.rx("module reload res_pjsip.so")
        wait_until(lambda: "byaddress" in pbx.rx("pjsip show endpoints"), "the trunks")
        yield pbx


def _spec(
    directory: Path, pbx: AsteriskInstance, users: dict[str, Any], context: str = "default"
) -> Path:
    data = spec_data(pbx, users=users, route="goto", local_context=context)
    return write_spec(directory, data)


def _plan(spec: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, dict[str, Any]]:
    code = run(["plan", "-f", str(spec), "--no-color"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert run(["plan", "-f", str(spec), "--json"]) == code
    [domain] = json.loads(capsys.readouterr().out)["domains"]
    return code, text, domain["plan"]


def _line(spec: Path, key: str) -> int:
    return next(n for n, line in enumerate(spec.read_text().splitlines(), 1) if key in line)


def test_a_goto_to_phones_plans_and_says_it_was_checked(
    pbx: AsteriskInstance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    users = {"director": 105, "pattern": 305, "sales": {"ring": [106, 101]}}
    code, text, plan = _plan(_spec(tmp_path, pbx, users), capsys)
    assert code == 0, text
    [reason] = plan["attention"]
    assert "guest jumps checked in the running Asterisk: 4 extension(s)" in reason
    assert "none can call out" in reason


@pytest.mark.parametrize(
    ("extension", "step"),
    [
        ("201", "Dial(PJSIP/${EXTEN}@trunk,60) (toll fraud) [extensions.conf:"),
        ("202", "Dial(SIP/provider/0049301234) (toll fraud) [extensions.conf:"),
        ("203", "Dial(PJSIP/${EXTEN}@trunk) (toll fraud) [extensions.conf:"),
        ("204", "Dial(PJSIP/0049301234@trunk) (toll fraud) [pbx_config]"),
    ],
    ids=["direct", "include", "goto-chain", "runtime"],
)
def test_a_goto_to_an_extension_that_calls_out_is_refused(
    pbx: AsteriskInstance,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extension: str,
    step: str,
) -> None:
    if extension == "204":
        pbx.rx("dialplan add extension 204,1,Dial(PJSIP/0049301234@trunk) into default")
    try:
        spec = _spec(tmp_path, pbx, {"director": 105, "boss": extension})
        code, text, plan = _plan(spec, capsys)
    finally:
        if extension == "204":
            pbx.rx("dialplan remove extension 204@default")
    assert code == 3, text
    assert f"guests are sent to {extension}@default" in text
    assert f"sipctl.yaml:{_line(spec, 'boss:')}:3: users.boss" in text
    assert f"sipctl.yaml:{_line(spec, 'route:')}:" in text
    assert step in text, text
    assert "guest_jumps in the host profile" in text and "plain phone extension" in text
    assert "105@default" not in text.split("refused")[-1]  # the phone is not named
    if extension == "203":  # the chain is shown the way Asterisk runs it
        assert "via Goto(forward,${EXTEN},1) [extensions.conf:" in text
        assert "via Goto(outbound,0049${EXTEN},1)" in text
    (target,) = [t for t in plan["targets"] if t["layer"] == "asterisk"]
    assert any(f"{extension}@default" in hazard for hazard in target["host_hazards"])


def test_the_steps_are_those_asterisk_runs_priority_by_priority(
    pbx: AsteriskInstance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The exact 105 hides the outside-line pattern _X. at its priority 1 and ends at its
    Hangup; 106 has no priority 2, so after its Dial fails the pattern _1XX's runs."""
    code, text, _ = _plan(_spec(tmp_path, pbx, {"director": 105}, "mixed"), capsys)
    assert code == 0, text
    code, text, _ = _plan(_spec(tmp_path, pbx, {"alex": 106}, "mixed"), capsys)
    assert code == 3, text
    refusal = next(line for line in text.splitlines() if "guests are sent to 106@mixed" in line)
    assert "can call out: _1XX@mixed places a call: Dial(PJSIP/${EXTEN}@trunk)" in refusal
    assert "_X." not in refusal


def test_the_pbx_admin_may_allow_one_extension(
    pbx: AsteriskInstance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, pbx, {"boss": 201, "other": 203})
    host_profile.current().write("guest_jumps: ['201@default']\n")
    code, text, _ = _plan(spec, capsys)
    assert code == 3 and "203@default" in text and "guests are sent to 201@default" not in text
    spec = _spec(tmp_path, pbx, {"boss": 201})
    host_profile.current().write("guest_jumps: ['201@default']\n")  # _spec wrote it anew
    code, text, plan = _plan(spec, capsys)
    assert code == 0, text
    assert "201@default can call out, allowed by the host profile" in plan["attention"][0]


def test_a_hosting_customer_s_name_that_calls_out_is_refused(
    pbx: AsteriskInstance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_spec(tmp_path, host_spec(pbx), "pbx1.yaml")
    write_spec(tmp_path, customer_spec("a"), "a.yaml")
    code, text, _ = _plan(tmp_path / "pbx1.yaml", capsys)
    assert code == 0, text
    b = write_spec(tmp_path, customer_spec("b"), "b.yaml")
    code, text, _ = _plan(tmp_path / "pbx1.yaml", capsys)
    assert code == 3, text
    refusals = [line for line in text.splitlines() if "guests are sent to" in line]
    assert refusals and all("105@b-phones" in r and "a-phones" not in r for r in refusals)
    assert f"b.yaml:{_line(b, 'director:')}:3: users.director" in text
    assert "Dial(PJSIP/${EXTEN}@trunk) (toll fraud) [extensions.conf:" in text


def test_a_trunk_password_in_the_refused_step_is_never_shown(
    pbx: AsteriskInstance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal quotes the admin's steps as Asterisk shows them: a dial string's inline
    password is masked there as everywhere sipctl prints the live dialplan."""
    code = run(["plan", "-f", str(_spec(tmp_path, pbx, {"boss": 206})), "--no-color"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 3, text
    assert "Dial(IAX2/trunk:***@provider.example/${EXTEN})" in text, text
    code = run(["plan", "-f", str(_spec(tmp_path, pbx, {"boss": 206})), "--json"])
    said = capsys.readouterr()
    assert code == 3 and "Tr0ub4dor3" not in said.out + said.err
    assert "Tr0ub4dor3" not in text


def _said(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run([*args, "--no-color"])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_force_cannot_pass_a_guest_jump_that_calls_out(
    pbx: AsteriskInstance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pipeline has --force on its command line, the merge request writes the spec:
    neither may put a stranger on the company's bill. Only the host profile lifts it."""
    spec = _spec(tmp_path, pbx, {"director": 105, "boss": 201})
    own_file = pbx.config_dir / "extensions_sipctl.conf"
    for args in (["plan", "-f", str(spec), "--force"], ["apply", "-f", str(spec), "--force",
                                                      "--auto-approve"]):  # fmt: skip
        code, text = _said(args, capsys)
        assert code == 3, text
        assert "guests are sent to 201@default" in text
        assert "--force cannot pass this refusal" in text and "under guest_jumps" in text
        assert "--force cannot pass it: only the PBX's host profile can allow it" in text
        assert not own_file.exists(), "nothing was applied"
    code, text, plan = _plan(spec, capsys)
    assert code == 3
    [held] = plan["refusals_force_cannot_pass"]
    assert held in plan["refusals"] and "guests are sent to 201@default" in held
    jsonschema.validate(plan, plan_schema())
    assert "refusals_force_cannot_pass" in plan_schema()["properties"]
    assert "apply will refuse this plan, --force or not (only the PBX's host profile" in text
    assert "(unless --force)" not in text
    _, markdown = _said(["plan", "-f", str(spec), "--markdown"], capsys)
    assert "**apply will refuse this plan, `--force` or not** (only the PBX" in markdown
    code, shown = _said(["apply", "--help"], capsys)
    assert code == 0 and "guest_jumps" in " ".join(shown.split())
    # the host profile lifts it (and --force still passes only what it always passed)
    spec = _spec(tmp_path, pbx, {"director": 105, "boss": 201})
    host_profile.current().write("guest_jumps: ['201@default']\n")
    code, text = _said(["plan", "-f", str(spec), "--force"], capsys)
    assert code == 0, text


@pytest.mark.parametrize(
    ("extension", "trunk"),
    [("211", "provider"), ("212", "byaddress"), ("213", "nobody")],
    ids=["outbound-auth-and-registration", "identify-by-address", "no-auth"],
)
def test_a_dial_of_a_trunk_endpoint_by_name_calls_out(
    pbx: AsteriskInstance,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extension: str,
    trunk: str,
) -> None:
    """``Dial(PJSIP/provider)`` reads like a phone's ``Dial(PJSIP/105)``; the running PBX
    (``pjsip show endpoints``, in the same batch) says it is a trunk."""
    code, text, _ = _plan(_spec(tmp_path, pbx, {"director": 105}, "by-name"), capsys)
    assert code == 0, text  # the phone is still a phone
    code, text, _ = _plan(_spec(tmp_path, pbx, {"boss": extension}, "by-name"), capsys)
    assert code == 3, text
    refusal = next(line for line in text.splitlines() if f"sent to {extension}@by-name" in line)
    assert f"{trunk} is a trunk of the running PBX: toll fraud" in refusal, refusal


@pytest.mark.parametrize(
    ("extension", "step", "why"),
    [
        ("214", "Queue(support)", "who a Queue rings is its members"),
        ("215", "AGI(forward.agi)", "a program may do anything"),
        ("216", "System(/usr/local/bin/forward)", "a program may do anything"),
        ("217", "Dial(PJSIP/${EXTEN},20)", "Goto(staff,${CALLERID(num)},1) picks its "
         "extension in staff only when the call runs"),
    ],
    ids=["queue", "agi", "system", "goto-variable-extension"],
)  # fmt: skip
def test_a_step_sipctl_cannot_judge_is_named_with_why_and_the_way_out(
    pbx: AsteriskInstance,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extension: str,
    step: str,
    why: str,
) -> None:
    code, text, _ = _plan(_spec(tmp_path, pbx, {"boss": extension}, "by-name"), capsys)
    assert code == 3, text  # strict: counted as calling out
    refusal = next(line for line in text.splitlines() if f"sent to {extension}@by-name" in line)
    assert "there sipctl cannot tell whether this step calls out, so it counts as calling " \
        "out:" in refusal, refusal  # fmt: skip
    assert step in refusal and why in refusal, refusal
    assert f"lists '{extension}@by-name' under guest_jumps" in refusal
    assert "the only way past this refusal" in refusal
