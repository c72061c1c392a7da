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

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from asterisk_helpers import apply_spec, pending_changes
from fixtures.asterisk import AsteriskInstance, running_asterisk
from fixtures.rtp_phone import AnsweringPhone
from fixtures.sip_client import SipCaller

pytestmark = pytest.mark.asterisk

# customer a's 105 is the phone on phone_port (PJSIP/105), customer b's the one on
# opus_phone_port (PJSIP/107).
PHONE_CONTEXTS = """
[a-phones]
exten => 105,1,Dial(PJSIP/105,20)
 same => n,Hangup()

[b-phones]
exten => 105,1,Dial(PJSIP/107,20)
 same => n,Hangup()
"""


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def pbx() -> Iterator[AsteriskInstance]:
    with running_asterisk(opus_phone=True) as instance:
        extensions = instance.config_dir / "extensions.conf"
        extensions.write_text(extensions.read_text() + PHONE_CONTEXTS)
        instance.rx("dialplan reload")
        yield instance


@pytest.fixture(scope="module")
def hoster(pbx: AsteriskInstance, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hoster-challenge")
    port = pbx.sip_port
    _write(
        directory / "pbx1.yaml",
        {
            "version": 1,
            "domain": "pbx1.hoster.example",
            "hosting": {"name": "pbx1"},
            "transports": {"udp": {"port": port}, "tcp": {"port": port}},
            "servers": [{"host": "sip.hoster.example", "ipv4": ["203.0.113.10"]}],
            "asterisk": {**pbx.spec_section(), "unknown_callers": "challenge"},
        },
    )
    for name in ("a", "b"):
        _write(
            directory / f"{name}.yaml",
            {
                "version": 1,
                "domain": f"{name}.example",
                "host": "pbx1",
                "local_context": f"{name}-phones",
                "users": {"director": 105, **({"alex": 106} if name == "a" else {})},
                "rooms": {
                    "meeting": {"max_members": 5},
                    **({"boardroom": {}} if name == "a" else {}),
                },
            },
        )
    apply_spec(directory / "pbx1.yaml")
    return directory


@pytest.fixture
def phones(pbx: AsteriskInstance) -> Iterator[tuple[AnsweringPhone, AnsweringPhone]]:
    a, b = AnsweringPhone(pbx.phone_port), AnsweringPhone(pbx.opus_phone_port)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def test_the_plan_is_done_and_each_customer_has_its_identify_section(
    pbx: AsteriskInstance, hoster: Path
) -> None:
    assert pending_changes(hoster / "pbx1.yaml") == []
    for domain in ("a.example", "b.example"):
        shown = pbx.rx(f"pjsip show identify sipctl-guest-names-{domain}")
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
    pbx: AsteriskInstance,
    hoster: Path,
    phones: tuple[AnsweringPhone, AnsweringPhone],
    user: str,
    domain: str,
    which: int,
) -> None:
    with SipCaller(pbx.sip_port) as caller:
        result = caller.invite(user, domain=domain.format(port=pbx.sip_port), timeout=8.0)
    assert 200 in result.statuses, result.statuses
    assert len(phones[which].invites) == 1 and not phones[1 - which].invites


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
    pbx: AsteriskInstance,
    hoster: Path,
    phones: tuple[AnsweringPhone, AnsweringPhone],
    user: str,
    domain: str,
) -> None:
    offset = pbx.log_size()
    with SipCaller(pbx.sip_port) as caller:
        invited = caller.invite(user, domain=domain, timeout=4.0)
    with SipCaller(pbx.sip_port, transport="tcp") as caller:
        asked = caller.options(user, domain=domain)
    assert invited.final == 401 and asked.final == 401, (invited.statuses, asked.statuses)
    assert not phones[0].invites and not phones[1].invites
    pbx.wait_log(r"No matching endpoint found", offset)
    assert "Wrong call" not in pbx.log_since(offset)


def test_a_declared_name_answers_options_like_the_guest_endpoint(
    pbx: AsteriskInstance, hoster: Path
) -> None:
    with SipCaller(pbx.sip_port) as caller:
        assert caller.options("meeting", domain="b.example").final == 200
        assert caller.options("boardroom", domain="b.example").final == 401


def test_the_rendered_pattern_is_what_asterisk_shows(pbx: AsteriskInstance, hoster: Path) -> None:
    shown = pbx.rx("pjsip show identify sipctl-guest-names-b.example")
    text = (pbx.config_dir / "pjsip_sipctl.conf").read_text()
    wanted = re.search(r"\[sipctl-guest-names-b\.example\][^\[]*match_request_uri=(\S+)", text)
    assert wanted is not None, text
    assert wanted.group(1) in shown, shown
