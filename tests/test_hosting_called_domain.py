"""Where the dialplan reads the called domain of a guest INVITE (measured on Asterisk 22).

Hosting routes a guest call by the domain that was called, so these are the facts it is
built on: what ``${SIPDOMAIN}``, the request URI's host and the To header's host are when a
caller sends them alike, differently, in upper case, with a trailing dot, or as an address;
and that a dispatch ``Goto`` which passes the caller's name on to another context cannot be
steered into another context, nor write caller text into the log fail2ban reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fixtures.asterisk import AsteriskInstance, running_asterisk
from fixtures.sip_client import SipCaller

GUEST = """
[anonymous]
type=endpoint
context=measure
disallow=all
allow=ulaw,alaw
allow_overlap=no
"""

MEASURE = r"""
[measure]
exten => _-.,1,Set(RURI=${PJSIP_PARSE_URI(${CHANNEL(pjsip,request_uri)},host)})
 same => n,Set(TO=${PJSIP_PARSE_URI(${PJSIP_HEADER(read,To)},host)})
 same => n,Log(NOTICE,Seen sipdomain=${SIPDOMAIN} ruri=${RURI} to=${TO})
 same => n,Hangup()

[naive]
exten => _-.,1,Goto(inside,${EXTEN},1)

[guarded]
exten => _-.,1,GotoIf($[${FIELDQTY(EXTEN,\,)} > 1]?refused,1)
 same => n,Goto(inside,${EXTEN},1)
exten => refused,1,Hangup()

[inside]
exten => _-.,1,Log(NOTICE,Inside reached)
 same => n,Hangup()

[other]
exten => _-.,1,Log(NOTICE,Other reached)
 same => n,Hangup()
"""


@pytest.fixture(scope="module")
def pbx() -> Iterator[AsteriskInstance]:
    with running_asterisk() as instance:
        pjsip = (instance.config_dir / "pjsip.conf").read_text()
        (instance.config_dir / "pjsip.conf").write_text(pjsip + GUEST)
        extensions = (instance.config_dir / "extensions.conf").read_text()
        (instance.config_dir / "extensions.conf").write_text(extensions + MEASURE)
        instance.rx("module reload res_pjsip.so")
        instance.rx("dialplan reload")
        # PJSIP_HEADER (Debian's Asterisk loads it; the test PBX's short list does not)
        instance.rx("module load res_pjsip_header_funcs.so")
        yield instance


def _seen(pbx: AsteriskInstance, domain: str, to_domain: str = "") -> str:
    offset = pbx.log_size()
    with SipCaller(pbx.sip_port) as caller:
        caller.invite("director", domain=domain, to_domain=to_domain, timeout=3)
    text = pbx.wait_log(r"Seen sipdomain=", offset)
    found = re.search(r"Seen (sipdomain=.*)", text)
    assert found is not None
    return found.group(1).strip()


@pytest.mark.parametrize(
    ("domain", "to_domain", "seen"),
    [
        ("a.example", "", "sipdomain=a.example ruri=a.example to=a.example"),
        # A caller may send a To of another domain: SIPDOMAIN is the request URI's.
        ("a.example", "b.example", "sipdomain=a.example ruri=a.example to=b.example"),
        # The caller's case and a trailing dot are kept: a dispatch must fold both.
        ("A.Example", "", "sipdomain=A.Example ruri=A.Example to=A.Example"),
        ("a.example.", "", "sipdomain=a.example. ruri=a.example. to=a.example."),
        # Dialled by address, the domain is the address.
        ("127.0.0.1", "", "sipdomain=127.0.0.1 ruri=127.0.0.1 to=127.0.0.1"),
    ],
)
def test_the_called_domain_is_the_request_uris_host(
    pbx: AsteriskInstance, domain: str, to_domain: str, seen: str
) -> None:
    assert _seen(pbx, domain, to_domain) == seen


FORGED = "x%2Cbad%0AWrong%20call%20IP=6.6.6.6"


def _log_of_call(pbx: AsteriskInstance, context: str, name: str) -> str:
    pjsip = (pbx.config_dir / "pjsip.conf").read_text()
    (pbx.config_dir / "pjsip.conf").write_text(
        pjsip.replace("context=measure", f"context={context}")
    )
    pbx.rx("module reload res_pjsip.so")
    try:
        offset = pbx.log_size()
        with SipCaller(pbx.sip_port) as caller:
            caller.invite(name, domain="a.example", timeout=3)
        return pbx.log_since(offset)
    finally:
        (pbx.config_dir / "pjsip.conf").write_text(pjsip)
        pbx.rx("module reload res_pjsip.so")


def test_a_goto_that_passes_the_callers_name_on_can_be_made_to_log_caller_lines(
    pbx: AsteriskInstance,
) -> None:
    """``Goto(inside,${EXTEN},1)`` splits what it is given at commas, after the name is put
    in: PJSIP unescapes %2C and %0A, so the name ``x,bad<LF>Wrong call IP=6.6.6.6`` makes
    Goto look for the label ``bad<LF>Wrong call...`` and log it, a line of the caller's in
    the messages log fail2ban reads. The context is never left (it comes first)."""
    text = _log_of_call(pbx, "naive", FORGED)
    assert "\nWrong call IP=6.6.6.6" in text
    assert "Other reached" not in text


def test_a_goto_guarded_by_a_comma_count_logs_no_caller_text(pbx: AsteriskInstance) -> None:
    """``FIELDQTY(EXTEN,\\,)`` counts the name's comma-separated fields without reading the
    name into an expression: a name with a comma is refused before Goto sees it, and a
    plain name still passes."""
    forged = _log_of_call(pbx, "guarded", FORGED)
    assert "6.6.6.6" not in forged
    assert "label" not in forged  # Goto never saw it
    plain = _log_of_call(pbx, "guarded", "plain")
    assert "Ext. plain: Inside reached" in plain
