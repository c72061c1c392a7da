"""Asterisk keeps 79 characters of an extension and of a context (measured on Asterisk 22),
so every name sipctl writes as one fits in 79 (``schemas/names.py``'s MAX_EXTENSION_LENGTH).

The measurement: a ``Goto`` to an extension of 80 characters lands on its first 79, and a
dialled name of 80 characters arrives as its first 79. On a hosting PBX each customer's
domain is an extension of the domains context (``Goto(sipctl-domains,<domain>,1)``): a
customer whose domain had 80 characters or more was never reached, every call to it a
wrong call that fail2ban counts against its callers. Such a customer file is refused, at
its ``domain`` line, and so are user names and contexts Asterisk would cut.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from fixtures.asterisk import AsteriskInstance, running_asterisk
from fixtures.properties import examples
from fixtures.sip_client import SipCaller
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.errors import SpecError
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.names import MAX_EXTENSION_LENGTH

GUEST = "\n[anonymous]\ntype=endpoint\ncontext=entry\ndisallow=all\nallow=ulaw,alaw\n"


def _domain(length: int) -> str:
    """A valid host name of exactly ``length`` characters (labels of at most 63)."""
    body = length - len(".example")
    labels, left = [], body
    while left > 63:
        labels.append("a" * 62)  # and the dot after it
        left -= 63
    labels.append("b" * left)
    name = ".".join(labels) + ".example"
    assert len(name) == length
    return name


LENGTHS = (MAX_EXTENSION_LENGTH, MAX_EXTENSION_LENGTH + 1, 99)


@pytest.fixture(scope="module")
def pbx() -> Iterator[AsteriskInstance]:
    with running_asterisk() as instance:
        pjsip = (instance.config_dir / "pjsip.conf").read_text()
        (instance.config_dir / "pjsip.conf").write_text(pjsip + GUEST)
        dialplan = (
            "\n[entry]\n"
            "exten => _-.,1,Log(NOTICE,Dialled len=${LEN(${EXTEN})})\n"
            " same => n,Goto(domains,${SIPDOMAIN},1)\n"
            "[domains]\n"
        )
        for length in LENGTHS:
            dialplan += f"exten => {_domain(length)},1,Log(NOTICE,Reached {length})\n"
            dialplan += " same => n,Hangup()\n"
        dialplan += "exten => _-.,1,Log(NOTICE,Fell through len=${LEN(${EXTEN})})\n"
        dialplan += " same => n,Hangup()\n"
        extensions = (instance.config_dir / "extensions.conf").read_text()
        (instance.config_dir / "extensions.conf").write_text(extensions + dialplan)
        instance.rx("module reload res_pjsip.so")
        instance.rx("dialplan reload")
        yield instance


def _call(pbx: AsteriskInstance, name: str, domain: str) -> list[str]:
    offset = pbx.log_size()
    with SipCaller(pbx.sip_port) as caller:
        caller.invite(name, domain=domain, timeout=3)
    text = pbx.wait_log(r"Reached \d+|Fell through", offset)
    return re.findall(r"Dialled len=\d+|Reached \d+|Fell through len=\d+", text)


@pytest.mark.parametrize("length", LENGTHS)
def test_a_goto_reaches_an_extension_of_79_characters_and_no_longer(
    pbx: AsteriskInstance, length: int
) -> None:
    seen = _call(pbx, "director", _domain(length))
    if length <= MAX_EXTENSION_LENGTH:
        assert f"Reached {length}" in seen, seen
    else:
        assert f"Fell through len={MAX_EXTENSION_LENGTH}" in seen, seen


def test_a_dialled_name_keeps_79_characters(pbx: AsteriskInstance) -> None:
    seen = _call(pbx, "1" * (MAX_EXTENSION_LENGTH + 1), "nowhere.example")
    assert f"Dialled len={MAX_EXTENSION_LENGTH}" in seen, seen


# --- the rule: nothing Asterisk would cut is accepted ------------------------------------------


def _customer(domain: str, **more: Any) -> str:
    data = {
        "version": 1,
        "domain": domain,
        "host": "pbx1",
        "local_context": "phones",
        "users": {"director": 105},
        **more,
    }
    return yaml.safe_dump(data, sort_keys=False)


@settings(max_examples=examples(40), deadline=None, derandomize=True, database=None)
@given(
    length=st.integers(min_value=12, max_value=140),
    upper=st.booleans(),
    trailing_dot=st.booleans(),
)
def test_a_customer_domain_is_accepted_exactly_when_asterisk_keeps_it_whole(
    length: int, upper: bool, trailing_dot: bool
) -> None:
    domain = _domain(length)
    written = (domain.upper() if upper else domain) + ("." if trailing_dot else "")
    text = _customer(written)
    if length <= MAX_EXTENSION_LENGTH:
        assert load_spec_text(text, source="c.yaml").spec.domain == domain
        return
    with pytest.raises(SpecError) as info:
        load_spec_text(text, source="c.yaml")
    message = "\n".join(info.value.problems or [info.value.message])
    assert message.startswith("c.yaml:2:1: domain: ") and f"has {length}" in message, message


def test_one_companys_domain_is_no_extension_and_may_be_long() -> None:
    domain = _domain(MAX_EXTENSION_LENGTH + 20)
    spec = {
        "version": 1,
        "domain": domain,
        "servers": [{"host": "pbx." + domain, "ipv4": ["203.0.113.10"]}],
        "users": {"director": 105},
    }
    assert load_spec_text(yaml.safe_dump(spec)).spec.domain == domain


@pytest.mark.parametrize(
    ("more", "where"),
    [
        ({"users": {"1" * (MAX_EXTENSION_LENGTH + 1): 105}}, "users."),
        ({"local_context": "p" * (MAX_EXTENSION_LENGTH + 1)}, "local_context: "),
    ],
)
def test_names_and_contexts_asterisk_would_cut_are_refused(
    more: dict[str, Any], where: str
) -> None:
    with pytest.raises(SpecError) as info:
        load_spec_text(_customer("alpha.example", **more), source="c.yaml")
    message = "\n".join(info.value.problems or [info.value.message])
    assert where in message and str(MAX_EXTENSION_LENGTH) in message, message
