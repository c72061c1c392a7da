"""Cross-layer refusals that say what to change in the spec as it is: outbound without the
PJSIP Asterisk layer (a chan_sip asterisk section is told to set its channel, not to add a
section), a page that lists one name twice."""

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


@pytest.mark.parametrize("names", [["director", "director"], ["DIRECTOR", "meet", "Director"]])
def test_a_page_lists_each_name_once_in_any_case(names: list[str]) -> None:
    """Callers reach a name in any case, so 'DIRECTOR' and 'director' are one callee: the
    page would show two buttons calling it."""
    spec = (
        "version: 1\ndomain: example.org\ntransports: {udp: {}, wss: {}}\n"
        "servers: [{host: pbx.example.org, ipv4: [192.0.2.1]}]\n"
        "users: {director: 105}\nrooms: {meet: {}}\n"
        "asterisk: {target: 'dir:p', tls: {cert_file: /etc/a.pem, key_file: /etc/a.key}}\n"
        f"webrtc: {{page: {{names: [{', '.join(names)}]}}}}\n"
    )
    problems = cross_checks(load_spec_text(spec, source="x.yaml"))
    assert len(problems) == 1 and "is listed already (x.yaml:" in problems[0], problems
