"""Every DNS name sipctl writes for an accepted spec fits DNS's 255 octets.

A domain or server host of up to 253 characters is a valid name alone, but sipctl writes its
own labels before them (``_sipctl-state.<domain>``, ``_sipctl-claim.<host>``,
``_acme-challenge.<name>``): a spec whose names leave no room for them is refused by
validation (``spec_rules.dns_names_fit``) with the key and the longest length allowed, never
left to crash in the renderer (it was: ``unexpected error (NameTooLong)`` at plan). Proven
here over the real spec model, the DNS renderer and dnspython. Pure and fast.
"""

from __future__ import annotations

from typing import Any

import dns.name
import pytest
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.errors import SpecError
from sipctl.providers.dns.challenge import challenge_owner
from sipctl.reconciler.dns_records import lock_owner, state_owner
from sipctl.reconciler.render.dns import render_dns
from sipctl.schemas.checks import certificate_names
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.spec import Spec

_label = st.integers(1, 63).map(lambda n: "a" * n)
# Names of 180 to 253 characters: around every limit sipctl's prefixes set.
_long_names = (
    st.lists(_label, min_size=3, max_size=6).map(".".join).filter(lambda n: 180 <= len(n) <= 253)
)


def _spec_data(domain: str, host_label: str, acme: bool) -> dict[str, Any]:
    host = f"{host_label}.{domain}"
    tls: dict[str, Any] = {
        "cert_file": "/etc/asterisk/keys/a.pem",
        "key_file": "/etc/asterisk/keys/a.key",
    }
    if acme:
        tls["acme"] = {"email": "hostmaster@example.com"}
    return {
        "version": 1,
        "domain": domain,
        "transports": {"udp": {"port": 5060}, "tls": {"port": 5061}},
        "servers": [{"host": host, "ipv4": ["192.0.2.7"]}],
        "users": {"director": 105},
        "dns": {"provider": "zonefile", "file": "z.zone", "create_file": True},
        "asterisk": {"target": "dir:pbx", "tls": tls},
    }


@settings(max_examples=examples(300), deadline=None)
@given(_long_names, st.sampled_from(["a", "pbx", "x" * 20]), st.booleans())
def test_an_accepted_spec_has_every_dns_name_within_dns_limits(
    domain: str, host_label: str, acme: bool
) -> None:
    data = _spec_data(domain, host_label, acme)
    try:
        spec = Spec.model_validate(data)
    except ValueError as refused:
        assert "at most 253" in str(refused)
        return
    owners = [r.address.name for r in render_dns(spec)]
    owners += [lock_owner(spec.domain), state_owner(spec.domain)]
    if acme:
        owners += [challenge_owner(name) for name in certificate_names(spec)]
    for owner in owners:
        dns.name.from_text(owner)  # raises NameTooLong for a name beyond 255 octets


def test_a_domain_without_room_for_sipctls_labels_is_refused_at_its_line() -> None:
    domain = ".".join(["a" * 63] * 3 + ["b" * 61])  # 253 characters: valid alone
    text = (
        f"version: 1\ndomain: {domain}\nservers:\n  - host: pbx.example.net\n"
        "    ipv4: [192.0.2.7]\ntransports:\n  udp: {port: 5060}\n"
        "dns: {provider: zonefile, file: z.zone, create_file: true}\n"
    )
    with pytest.raises(SpecError) as refused:
        load_spec_text(text, "long.yaml")
    message = str(refused.value)
    assert "long.yaml:2" in message and "domain" in message
    assert "at most 239 characters" in message
