"""A PBX host with ``unknown_callers: challenge``, against the real Asterisk 22.

The host serves a.example (director 105, alex 106, rooms meeting and boardroom) and
b.example (director 105, room meeting). Each customer has an identify section of its own
whose ``match_request_uri`` takes its names at its domain only. Measured here: what
res_pjsip's request_uri identifier sees (the request URI printed as the caller wrote its
host: any case, a trailing dot, a port, parameters), that a declared name at its own
domain reaches the guest context (and rings that customer's phone), and that everything
else (a name of a at b's domain, an extension, another domain, the PBX's address, a domain
that only begins like a customer's) finds no endpoint: 401, like an office phone's
extension, and no ``Wrong call`` line.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from asterisk_helpers import pending_changes
from fixtures.asterisk import AsteriskInstance
from fixtures.fail2ban_reader import fail2ban_regex
from fixtures.hosting import (
    TWO_CUSTOMERS,
    host_spec,
    two_phone_pbx,
    write_hoster,
)
from fixtures.rtp_phone import AnsweringPhone
from fixtures.sip_client import SipCaller

from sipctl.reconciler.render.fail2ban import HOSTING_FILTER_TEXT

pytestmark = pytest.mark.asterisk

# The admin's order that puts the request_uri identifier (the guests' identify sections)
# before username (a phone's From user): docs/enumeration.md.
URI_FIRST = "endpoint_identifier_order=ip,request_uri,username,anonymous"


@pytest.fixture(scope="module")
def hoster(hosting_pbx: AsteriskInstance, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _apply_hoster(hosting_pbx, tmp_path_factory.mktemp("hoster-challenge"))


@pytest.fixture(scope="module")
def uri_first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskInstance]:
    """Another PBX, its admin's [global] ordering request_uri before username, applied."""
    with two_phone_pbx(pjsip_global=URI_FIRST) as instance:
        _apply_hoster(instance, tmp_path_factory.mktemp("hoster-uri-first"))
        yield instance


def _apply_hoster(hosting_pbx: AsteriskInstance, directory: Path) -> Path:
    asterisk = {**hosting_pbx.spec_section(), "unknown_callers": "challenge"}
    return write_hoster(directory, host_spec(hosting_pbx, asterisk=asterisk), TWO_CUSTOMERS)


def test_the_plan_is_done_and_each_customer_has_its_identify_section(
    hosting_pbx: AsteriskInstance, hoster: Path
) -> None:
    assert pending_changes(hoster / "pbx1.yaml") == []
    for domain in ("a.example", "b.example"):
        shown = hosting_pbx.rx(f"pjsip show identify sipctl-guest-names-{domain}")
        assert "match_request_uri" in shown and "sipctl-guest" in shown, shown


@pytest.mark.parametrize(
    ("user", "domain", "which"),
    [
        ("director", "a.example", 0),
        ("Director", "A.Example.", 0),  # any case, a trailing dot
        ("DIRECTOR", "b.example:{port};transport=udp", 1),  # a port and a parameter
        ("%64irector", "B.EXAMPLE", 1),  # an escaped user part is printed unescaped
    ],
)
def test_a_declared_name_at_its_own_domain_rings_its_customers_phone(
    hosting_pbx: AsteriskInstance,
    hoster: Path,
    hosting_phones: tuple[AnsweringPhone, AnsweringPhone],
    user: str,
    domain: str,
    which: int,
) -> None:
    with SipCaller(hosting_pbx.sip_port) as caller:
        result = caller.invite(user, domain=domain.format(port=hosting_pbx.sip_port), timeout=8.0)
    assert 200 in result.statuses, result.statuses
    assert len(hosting_phones[which].invites) == 1 and not hosting_phones[1 - which].invites


@pytest.mark.parametrize(
    ("user", "domain"),
    [
        ("alex", "b.example"),  # a's name at b's domain
        ("boardroom", "b.example"),  # a's room at b's domain
        ("105", "a.example"),  # an extension
        ("nobody", "a.example"),
        ("director", "c.example"),  # no customer's domain
        ("director", "127.0.0.1"),  # the PBX's address
        ("director", "a.example.c.example"),  # begins like a customer's domain
        ("director", "xa.example"),  # ends like one
        ("director", "a.examplex"),
        ("director", "pbx1.hoster.example"),  # the host's own domain has no names
    ],
)
def test_anything_else_is_challenged_and_writes_no_wrong_call_line(
    hosting_pbx: AsteriskInstance,
    hoster: Path,
    hosting_phones: tuple[AnsweringPhone, AnsweringPhone],
    user: str,
    domain: str,
) -> None:
    offset = hosting_pbx.log_size()
    with SipCaller(hosting_pbx.sip_port) as caller:
        invited = caller.invite(user, domain=domain, timeout=4.0)
    with SipCaller(hosting_pbx.sip_port, transport="tcp") as caller:
        asked = caller.options(user, domain=domain)
    assert invited.final == 401 and asked.final == 401, (invited.statuses, asked.statuses)
    assert not hosting_phones[0].invites and not hosting_phones[1].invites
    hosting_pbx.wait_log(r"No matching endpoint found", offset)
    assert "Wrong call" not in hosting_pbx.log_since(offset)


def test_a_declared_name_answers_options_like_the_guest_endpoint(
    hosting_pbx: AsteriskInstance, hoster: Path
) -> None:
    with SipCaller(hosting_pbx.sip_port) as caller:
        assert caller.options("meeting", domain="b.example").final == 200
        assert caller.options("boardroom", domain="b.example").final == 401


def test_the_rendered_pattern_is_what_asterisk_shows(
    hosting_pbx: AsteriskInstance, hoster: Path
) -> None:
    shown = hosting_pbx.rx("pjsip show identify sipctl-guest-names-b.example")
    text = (hosting_pbx.config_dir / "pjsip_sipctl.conf").read_text()
    wanted = re.search(r"\[sipctl-guest-names-b\.example\][^\[]*match_request_uri=(\S+)", text)
    assert wanted is not None, text
    assert wanted.group(1) in shown, shown


def _options(caller: SipCaller, user: str, domain: str, from_user: str, extra: str = "") -> int:
    """OPTIONS sip:user@domain with From sip:from_user@domain: the final status."""
    token = f"{random.getrandbits(48):x}"
    caller._send(
        caller._request(
            "OPTIONS", user, domain=domain, from_user=from_user, call_id=token, cseq=1,
            branch=f"z9hG4bK{token}", tag=token, from_host=domain, extra=extra,
        )
    )  # fmt: skip
    answer = caller._receive(3.0)
    assert answer is not None
    return int(answer.split(" ", 2)[1])


FORGED = (
    'Authorization: Digest username="{ext}", realm="asterisk", nonce="0", '
    'uri="sip:director@a.example", response="00000000000000000000000000000000"'
)


def test_with_the_default_order_a_phones_extension_in_from_still_stands_out(
    hosting_pbx: AsteriskInstance, hoster: Path
) -> None:
    """Measured: the username identifier comes before request_uri, so a declared name
    called with a phone's extension in From is that phone's request (401), with any other
    From a guest's (200): challenge alone does not hide the extensions from this probe. A
    forged Authorization header tells nothing (auth_username is not tried before)."""
    with SipCaller(hosting_pbx.sip_port) as caller:
        known = {_options(caller, "director", "a.example", ext) for ext in ("101", "105", "106")}
        unknown = {_options(caller, "director", "a.example", ext) for ext in ("102", "zz")}
        forged = {
            _options(caller, "director", "a.example", "zz", FORGED.format(ext=ext))
            for ext in ("105", "102")
        }
    assert (known, unknown, forged) == ({401}, {200}, {200})


def test_request_uri_before_username_hides_it_and_phones_still_work(
    uri_first: AsteriskInstance,
) -> None:
    """With the admin's order putting request_uri before username: a declared name finds
    the guest endpoint whatever the From (200), anything else is challenged (401), a phone
    registers (baresip as 106) and an authenticated phone's call rings its colleague."""
    from fixtures.baresip import baresip_phone

    hosting_pbx = uri_first
    assert URI_FIRST.split("=")[1] in hosting_pbx.rx("pjsip show settings")
    with SipCaller(hosting_pbx.sip_port) as caller:
        declared = {_options(caller, "director", "a.example", e) for e in ("105", "102", "zz")}
        other = {_options(caller, e, "a.example", e) for e in ("105", "102")}
        other |= {_options(caller, "director", "b.example.x", "105")}
    assert (declared, other) == ({200}, {401})
    registrar = f"127.0.0.1:{hosting_pbx.sip_port}"
    with baresip_phone(registrar, "106", "secret106"):
        contacts = hosting_pbx.rx("pjsip show contacts")  # registered: the phone got its 200
        assert "106/sip:" in contacts, contacts
    phone = AnsweringPhone(hosting_pbx.phone_port)
    try:
        with SipCaller(hosting_pbx.sip_port) as caller:
            call = caller.invite("105", domain="127.0.0.1", auth=("106", "secret106"))
        assert 200 in call.statuses and phone.invites, call.statuses
    finally:
        phone.close()


# What a stranger controls on both sides of the address in Asterisk's NOTICE: the From
# (display name with quotes and spaces) before it, the Call-ID (spaces and quotes accepted
# by pjsip, printed as sent: measured) after it.
HOSTILE_CALL_ID = "q) - x' failed for '6.6.6.6:1' (callid: y"
HOSTILE_FROM = "\"x' failed for '6.6.6.6:1' (callid: y) - No matching endpoint found\" <"


def test_the_jail_counts_every_challenged_stranger_by_the_real_address(
    hosting_pbx: AsteriskInstance, hoster: Path, tmp_path: Path
) -> None:
    """A challenged request leaves no Wrong call line, but Asterisk's own NOTICE ('Request
    'M' from '<From>' failed for '<addr>:port' (callid: ...) - No matching endpoint found'),
    which sipctl's filter already reads by the From's grammar: every INVITE, OPTIONS and
    REGISTER of a stranger is counted against its real address, whatever it writes into the
    From and the Call-ID."""
    offset = hosting_pbx.log_size()
    sent = 0
    with SipCaller(hosting_pbx.sip_port) as caller:
        for method, user, call_id, from_prefix in [
            ("INVITE", "nobody", "plain1", "<"),
            ("OPTIONS", "105", "plain2", "<"),
            ("REGISTER", "", "plain3", "<"),
            ("INVITE", "alex", HOSTILE_CALL_ID, "<"),
            ("OPTIONS", "nobody", "c5", HOSTILE_FROM),
            ("OPTIONS", "nobody", HOSTILE_CALL_ID, HOSTILE_FROM),
        ]:
            token = f"{random.getrandbits(48):x}"
            text = caller._request(
                method, user, domain="b.example", from_user="stranger", call_id=call_id,
                cseq=1, branch=f"z9hG4bK{token}", tag=token,
            )  # fmt: skip
            caller._send(text.replace("From: <", f"From: {from_prefix}", 1))
            answer = caller._receive(3.0)
            assert answer is not None and answer.startswith("SIP/2.0 401"), answer
            sent += 1
    text = hosting_pbx.wait_log(r"(?s)(No matching endpoint found.*){6}", offset)
    assert "Wrong call" not in text and "6.6.6.6" in text, text
    log = tmp_path / "messages"
    log.write_text(text)
    filter_file = tmp_path / "sipctl-asterisk.conf"
    filter_file.write_text(HOSTING_FILTER_TEXT)
    assert fail2ban_regex(log, filter_file) == ["127.0.0.1"] * sent


AUTH_FIRST = "endpoint_identifier_order=ip,username,auth_username,anonymous"


@pytest.fixture(scope="module")
def auth_first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskInstance]:
    """A PBX whose admin lists auth_username before anonymous, phone 105 identified by it."""
    with two_phone_pbx(pjsip_global=AUTH_FIRST) as instance:
        conf = instance.config_dir / "pjsip.conf"
        text = conf.read_text()
        assert "auth=105-auth\n" in text
        conf.write_text(
            text.replace("auth=105-auth\n", "auth=105-auth\nidentify_by=username,auth_username\n")
        )
        instance.rx("module reload res_pjsip.so")
        _apply_hoster(instance, tmp_path_factory.mktemp("hoster-auth-first"))
        yield instance


def test_the_audits_forged_authorization_probe_finds_auth_username_before_anonymous(
    auth_first: AsteriskInstance, hosting_pbx: AsteriskInstance, hoster: Path
) -> None:
    """The audit's own probe (run._identity_variants, probes.identity_variant_findings):
    with auth_username listed before anonymous, a forged Authorization header naming phone
    105 picks that phone (401), one naming 102 reaches the guest endpoint by the declared
    name (200): reported, with the order fix. With the stock order it tells nothing."""
    from sipctl.providers.sip_attack import SipAgent
    from sipctl.reconciler.audit import probes
    from sipctl.reconciler.audit.report import Finding
    from sipctl.reconciler.audit.run import AuditLimits, _identity_variants, _RateLimit

    limits = AuditLimits()

    def findings(instance: AsteriskInstance) -> list[Finding]:
        with SipAgent("127.0.0.1", instance.sip_port, "udp", "a.example") as agent:
            asked = _identity_variants(
                agent, "director", ["105"], ["102"], limits, time.monotonic() + 20,
                _RateLimit(limits.rate),
            )  # fmt: skip
        mine, others = asked["auth"]
        return probes.identity_variant_findings("auth", "director", mine, others, "udp")

    [found] = findings(auth_first)
    assert "forged Authorization" in found.title and "401" in found.title, found
    assert "auth_username" in found.fix
    assert findings(hosting_pbx) == []
