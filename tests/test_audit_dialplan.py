"""The live-dialplan half of audit, on output captured from Asterisk 22 (pure, fast)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipctl.reconciler.audit.dialplan import Extension, Step, parse_dialplan_show
from sipctl.reconciler.audit.reachability import (
    desired_steps,
    judge,
    referenced_contexts,
    step_verdict,
)
from sipctl.reconciler.render.asterisk import dialplan_text
from sipctl.schemas.loader import load_spec_text

DATA = Path(__file__).parent / "data"
SPEC = load_spec_text(
    "version: 1\ndomain: mysite.ru\nusers: {director: 105, alex: 106, '101': 101}\nasterisk: {}\n",
    source="t.yaml",
    base_dir=Path("/tmp"),
).spec
WANTED = desired_steps(dialplan_text(SPEC), "guest-call")


def test_the_parser_reads_extensions_steps_sources_includes_and_switches() -> None:
    contexts = parse_dialplan_show((DATA / "asterisk-22-dialplan-holes.txt").read_text())
    guest = contexts["guest-call"]
    assert set(contexts) == {"guest-call", "default"}
    assert guest.extensions["director"].steps[3] == Step(
        4, "Dial", "PJSIP/105,30", "extensions_sipctl.conf:7"
    )
    assert [s.text for s in guest.extensions["108"].steps] == [
        "System(rm)",
        "Macro(foo,a,b)",
        "Playback(x)",
    ]
    assert guest.extensions["_011X."].source == "pbx_config"
    assert [i.target for i in guest.includes] == ["default"]
    assert referenced_contexts(guest) == ["default", "macro-foo"]
    plus = parse_dialplan_show((DATA / "asterisk-22-dialplan-admin-plus.txt").read_text())
    assert plus["guest-call"].extensions["555"].source == "extensions.conf:16"
    assert [s.spec for s in plus["guest-call"].switches] == ["Realtime/foo@bar"]


def test_what_sipctl_renders_is_clean() -> None:
    text = (DATA / "asterisk-22-dialplan-holes.txt").read_text()
    contexts = parse_dialplan_show(text)
    guest = contexts["guest-call"]
    for name in ("_011X.", "107", "108"):
        del guest.extensions[name]
    guest.includes.clear()
    assert judge("guest-call", contexts, WANTED) == []


def test_every_hole_is_named_with_its_line_and_fix() -> None:
    contexts = parse_dialplan_show((DATA / "asterisk-22-dialplan-holes.txt").read_text())
    findings = {f.where: f for f in judge("guest-call", contexts, WANTED)}
    pattern = findings["context guest-call, extension _011X. [pbx_config]"]
    assert pattern.code == "dialplan-pattern" and pattern.severity == "critical"
    assert "Dial(PJSIP/${EXTEN}@trunk)" in pattern.title and "runtime" in pattern.fix
    internal = findings["context guest-call, extension 107 [pbx_config]"]
    assert internal.code == "dialplan-extension" and internal.severity == "critical"
    assert any("Dial(PJSIP/105,20)" in d for d in internal.details)  # followed into default
    assert findings["context guest-call, extension 108 [pbx_config]"].severity == "critical"
    include = findings["context guest-call, include => default [pbx_config]"]
    assert include.code == "dialplan-include" and include.severity == "critical"
    plus = parse_dialplan_show((DATA / "asterisk-22-dialplan-admin-plus.txt").read_text())
    named = {f.code: f for f in judge("guest-call", plus, WANTED)}
    assert "extensions.conf:16" in named["dialplan-extension"].where
    assert "extensions.conf:16" in named["dialplan-extension"].fix
    assert named["dialplan-switch"].severity == "critical"


def test_a_changed_step_of_a_declared_name_is_named() -> None:
    contexts = parse_dialplan_show((DATA / "asterisk-22-dialplan-holes.txt").read_text())
    guest = contexts["guest-call"]
    for name in ("_011X.", "107", "108"):
        del guest.extensions[name]
    guest.includes.clear()
    steps = guest.extensions["alex"].steps
    steps[3] = Step(4, "Dial", "PJSIP/trunk/0049301234", "extensions.conf:40")
    (finding,) = judge("guest-call", contexts, WANTED)
    assert finding.code == "dialplan-step" and finding.severity == "critical"
    assert "priority 4 [extensions.conf:40]" in finding.where


@given(st.sampled_from(["Dial", "dial", "System", "DISA", "VoiceMailMain", "Goto", "Playback"]))
def test_every_application_has_a_severity(app: str) -> None:
    verdict = step_verdict(Step(1, app, "x", "f:1"))
    assert verdict.severity in {"critical", "high", "medium"}
    assert app in verdict.what


@pytest.mark.parametrize(
    ("name", "exten", "matches"),
    [
        ("105", "105", True),
        ("1-05", "105", True),  # Asterisk ignores '-' in names
        ("_1XX", "105", True),
        ("_1XX", "1050", False),
        ("_NXX", "105", False),
        ("_nxx", "205", True),
        ("_X.", "1", False),  # '.' is one or more
        ("_X.", "12", True),
        ("_0[1-3]Z.", "0215", True),
        ("_0[1-3]Z.", "0405", False),
        ("_!", "", True),
    ],
)
def test_extensions_match_as_asterisk_matches_them(name: str, exten: str, matches: bool) -> None:
    assert Extension(name).matches(exten) is matches


def test_a_dial_to_a_phone_is_told_from_one_that_goes_out() -> None:
    def outside(args: str, exten: str | None = None) -> bool:
        return step_verdict(Step(1, "Dial", args, "f:1"), exten).outside

    assert not outside("PJSIP/105,20") and not outside("PJSIP/105&SIP/alex&Local/106@default")
    assert not outside("PJSIP/${EXTEN},20", "105")  # the extension a Goto names
    assert outside("PJSIP/${EXTEN},20")  # whatever name the caller dialled: a trunk's too
    assert outside("PJSIP/${EXTEN}@trunk") and outside("SIP/provider/0049301234")
    assert outside("DAHDI/g1/0049301234") and outside("PJSIP/105,20,T")  # T: caller transfers
    assert outside("Local/${EXTEN}@outbound")
