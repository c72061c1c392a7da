"""Hypothesis strategies for specs, built from the spec's own JSON Schema.

``string_paths()`` lists every place a string can sit in a spec (keys of free-form mappings
included), read from ``schemas/sipctl.schema.json``: a field added tomorrow is covered the
day it is added. ``hostile_specs()`` starts from a full spec that uses every layer and
replaces a few of those strings by hostile text: the characters every config syntax sipctl
writes gives a meaning to (``% ; # [ ] = " ' $ \\`` and spaces), non-ASCII letters, and the
line breaks and controls the one rule forbids.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

from sipctl.schemas.jsonschema import schema_text

PathKey = tuple[str | int, ...]
KEY = "<key>"  # a path part standing for "any key of this mapping"

FULL_SPEC: dict[str, Any] = {
    "version": 1,
    "domain": "mysite.ru",
    "transports": {"udp": {"port": 5060}, "tcp": {"port": 5060}, "tls": {"port": 5061}},
    "servers": [
        {
            "host": "asterisk.mysite.ru",
            "ipv4": ["203.0.113.10"],
            "ipv6": ["2001:db8::10"],
            "priority": 10,
            "weight": 0,
        }
    ],
    "users": {"director": 105, "alex": 106},
    "dns": {"provider": "zonefile", "file": "zones/mysite.ru.zone", "ttl": 3600},
    "asterisk": {
        "target": "local",
        "config_dir": "/etc/asterisk",
        "program": "default",
        "reject_sound": "ss-noservice",
        "tls": {"cert_file": "/etc/asterisk/keys/a.pem", "key_file": "/etc/asterisk/keys/a.key"},
    },
    "firewall": {"backend": "iptables", "extra": ["tcp/443"], "persist": "/etc/iptables.up"},
    "fail2ban": {
        "config_dir": "/etc/fail2ban",
        "logpath": "/var/log/asterisk/messages.log",
        "ignoreip": ["192.0.2.0/24"],
        "program": "default",
    },
}

# Characters with a meaning in INI, zone files, dialplan, iptables/nft scripts and shells.
SYNTAX = "%;#[]=\"'$\\ ,(){}<>|&`*?~!@:/.-_\t"
FORBIDDEN = "\n\r\x0b\x0c\x00\x85\u2028\u2029\x1b\x7f\x9b\u202e"
_visible = st.one_of(
    st.sampled_from(SYNTAX), st.characters(codec="utf-8", categories=["L", "N", "S", "P"])
)
# Mostly text the one rule allows (so that many hostile specs are accepted and reach the
# real parsers), sometimes a forbidden character too (so that the refusal is exercised).
hostile_text = st.one_of(
    st.text(alphabet=_visible, max_size=10),
    st.text(alphabet=st.sampled_from(SYNTAX), min_size=1, max_size=4),
    st.text(alphabet=st.one_of(_visible, st.sampled_from(FORBIDDEN)), max_size=10),
)


def _schema() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(schema_text())
    return result


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[1]]
    return node


def string_paths() -> list[PathKey]:
    """Every path whose value (or, at KEY, whose key) the schema lets be a string."""
    schema = _schema()
    defs = schema.get("$defs", {})
    found: list[PathKey] = []

    def walk(node: dict[str, Any], path: PathKey, seen: frozenset[str]) -> None:
        ref = node.get("$ref")
        if ref is not None:
            if ref in seen:
                return
            walk(_resolve(node, defs), path, seen | {ref})
            return
        for choice in node.get("anyOf", []) + node.get("oneOf", []) + node.get("allOf", []):
            walk(choice, path, seen)
        types = node.get("type")
        kinds = types if isinstance(types, list) else [types]
        if "string" in kinds and path not in found:
            found.append(path)
        for name, child in node.get("properties", {}).items():
            walk(child, (*path, name), seen)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            if (*path, KEY) not in found:
                found.append((*path, KEY))
            walk(extra, (*path, KEY), seen)
        items = node.get("items")
        if isinstance(items, dict):
            walk(items, (*path, 0), seen)

    walk(schema, (), frozenset())
    return found


def set_at(data: dict[str, Any], path: PathKey, value: str) -> dict[str, Any]:
    """A copy of ``data`` with ``value`` at ``path`` (a KEY part becomes a key ``value``)."""
    result = copy.deepcopy(data)
    node: Any = result
    for i, part in enumerate(path[:-1]):
        following = path[i + 1]
        if part == KEY:
            node[value] = {}
            node = node[value]
            continue
        if isinstance(node, list):
            while len(node) <= int(part):
                node.append({})
            if not isinstance(node[int(part)], dict | list):
                node[int(part)] = [] if isinstance(following, int) else {}
            node = node[int(part)]
            continue
        if not isinstance(node.get(part), dict | list):
            node[part] = [] if isinstance(following, int) else {}
        node = node[part]
    last = path[-1]
    if last == KEY:
        node[value] = "1"
    elif isinstance(node, list):
        while len(node) <= int(last):
            node.append(value)
        node[int(last)] = value
    else:
        node[last] = value
    return result


def get_at(data: Any, path: PathKey) -> Any:
    node = data
    for part in path:
        if part == KEY or node is None:
            return None
        if isinstance(node, list):
            node = node[int(part)] if int(part) < len(node) else None
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


@st.composite
def address_text(draw: st.DrawFn) -> str:
    """An address or network as people write them: any case, any prefix, maybe a scope."""
    address = draw(st.ip_addresses())
    text = str(address) if draw(st.booleans()) else address.exploded
    text = text.upper() if draw(st.booleans()) else text
    suffix = draw(
        st.sampled_from(["", "", f"/{draw(st.integers(0, address.max_prefixlen))}", "%eth0"])
    )
    return text + suffix


_ADDRESS_FIELDS = ("ipv4", "ipv6", "ignoreip")


@st.composite
def hostile_specs(draw: st.DrawFn, paths: list[PathKey] | None = None) -> dict[str, Any]:
    """FULL_SPEC with one or two strings made hostile (prefixed, suffixed, cut in or new)."""
    candidates = paths if paths is not None else string_paths()
    data = FULL_SPEC
    for path in draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=2, unique=True)):
        old = get_at(data, path)
        if any(part in _ADDRESS_FIELDS for part in path) and draw(st.booleans()):
            data = set_at(data, path, draw(address_text()))
            continue
        text = draw(hostile_text)
        base = old if isinstance(old, str) else ""
        how = draw(st.sampled_from(["suffix", "prefix", "middle", "new"]))
        if how == "suffix":
            value = base + text
        elif how == "prefix":
            value = text + base
        elif how == "middle" and base:
            cut = draw(st.integers(0, len(base)))
            value = base[:cut] + text + base[cut:]
        else:
            value = text
        data = set_at(data, path, value)
    return data


def number_paths() -> list[tuple[PathKey, dict[str, Any]]]:
    """Every path whose value the schema lets be a number (integer or not), with its schema
    node (its type and bounds)."""
    schema = _schema()
    defs = schema.get("$defs", {})
    found: dict[PathKey, dict[str, Any]] = {}

    def walk(node: dict[str, Any], path: PathKey, seen: frozenset[str]) -> None:
        ref = node.get("$ref")
        if ref is not None:
            if ref not in seen:
                walk(_resolve(node, defs), path, seen | {ref})
            return
        for choice in node.get("anyOf", []) + node.get("oneOf", []) + node.get("allOf", []):
            walk(choice, path, seen)
        if node.get("type") in ("integer", "number") and path not in found:
            found[path] = node
        for name, child in node.get("properties", {}).items():
            walk(child, (*path, name), seen)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, (*path, KEY), seen)
        items = node.get("items")
        if isinstance(items, dict):
            walk(items, (*path, 0), seen)

    walk(schema, (), frozenset())
    return list(found.items())
