"""A hand-made guest context is live data: whatever its extensions are called, import writes
a spec that validates, with every name the spec cannot hold listed as a gap, not an import
that fails on its own output ('<imported spec>:28:3: users.bob#x ...').

The names go through the real parsers: the importer's reading of extensions.conf, then the
spec's loader and its cross-layer checks, as 'sipctl validate' runs them.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.reconciler.gitops.importer import parse_asterisk, spec_yaml
from sipctl.schemas.checks import cross_checks
from sipctl.schemas.loader import load_spec_text

SIP_CONF = "[general]\nallowguest=yes\ncontext=guests\n"
ZONE = (
    "$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\n"
    "ns1 IN A 192.0.2.1\n_sip._udp IN SRV 10 0 5060 pbx\npbx IN A 192.0.2.10\n"
)
RTP_CONF = "[general]\nrtpstart=10000\nrtpend=20000\n"

# what an admin may write as an extension: letters of every case, digits, marks and
# dialplan syntax ('#', quotes, '-', '_' first, '!'); no ',' or space, which end the name
NAME = st.text(
    alphabet=string.ascii_letters[:6] + "Dd" + string.digits[:3] + "#'\"-_.+*~!:{}",
    min_size=1,
    max_size=90,
).filter(lambda name: not name.startswith("_"))


def _extensions(names: list[str]) -> str:
    lines = [f"exten => {name},1,Dial(SIP/{100 + i})" for i, name in enumerate(names)]
    return "[guests]\n" + "\n".join(lines) + "\nexten => _.,1,Playback(bad-user)\n"


@settings(max_examples=examples(200), deadline=None)
@given(names=st.lists(NAME, min_size=1, max_size=6, unique=True))
def test_every_live_name_is_held_or_named_as_a_gap(names: list[str]) -> None:
    found = parse_asterisk(
        {"sip.conf": SIP_CONF, "extensions.conf": _extensions(names), "rtp.conf": RTP_CONF},
        "local",
        "/etc/asterisk",
    )
    data = {"version": 1, "domain": "odd.example", **found.data}
    loaded = load_spec_text(spec_yaml(data, []), source="imported.yaml")
    assert cross_checks(loaded) == []
    held = set(found.data["users"])
    for name in names:
        # a name Asterisk treats as its own (h, i, ...) is neither a name nor a gap
        named = any(repr(name) in gap for gap in found.gaps)
        assert name in held or named or name in {"a", "e", "h", "i", "o", "s", "t", "T"}, (
            name,
            found.gaps,
        )


def test_import_names_what_it_cannot_hold_and_writes_a_valid_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    etc = tmp_path / "pbx" / "etc" / "asterisk"
    etc.mkdir(parents=True)
    (etc / "sip.conf").write_text(SIP_CONF)
    (etc / "extensions.conf").write_text(_extensions(["director", "bob#x", "Director", "'q'"]))
    (etc / "rtp.conf").write_text(RTP_CONF)
    (tmp_path / "odd.zone").write_text(ZONE)
    args = ["import", "--domain", "odd.example", "--dns", "zonefile:odd.zone"]
    assert run([*args, "--asterisk", "dir:pbx", "--out", "odd.yaml"]) == 0
    err = capsys.readouterr().err
    for name in ("'bob#x'", "'Director'", "\"'q'\""):
        assert f"the guest extension {name}" in err, err
    assert yaml.safe_load((tmp_path / "odd.yaml").read_text())["users"] == {"director": "100"}
    assert run(["validate", "-f", "odd.yaml"]) == 0


def test_a_trunks_password_in_a_gap_is_not_written_into_the_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A gap quotes the live guest extension, and an admin's trunk dial string holds its
    password: the spec file, made to be committed, hides it as the printed spec does."""
    monkeypatch.chdir(tmp_path)
    etc = tmp_path / "pbx" / "etc" / "asterisk"
    etc.mkdir(parents=True)
    (etc / "sip.conf").write_text(SIP_CONF)
    (etc / "extensions.conf").write_text(
        "[guests]\nexten => director,1,Dial(SIP/105)\n"
        "exten => _00X.,1,Set(TRUNK_PASSWORD=Tru5tMeToo)\n"
        "same => n,Dial(IAX2/trunk:Tru5tMeNot@192.0.2.1/${EXTEN})\n"
        "exten => _.,1,Playback(bad-user)\n"
    )
    (etc / "rtp.conf").write_text(RTP_CONF)
    (tmp_path / "odd.zone").write_text(ZONE)
    args = ["import", "--domain", "odd.example", "--dns", "zonefile:odd.zone"]
    assert run([*args, "--asterisk", "dir:pbx", "--out", "odd.yaml"]) == 0
    assert run([*args, "--asterisk", "dir:pbx"]) == 0
    out, err = capsys.readouterr()
    written = (tmp_path / "odd.yaml").read_text()
    assert "Dial(IAX2/trunk:***@192.0.2.1/${EXTEN})" in written
    assert "Tru5tMeNot" not in written + out + err
    # a value whose key says it is a secret, as the read gate hides it
    assert "Set(TRUNK_PASSWORD=***)" in written and "Tru5tMeToo" not in written + out + err
    assert run(["validate", "-f", "odd.yaml"]) == 0


def test_a_pbx_without_an_rtp_range_imports_as_a_valid_spec_that_adopt_does_not_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No rtp.conf: Asterisk's own 5000-31000 holds udp/5060, which a spec refuses."""
    monkeypatch.chdir(tmp_path)
    etc = tmp_path / "pbx" / "etc" / "asterisk"
    etc.mkdir(parents=True)
    (etc / "sip.conf").write_text(SIP_CONF)
    (etc / "extensions.conf").write_text(_extensions(["director"]))
    (tmp_path / "odd.zone").write_text(ZONE)
    args = ["import", "--domain", "odd.example", "--dns", "zonefile:odd.zone"]
    assert run([*args, "--asterisk", "dir:pbx"]) == 0
    out, err = capsys.readouterr()
    assert "5000-31000 (Asterisk default: rtp.conf sets none), holds the SIP port udp/5060" in err
    assert "<imported spec>" not in err
    assert yaml.safe_load(out)["asterisk"]["rtp"] == {"start": 10000, "end": 20000}
    assert run([*args, "--asterisk", "dir:pbx", "--out", "odd.yaml", "--adopt"]) == 1
    assert "--adopt stopped before changing anything" in capsys.readouterr().err
    assert sorted(p.name for p in etc.iterdir()) == ["extensions.conf", "sip.conf"]
    assert run(["validate", "-f", "odd.yaml"]) == 0


def test_what_a_hand_made_context_reaches_beyond_its_names_is_listed() -> None:
    """A pattern that dials anything, a name sent to a trunk: sipctl's context will not have
    them (a guest reaches declared names only), and import says so; the reject path is not
    listed, as sipctl's own replaces it."""
    extensions = (
        "[guests]\nexten => director,1,Dial(SIP/105)\n"
        "exten => _X.,1,Dial(SIP/${EXTEN})\n"
        "exten => eve,1,Answer()\n same => n,Dial(SIP/trunk/0049123)\n"
        "exten => _.,1,Playback(bad-user)\n same => n,Hangup()\n"
    )
    files = {"sip.conf": SIP_CONF, "extensions.conf": extensions, "rtp.conf": RTP_CONF}
    found = parse_asterisk(files, "local", "/etc/asterisk")
    assert found.data["users"] == {"director": "105"}
    listed = [gap for gap in found.gaps if gap.startswith("the guest extension")]
    assert len(listed) == 2, found.gaps
    assert "'_X.' (Dial(SIP/${EXTEN}))" in listed[0]
    assert "'eve' (Answer(); Dial(SIP/trunk/0049123))" in listed[1]


def test_of_two_spellings_of_a_name_the_lower_case_one_is_held() -> None:
    """sipctl writes names in lower case: a hand-added 'DIRECTOR' above its 'director' is
    the one named as a gap, whichever comes first."""
    files = {
        "sip.conf": SIP_CONF,
        "extensions.conf": _extensions(["DIRECTOR", "director"]),
        "rtp.conf": RTP_CONF,
    }
    found = parse_asterisk(files, "local", "/etc/asterisk")
    assert found.data["users"] == {"director": "101"}
    assert any("'DIRECTOR'" in gap and "from 'director'" in gap for gap in found.gaps)


def test_a_hosts_domain_no_customer_file_can_hold_is_a_gap() -> None:
    """A hosting PBX's domains context is live data too: a routed 'domain' that is no host
    name is named, and the other customers are imported (it failed the whole import)."""
    domains = "".join(
        f"exten => {d},1,Goto(sipctl-guest-{d.rstrip('.')},${{SIPCTL_NAME}},1)\n"
        for d in ("bad_dom", "bad_dom.", "good.example", "good.example.")
    )
    guests = "[sipctl-guest-good.example]\nexten => director,1,Dial(SIP/105)\n"
    extensions = _extensions(["office"]) + "[sipctl-domains]\n" + domains + guests
    files = {"sip.conf": SIP_CONF, "extensions.conf": extensions, "rtp.conf": RTP_CONF}
    found = parse_asterisk(files, "local", "/etc/asterisk")
    assert sorted(found.customers) == ["good.example"]
    assert any("routes 'bad_dom'" in gap for gap in found.gaps), found.gaps


def test_the_later_steps_of_a_kept_name_and_unread_lines_are_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kept name's Voicemail after its Dial: the spec holds the dial target only, so an
    apply removes it, and import says so; an exten line it cannot read is named too, not
    passed over. sipctl's own steps around a Dial (Set, Log, its unavailable path) are not."""
    monkeypatch.chdir(tmp_path)
    etc = tmp_path / "pbx" / "etc" / "asterisk"
    etc.mkdir(parents=True)
    (etc / "sip.conf").write_text(SIP_CONF)
    (etc / "extensions.conf").write_text(
        "[guests]\nexten => director,1,Dial(PJSIP/105)\n same => n,Voicemail(105)\n"
        "exten => alex,1,Set(SIPCTL_IP=${CHANNEL(peerip)})\n same => n,Log(NOTICE,x)\n"
        " same => n,Dial(SIP/106,30)\n"
        " same => n,Goto(sipctl#unavailable,1)\n"
        "exten => lost-line\n"
        "exten => _.,1,Playback(bad-user)\n"
    )
    (etc / "rtp.conf").write_text(RTP_CONF)
    (tmp_path / "odd.zone").write_text(ZONE)
    args = ["import", "--domain", "odd.example", "--dns", "zonefile:odd.zone"]
    assert run([*args, "--asterisk", "dir:pbx", "--out", "odd.yaml"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "the guest extension 'director' keeps director -> 105; its later steps Voicemail(105) "
        "are not held by the spec and an apply removes them" in err
    ), err
    assert "'alex' keeps" not in err, err
    assert "the guest context's line 'exten => lost-line' is not read by import" in err, err
    header = (tmp_path / "odd.yaml").read_text()
    assert "Voicemail(105)" in header and "exten => lost-line" in header
    assert yaml.safe_load(header)["users"] == {"director": "105", "alex": "106"}
    assert run(["validate", "-f", "odd.yaml"]) == 0


# applications an admin may add before and after a kept name's Dial: what sipctl's own
# dialplan does around a name (its SIPCTL_ variables, a log line), steps that do nothing to
# the call, the name's own end after the Dial (a sound, hang up); the others (any other
# Set: a caller ID, a variable) the spec does not hold
STEP = st.sampled_from(
    ["Voicemail(105)", "Macro(record)", "AGI(x.agi)", "Hangup()", "Set(A=1)", "Log(NOTICE,x)",
     "Set(CALLERID(name)=Sales)", "Set(SIPCTL_IP=${CHANNEL(peerip)})", "NoOp(x)",
     "Playback(sorry)", "Answer()"]
)  # fmt: skip
_SILENT = ("Log", "Set(SIPCTL_", "NoOp")  # held wherever they are
_ENDING = ("Hangup", "Playback", "Answer")  # held after the Dial only


@settings(max_examples=examples(100), deadline=None)
@given(before=st.lists(STEP, max_size=3), steps=st.lists(STEP, max_size=4))
def test_every_step_of_a_kept_name_is_held_or_named_as_a_gap(
    before: list[str], steps: list[str]
) -> None:
    """Through the real reading of extensions.conf: whatever comes before or after a kept
    name's Dial is one of the steps sipctl's own dialplan has, or a gap names it; the spec
    still validates. A Set(CALLERID(name)=Sales) before the Dial was dropped unnamed."""
    first = "".join(f"exten => director,{i + 1},{step}\n" for i, step in enumerate(before))
    dial = f"exten => director,{len(before) + 1},Dial(SIP/105)\n"
    later = "".join(f" same => n,{step}\n" for step in steps)
    extensions = f"[guests]\n{first}{dial}{later}"
    files = {"sip.conf": SIP_CONF, "extensions.conf": extensions, "rtp.conf": RTP_CONF}
    found = parse_asterisk(files, "local", "/etc/asterisk")
    assert found.data["users"] == {"director": "105"}
    kept = [gap for gap in found.gaps if "keeps director -> 105" in gap]
    lost = [s for s in before if not s.startswith(_SILENT)]
    lost += [s for s in steps if not s.startswith(_SILENT + _ENDING)]
    assert len(kept) == (1 if lost else 0), found.gaps
    if lost:
        assert "; ".join(lost)[:120] in kept[0], kept  # each named, in order (cut as shown)
    data = {"version": 1, "domain": "odd.example", **found.data}
    assert cross_checks(load_spec_text(spec_yaml(data, []), source="imported.yaml")) == []


def test_a_caller_id_set_before_the_dial_is_named_as_a_gap() -> None:
    """The tryout's context: imported as ``ok: '112'``, the Set passed over in silence."""
    extensions = "[guests]\nexten => ok,1,Set(CALLERID(name)=Sales)\n same => n,Dial(PJSIP/112)\n"
    files = {"sip.conf": SIP_CONF, "extensions.conf": extensions, "rtp.conf": RTP_CONF}
    found = parse_asterisk(files, "local", "/etc/asterisk")
    assert found.data["users"] == {"ok": "112"}
    assert (
        "the guest extension 'ok' keeps ok -> 112; its other steps Set(CALLERID(name)=Sales) "
        "are not held by the spec and an apply removes them"
    ) in found.gaps, found.gaps


PHONES = st.lists(st.integers(100, 999).map(str), min_size=1, max_size=4, unique=True)


@settings(max_examples=examples(100), deadline=None)
@given(
    phones=PHONES,
    timeout=st.sampled_from(["", ",20", ",,tT", ",30,tT"]),
    channel=st.sampled_from(["PJSIP", "SIP"]),
)
def test_a_dial_of_several_phones_rings_them_all_or_is_a_gap(
    phones: list[str], timeout: str, channel: str
) -> None:
    """Dial(PJSIP/a&PJSIP/b) without a timeout was imported as the name ringing a alone, no
    gap listed. Through the real reading of extensions.conf: the spec holds every phone (a
    ring group, which needs the timeout), or a gap says the name rings one and how to ring
    them all; the spec validates either way."""
    dial = "&".join(f"{channel}/{phone}" for phone in phones)
    extensions = f"[guests]\nexten => sales,1,Dial({dial}{timeout})\n"
    files = {"sip.conf": SIP_CONF, "extensions.conf": extensions, "rtp.conf": RTP_CONF}
    found = parse_asterisk(files, "local", "/etc/asterisk")
    held = found.data["users"]["sales"]
    rings = held["ring"] if isinstance(held, dict) else [held]
    gaps = [gap for gap in found.gaps if "'sales'" in gap]
    if rings == phones:
        assert gaps == [], gaps
    else:
        assert rings == phones[:1] and len(phones) > 1, held
        (gap,) = gaps
        assert f"rings {', '.join(phones)} at once with no timeout" in gap, gap
        assert f"after an apply it rings {phones[0]} only" in gap, gap
        assert f"users.sales: {{ring: [{', '.join(phones)}], timeout: SECONDS}}" in gap, gap
    assert rings == phones or timeout in ("", ",,tT")  # one held only for want of a timeout
    data = {"version": 1, "domain": "odd.example", **found.data}
    assert cross_checks(load_spec_text(spec_yaml(data, []), source="imported.yaml")) == []
