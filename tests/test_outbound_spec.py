"""outbound without the PJSIP Asterisk layer: the refusal says what to change in the spec
as it is (a chan_sip asterisk section is told to set its channel, not to add a section)."""

from __future__ import annotations

import pytest

from sipctl.schemas.checks import cross_checks
from sipctl.schemas.loader import load_spec_text

HEAD = "version: 1\ndomain: example.org\noutbound: {}\n"


@pytest.mark.parametrize(
    ("asterisk", "told"),
    [
        ("", "add an asterisk section (its channel is pjsip unless set)"),
        ("asterisk: {target: 'dir:pbx', channel: sip}\n", "asterisk.channel is sip (x.yaml:4:"),
    ],
)
def test_outbound_without_pjsip_says_what_to_change(asterisk: str, told: str) -> None:
    problems = cross_checks(load_spec_text(HEAD + asterisk, source="x.yaml"))
    assert len(problems) == 1 and told in problems[0], problems
    assert cross_checks(load_spec_text(HEAD + "asterisk: {target: 'dir:pbx'}\n")) == []
