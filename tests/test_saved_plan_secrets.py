"""Secrets never appear in a saved plan (``plan --out``), whatever live value carries them.

sipctl's own files hold no secret, but a live one may (an admin pasted a trunk's password
into pjsip_sipctl.conf): the plan's ``before`` of that file held it whole, masked on the
terminal and in --json but written plainly into the saved plan, the artefact a pipeline
keeps. A saved plan now holds each string as the console prints it (the run's secrets, the
value of a key named as a secret, a URL's or dial string's password written ``***``);
``apply PLAN`` compares it with the fresh plan as saved, and writes the fresh values, read
again from the host.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from pathlib import Path

import pytest
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.cli import run

SPEC = """\
version: 1
domain: mysite.example
users: {director: 105}
servers: [{host: pbx.mysite.example, ipv4: [192.0.2.10]}]
asterisk: {target: 'dir:pbx', unknown_callers: reject}
"""

# What a secret is made of: what passwords and API keys hold, base64's alphabet among them;
# "zQ" first, so that no word of a plan is one (nor "00000000" in a hash).
secrets = st.text(
    alphabet="abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ0123456789-_.+/=!#%&*~",
    min_size=8,
    max_size=40,
).map(lambda text: f"zQ{text}")

# Where an admin writes one into a file sipctl manages, and which file ({dial}: in a dial
# string or a SIP URI, whose password holds no '/' or '&': RFC 3261; Asterisk would end it
# there, or dial a second target).
PLACES = [
    ("pjsip_sipctl.conf", "[trunk-auth]\ntype=auth\nusername=trunk\npassword={secret}\n"),
    (
        "pjsip_sipctl.conf",
        "[trunk]\ntype=registration\nclient_uri=sip:trunk:{dial}@sip.example\n",
    ),
    ("pjsip_sipctl.conf", "[trunk-auth]\ntype=auth\nmd5_cred = x\nsecret = {secret}\n"),
    ("extensions_sipctl.conf", "[globals]\nTRUNK_PASSWORD={secret}\n"),
    (
        "extensions_sipctl.conf",
        "[out]\nexten => _X.,1,Dial(IAX2/trunk:{dial}@iax.example/${{EXTEN}})\n",
    ),
    (
        "extensions_sipctl.conf",
        "[hook]\nexten => 1,1,Set(URL=https://api:{secret}@hooks.example/x)\n",
    ),
    # in quotes: masked whole, quotes kept (the mask once stopped at the opening quote)
    ("pjsip_sipctl.conf", '[trunk-auth]\ntype=auth\nusername=trunk\npassword="{secret}"\n'),
    ("extensions_sipctl.conf", "[globals]\nBOX_PIN='{secret}'\n"),
]
QUOTED = PLACES[-2:]


def _dial(secret: str) -> str:
    return secret.replace("/", "").replace("&", "")


def _forms(secret: str) -> list[str]:
    """The secret as it is, and encoded as a document could carry it."""
    raw = secret.encode()
    return [
        secret,
        json.dumps(secret)[1:-1],
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        binascii.hexlify(raw).decode(),
        urllib.parse.quote(secret, safe=""),
    ]


@pytest.fixture
def applied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    (tmp_path / "sipctl.yaml").write_text(SPEC)
    spec = str(tmp_path / "sipctl.yaml")
    assert run(["apply", "-f", spec, "--auto-approve", "--no-verify"]) == 0
    capsys.readouterr()
    for name in {name for name, _ in PLACES}:
        applied = (tmp_path / "pbx" / "etc" / "asterisk" / name).read_text()
        (tmp_path / f"{name}.applied").write_text(applied)
    return tmp_path


@settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(secret=secrets, place=st.sampled_from(PLACES))
def test_a_live_secret_is_in_no_saved_plan_and_apply_still_applies_it(
    applied: Path, capsys: pytest.CaptureFixture[str], secret: str, place: tuple[str, str]
) -> None:
    name, lines = place
    live = applied / "pbx" / "etc" / "asterisk" / name
    wanted = (applied / f"{name}.applied").read_text()  # each example from the applied file
    secret = _dial(secret) if "{dial}" in lines else secret
    live.write_text(wanted + "\n" + lines.format(secret=secret, dial=secret))
    spec, plan = str(applied / "sipctl.yaml"), applied / "plan.json"

    assert run(["plan", "-f", spec, "--out", str(plan), "-v"]) == 0
    out, err = capsys.readouterr()
    saved = plan.read_text()
    for form in _forms(secret):
        assert form not in saved, (form, place)
        assert form not in out + err, (form, place)
    # the saved plan is the contract: it applies (not stale), with the values read again
    assert run(["apply", str(plan), "--auto-approve", "--no-verify"]) == 0
    out, err = capsys.readouterr()
    assert secret not in out + err
    assert run(["plan", "-f", spec, "--detailed-exitcode"]) == 0  # what the spec wants
    capsys.readouterr()


@settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=secrets, second=secrets, place=st.sampled_from(PLACES))
def test_a_saved_plan_is_the_same_whatever_the_secret(
    applied: Path,
    capsys: pytest.CaptureFixture[str],
    first: str,
    second: str,
    place: tuple[str, str],
) -> None:
    """Nothing in a saved plan depends on the secret, its fingerprints neither: a hash of
    the file with the secret in it, the rest of which the plan shows, would let anyone who
    holds the plan try guesses at a short password."""
    name, lines = place
    live = applied / "pbx" / "etc" / "asterisk" / name
    wanted = (applied / f"{name}.applied").read_text()
    spec, plan = str(applied / "sipctl.yaml"), applied / "plan.json"
    saved = []
    for secret in (first, second):
        secret = _dial(secret) if "{dial}" in lines else secret
        live.write_text(wanted + "\n" + lines.format(secret=secret, dial=secret))
        assert run(["plan", "-f", spec, "--out", str(plan)]) == 0
        document = json.loads(plan.read_text())
        del document["created_at"]
        saved.append(document)
    capsys.readouterr()
    assert saved[0] == saved[1]


def test_a_run_secret_in_a_live_value_is_masked_in_the_saved_plan() -> None:
    """The run's own secrets (a TSIG key, an API token: ``RunContext.secrets``) are masked
    in every string of the document, key or value, also JSON-escaped or cut."""
    from sipctl.output import scrubbed_data

    secret = "c2lwY3RsLXRzaWctc2VjcmV0"
    document = {
        "before": {"records": [f'"token {secret}"'], secret: 1},
        "described": [f"- dns TXT x {secret[:10]}..."],
    }
    shown = json.dumps(scrubbed_data(document, [secret]))
    assert secret not in shown and secret[:10] not in shown
    assert json.loads(shown)["before"]["records"] == ['"token ***"']


def test_a_saved_plan_edited_to_other_changes_is_still_refused(
    applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Comparing the plans as saved (masked) keeps refusing an edited plan (exit 3)."""
    live = applied / "pbx" / "etc" / "asterisk" / "pjsip_sipctl.conf"
    live.write_text(live.read_text() + "\n[trunk-auth]\ntype=auth\npassword=hunter2-hunter2\n")
    spec, plan = str(applied / "sipctl.yaml"), applied / "plan.json"
    assert run(["plan", "-f", spec, "--out", str(plan)]) == 0
    data = json.loads(plan.read_text())
    (change,) = data["targets"][0]["changes"]
    change["after"] = "; mine\n" + json.dumps(change["after"])
    plan.write_text(json.dumps(data))
    capsys.readouterr()
    assert run(["apply", str(plan), "--auto-approve", "--no-verify"]) == 3
    assert "the file was edited" in capsys.readouterr().err


def _matched_whole(text: str) -> str:
    """``output.without_passwords`` as it was: each pattern over the whole text."""
    from sipctl import output

    if "=" in text:
        text = output._NAMED_VALUE.sub(output._named_secret_masked, text)
    if "@" not in text:
        return text
    if "://" in text:
        for pattern in output._URL_PASSWORDS:
            text = pattern.sub(r"\1:***@", text)
    return output._DIAL_PASSWORDS.sub(r"\1:***@", text)


_NAMES = st.sampled_from(
    [
        *("password", "TRUNK_PASSWORD", "boxPin", "PIN", "apiKey", "api\u212a", "md5_cred"),
        *("register", "adminPIN", "paſsword", "\u0130PASS", "tlsprivatekey", "Secret", "x"),
        *("exten", "Set(URL", "API_TOKEN", "db_pw", "auth", "mwi", "turkey", "pinned"),
    ]
)
_VALUES = st.sampled_from(
    ["hunter2", "x,y", "'q'", "sip:u:p@h", "https://u:p@h/x", "IAX2/t:p@h/1", "${EXTEN}", ""]
)
_LINE = st.tuples(
    st.sampled_from(["", " ", "Set(", "exten => 1,1,", "é", "İ"]),
    _NAMES,
    st.sampled_from(["=", " = ", "=>", "==", ":", "\t=\t"]),
    _VALUES,
    st.sampled_from(["\n", " ", "\t", "\r\n", ";", ",", ")", "\v", ""]),
).map("".join)
_TEXTS = st.lists(st.one_of(_LINE, st.just("A" * 5000)), max_size=20).map("".join)


@settings(max_examples=examples(300), deadline=None)
@given(_TEXTS)
def test_the_scrub_of_lines_is_the_scrub_of_the_whole_text(text: str) -> None:
    """``without_passwords`` matches each pattern only on the lines that may hold it (a
    5 MB dialplan took 1 s, 0.1 s so): it masks exactly what matching the whole text did."""
    from sipctl.output import without_passwords

    assert without_passwords(text) == _matched_whole(text)


@settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(secret=secrets, place=st.sampled_from(QUOTED))
def test_plan_json_of_a_quoted_live_secret_is_json_and_holds_no_secret(
    applied: Path, capsys: pytest.CaptureFixture[str], secret: str, place: tuple[str, str]
) -> None:
    """--json is scrubbed string by string (``Console.json_text``): a scrub of its text
    took the backslash of ``password=\\"x\\"`` for the value, printed JSON no parser reads
    and left the secret in it."""
    name, lines = place
    live = applied / "pbx" / "etc" / "asterisk" / name
    live.write_text((applied / f"{name}.applied").read_text() + "\n" + lines.format(secret=secret))
    assert run(["plan", "-f", str(applied / "sipctl.yaml"), "--json"]) == 0
    out, err = capsys.readouterr()
    document = json.loads(out)  # JSON, whole
    assert document["domains"], document
    for form in _forms(secret):
        assert form not in out + err, (form, place)
    if name == "pjsip_sipctl.conf":  # the file's text is in the plan, masked in its quotes
        assert any('password="***"' in text for text in _strings(document))


def _strings(data: object) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        data = list(data.values())
    return [s for item in data for s in _strings(item)] if isinstance(data, list) else []
