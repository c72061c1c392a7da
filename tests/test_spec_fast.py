"""The spec checker generated from the models (schemas/spec_fast.py) agrees with pydantic.

Whenever it accepts a spec's data, pydantic accepts it too and builds an equal Spec, field by
field (tests/spec_twins.py); it accepts the ordinary specs (the examples, the README's), so a
plan of them never imports pydantic; and it is current with the models. Beside the cases
here, every spec any test loads in-process is checked the same way (conftest.py).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
from fixtures.common import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, model_validator
from spec_strategies import FULL_SPEC
from spec_twins import CHECK, twin_of

from sipctl.schemas.fast_gen import FAST_MODULE, _Writer, module_text
from sipctl.schemas.loader import _Builder
from sipctl.schemas.messages import known_keys
from sipctl.schemas.spec import Spec

# Every section and nearly every key, with values a reader must normalise: an upper-case
# domain with its trailing dot, an IPv6 address in long form, an extension written as a
# number and one with a leading zero, a server with spaces around it, a float timeout given
# as an integer.
RICH: dict[str, Any] = {
    "version": 1,
    "domain": "Sip.Example.COM.",
    "transports": {
        "udp": {"port": 5060},
        "tcp": {},
        "tls": {"port": 5061, "order": 5, "preference": 1},
        "wss": {"port": 8089, "opus": False},
    },
    "servers": [
        {
            "host": "pbx.example.com",
            "ipv4": ["203.0.113.10"],
            "ipv6": ["2001:DB8:0:0::10"],
            "priority": 10,
            "weight": 5,
        },
        {"host": "PBX2.example.com."},
    ],
    "users": {
        "director": 105,
        "0105": "0105",
        "sales": {"ring": [106, "107"], "timeout": 30, "fallback": 101},
        "support": {"ring": ["108"]},
    },
    "rooms": {"seminar": {"max_members": 5}, "all": {}},
    "dns": {
        "provider": "rfc2136",
        "zone": "example.com",
        "server": " 127.0.0.1:53 ",
        "tsig": {"name": "sipctl.", "algorithm": "hmac-sha512", "secret_env": "TSIG_SECRET"},
        "ttl": 300,
        "timeout": 3,
        "naptr_websocket": True,
    },
    "asterisk": {
        "target": "ssh://root@pbx.example.com:2222",
        "ssh": {"key_file": "~/.ssh/id_ed25519", "sudo": True, "connect_timeout": 5},
        "command": "docker exec pbx asterisk",
        "manage_transports": True,
        "guest_context": "guests",
        "local_context": "internal",
        "reject_sound": "custom/bad-user",
        "unavailable_sound": "vm-nobodyavail",
        "unknown_callers": "not-found",
        "route": "goto",
        "rtp": {"start": 10000, "end": 10100},
        "video": True,
        "tls": {
            "cert_file": "/etc/asterisk/keys/a.pem",
            "key_file": "/etc/asterisk/keys/a.key",
            "ca_list_file": "/etc/ssl/ca.pem",
            "acme": {"email": "hostmaster@example.com", "renew_days": 20},
        },
    },
    "firewall": {
        "backend": "nftables",
        "policy": "reject",
        "allow_ping": False,
        "ssh_port": 2222,
        "extra": ["tcp/443", "udp/4000:4999"],
        "confirm_seconds": 60,
    },
    "fail2ban": {
        "sshd": True,
        "maxretry": 3,
        "findtime": 60,
        "bantime": -1,
        "ignoreip": ["192.0.2.7/24", "2001:db8::1"],
    },
    "webrtc": {
        "host": "pbx.example.com",
        "page": {"title": "Call", "names": ["sales", "seminar"]},
        "publish": "local:/var/www/html/call",
    },
}
ZONEFILE = {**RICH, "dns": {"provider": "zonefile", "file": "z.zone", "reload_command": "rndc"}}
ROUTE53 = {
    **RICH,
    "dns": {
        "provider": "octodns",
        "zone": "example.com",
        "octodns": {
            "class": "octodns_route53.Route53Provider",
            "access_key_id": "env/AWS_ACCESS_KEY_ID",
            "secret_access_key": "env/AWS_SECRET_ACCESS_KEY",
            "max_changes": 500,
            "client_max_attempts": 3.5,
            "strict_supports": False,
            "regions": ["eu-west-1", 2, True, 1.5],
            "tags": {"team": "voice", "cost": 7},
        },
    },
}


def spec_data(path: Path) -> Any:
    """The plain data the loader hands the checker (the loader's own YAML pass)."""
    return _Builder(str(path)).document(path.read_text(encoding="utf-8"))


def test_the_generated_checker_is_current() -> None:
    assert FAST_MODULE.read_text(encoding="utf-8") == module_text(), (
        "schemas/spec_fast.py is out of date: run python -m sipctl.schemas.fast_gen"
    )


@pytest.mark.parametrize(
    "name", ["mysite.yaml", "bind.yaml", "hosted-pbx.yaml", "gitops/sipctl.yaml"]
)
def test_ordinary_specs_are_built_without_pydantic(name: str) -> None:
    """The examples (mysite.yaml is the README's) are built by the checker, equal to
    pydantic's Spec."""
    data = spec_data(REPO / "examples" / name)
    assert CHECK(data) is not None, f"the fast checker gave up on examples/{name}"
    assert twin_of(data) is not None


@pytest.mark.parametrize(
    "data", [RICH, ZONEFILE, FULL_SPEC, ROUTE53], ids=["rich", "zonefile", "full", "route53"]
)
def test_specs_of_every_section_are_built_without_pydantic(data: dict[str, Any]) -> None:
    assert CHECK(copy.deepcopy(data)) is not None
    assert twin_of(copy.deepcopy(data)) is not None


@pytest.mark.parametrize("name", ["powerdns.yaml", "route53.yaml"])
def test_octodns_specs_are_built_without_pydantic(name: str) -> None:
    """dns.octodns takes the plugin's own keys beside ``class``: kept as written, each
    value a string, number, boolean or a list or mapping of those."""
    data = spec_data(REPO / "examples" / name)
    assert CHECK(data) is not None, f"the fast checker gave up on examples/{name}"
    assert (
        twin_of(data).dns.octodns.arguments() == Spec.model_validate(data).dns.octodns.arguments()
    )


_SCALAR = st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=4), st.none())


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(
            _SCALAR,
            st.lists(_SCALAR, max_size=3),
            st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), _SCALAR, max_size=3),
        ),
        max_size=4,
    )
)
def test_octodns_arguments_are_kept_as_pydantic_keeps_them(arguments: dict[str, Any]) -> None:
    """Each argument's exact type (int, float, bool, text, lists and mappings of them) is
    kept as pydantic keeps it, in the order given, or the checker gives up."""
    data = copy.deepcopy(ROUTE53)
    data["dns"]["octodns"].update(arguments)
    twin_of(data)


# --- the property: whatever the checker accepts, pydantic builds the same ---------------------

INTERESTING: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    2,
    -1,
    5,
    1023,
    1024,
    5060,
    65535,
    65536,
    2**31,
    2**63,
    10**25,
    0.5,
    1.0,
    3.0,
    300.0,
    300.5,
    float("inf"),
    float("nan"),
    "",
    " ",
    "5060",
    "0105",
    "105",
    "yes",
    "true",
    "null",
    "local",
    "dir:state",
    "ssh://root@[::1]:22",
    "present",
    "absent",
    "iptables",
    "zonefile",
    "octodns",
    "sip.example.com",
    "SIP.Example.com.",
    "example.com",
    "a..b",
    "127.0.0.1",
    "127.0.0.1:53",
    "[::1]:5353",
    "::1",
    "2001:DB8::1",
    "fe80::1%eth0",
    "0.0.0.0",
    "192.0.2.0/24",
    "0.0.0.0/0",
    "/etc/x",
    "/etc/nftables.conf",
    "tcp/80",
    "udp/10-5",
    "hmac-md5",
    "custom/sound",
    "a b",
    "x;y",
    "ünïcode",
    "sipctl-rooms",
    "general",
    "h",
    [],
    [1],
    ["106", 107],
    ["tcp/443"],
    ["203.0.113.5", "2001:db8::5"],
    {},
    {"port": 5061},
    {"ring": ["106"]},
    {"secret": "abc"},
]


def _paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*path, index))
    return found


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _variants(value: Any) -> list[Any]:
    """The same value in other types and spellings."""
    found: list[Any] = [[value], {"x": value}]
    if isinstance(value, bool):
        found += [int(value), str(value).lower()]
    elif isinstance(value, int):
        found += [str(value), float(value), value + 1, -value, bool(value % 2)]
    elif isinstance(value, float):
        found += [int(value), str(value)] if math.isfinite(value) else [str(value)]
    elif isinstance(value, str):
        found += [value.upper(), f" {value} ", value + ".", value[1:], value * 2]
        if value.isdigit():
            found.append(int(value))
    return found


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec with one to three changes: a value replaced by another (often of the
    wrong type or form), a key removed, an unknown key added, a section's key set."""
    data = copy.deepcopy(draw(st.sampled_from([RICH, ZONEFILE, FULL_SPEC, ROUTE53])))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)))
        target = _get(data, path)
        action = draw(st.sampled_from(["replace", "variant", "drop", "unknown", "set_key"]))
        if action in ("replace", "variant") and path:
            parent = _get(data, path[:-1])
            pool = INTERESTING if action == "replace" else _variants(target)
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(pool)))
        elif action == "drop" and isinstance(target, dict) and target:
            del target[draw(st.sampled_from(sorted(target)))]
        elif action == "unknown" and isinstance(target, dict):
            unknown = draw(st.sampled_from(["extra", "Port", "secret", "class", "provider_class"]))
            target[unknown] = copy.deepcopy(draw(st.sampled_from(INTERESTING)))
        elif action == "set_key" and isinstance(target, dict):
            keys = known_keys(tuple(p for p in path if not isinstance(p, int)))
            if keys:
                key = draw(st.sampled_from(keys))
                target[key] = copy.deepcopy(draw(st.sampled_from(INTERESTING)))
    return data


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated_specs())
def test_what_the_checker_accepts_pydantic_builds_the_same(data: dict[str, Any]) -> None:
    twin_of(data)


def test_many_mutated_specs_are_accepted() -> None:
    """The property above is not empty: a good share of the changed specs is valid, and
    the checker accepts those (else the proof would prove little)."""
    accepted = 0
    total = 0

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutated_specs())
    def count(data: dict[str, Any]) -> None:
        nonlocal accepted, total
        total += 1
        accepted += twin_of(data) is not None

    count()
    assert accepted >= total // 5, f"only {accepted} of {total} changed specs accepted"


# --- the generator refuses what it does not know ----------------------------------------------


def test_a_validator_that_is_not_a_rule_is_refused() -> None:
    """A model validator written in spec.py (not one of spec_rules.py's rules) would be a
    rule the checker cannot call: generating the checker fails and names it."""

    class Odd(BaseModel):
        model_config = ConfigDict(extra="forbid")
        port: int = 1

        @model_validator(mode="after")
        def _odd(self) -> Odd:
            return self

    with pytest.raises(TypeError, match="spec_rules"):
        _Writer().check_function(Odd)
