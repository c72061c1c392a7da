"""docs/spec.md, the spec reference, generated from the models.

Every key's type and default come from the JSON Schema (itself generated from the models),
what it does from the field's ``description``, and its example from the field's
``examples``, else from ``EXAMPLES`` below, else from its default. A key added to a model
therefore appears here by regenerating (``sipctl schema --kind reference``); the test
``tests/test_reference.py`` fails while the committed file is out of date or a field has no
description. The rules that JSON Schema cannot express (one field against another, one
layer against another) are listed from the docstrings of the model validators and of the
offline checks, so a new rule is listed the day it is written.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

REFERENCE_FILE = Path("docs") / "spec.md"

# Examples for keys whose default does not show a typical value (dotted path; [] = list item,
# <name> = a mapping key). Prefer Field(examples=[...]) on a new field; this table is for
# keys whose example reads better here.
EXAMPLES: dict[str, Any] = {
    "domain": "mysite.ru",
    "servers": [{"host": "asterisk.mysite.ru", "ipv4": ["203.0.113.10"]}],
    "servers[].host": "asterisk.mysite.ru",
    "servers[].ipv4": ["203.0.113.10"],
    "servers[].ipv6": ["2001:db8::10"],
    "users": {"director": 105, "alex": 106},
    "users.<name>.ring": [106, 107],
    "users.<name>.fallback": 101,
    "rooms": {"seminar": {"max_members": 50}},
    "dns.zone": "mysite.ru",
    "dns.server": "127.0.0.1:53",
    "dns.tsig.name": "sipctl",
    "dns.tsig.secret_env": "SIPCTL_TSIG_SECRET",
    "dns.tsig.secret_file": "/etc/sipctl/tsig.key",
    "dns.file": "zones/mysite.ru.zone",
    "dns.reload": "mysite",
    "asterisk.program": "pbx1",
    "fail2ban.program": "default",
    "asterisk.target": "ssh://root@asterisk.mysite.ru:22",
    "asterisk.ssh.key_file": "~/.ssh/id_ed25519",
    "asterisk.tls.cert_file": "/etc/asterisk/keys/asterisk.pem",
    "asterisk.tls.key_file": "/etc/asterisk/keys/asterisk.key",
    "asterisk.tls.ca_list_file": "/etc/ssl/certs/ca-certificates.crt",
    "firewall.target": "ssh://root@asterisk.mysite.ru",
    "firewall.extra": ["tcp/443", "udp/4000-4999"],
    "firewall.persist": "/etc/iptables.up",
    "fail2ban.target": "ssh://root@asterisk.mysite.ru",
    "fail2ban.ignoreip": ["192.0.2.0/24"],
    "dns.octodns.class": "octodns_route53.Route53Provider",
    "webrtc.host": "asterisk.mysite.ru",
    "webrtc.publish": "local:/var/www/html/call",
    "webrtc.page.names": ["director", "alex"],
    "asterisk.tls.acme.email": "hostmaster@mysite.ru",
    "asterisk.tls.acme.ca_file": "pebble.minica.pem",
}

# What a pattern means, in words (the patterns come from schemas/names.py and spec.py).
_PATTERN_WORDS: dict[str, str] = {}


def _pattern_words() -> dict[str, str]:
    if not _PATTERN_WORDS:
        from sipctl.schemas import names, targets, values
        from sipctl.schemas.names import ENTRY_NAME_PATTERN

        _PATTERN_WORDS.update(
            {
                names.HOSTNAME_PATTERN: "host name",
                names.USER_NAME_PATTERN: "user name",
                names.EXTENSION_PATTERN: "digits",
                names.CONTEXT_PATTERN: "dialplan context name",
                names.SOUND_PATTERN: "sound name",
                names.HEADER_PATTERN: "header text",
                names.TSIG_NAME_PATTERN: "TSIG key name",
                targets.TARGET_PATTERN: "target",
                values.IPV4_PATTERN: "IPv4 address",
                values.IPV6_PATTERN: "IPv6 address",
                values.PORTSPEC_PATTERN: "PROTO/PORT or PROTO/FIRST-LAST",
                values.HOSTPORT_PATTERN: "HOST[:PORT]",
                values.ENV_NAME_PATTERN: "environment variable name",
                values.PROVIDER_PATTERN: "provider name",
                "^/": "absolute path",
                ENTRY_NAME_PATTERN: "entry of the host profile",
            }
        )
    return _PATTERN_WORDS


def field_paths() -> Iterator[tuple[str, type[BaseModel], str]]:
    """(dotted path, model, field name) of every field of every model the spec uses."""
    from sipctl.schemas.spec import Spec

    yield from _walk_model(Spec, "")


def _walk_model(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, type[BaseModel], str]]:
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        yield path, model, name
        for sub, suffix in _models_in(info.annotation):
            yield from _walk_model(sub, f"{path}{suffix}.")


def _models_in(annotation: Any) -> Iterator[tuple[type[BaseModel], str]]:
    """Models inside a field's type, with the path suffix that reaches them."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        yield annotation, ""
        return
    origin = getattr(annotation, "__origin__", None)
    for arg in getattr(annotation, "__args__", ()):
        if origin in (tuple, list):
            yield from ((m, "[]" + s) for m, s in _models_in(arg))
        elif origin is dict:
            yield from ((m, ".<name>" + s) for m, s in _models_in(arg))
        else:
            yield from _models_in(arg)


def models() -> list[type[BaseModel]]:
    from sipctl.schemas.spec import Spec

    found: list[type[BaseModel]] = [Spec]
    for _, model, _ in field_paths():
        if model not in found:
            found.append(model)
    return found


def validator_rules() -> list[tuple[str, str]]:
    """(model name, rule) of every model validator and field validator, from docstrings."""
    rules: list[tuple[str, str]] = []
    for model in models():
        decorators = model.__pydantic_decorators__
        for group in (decorators.model_validators, decorators.field_validators):
            for name, dec in group.items():
                func = getattr(dec.func, "__func__", dec.func)
                rules.append((f"{model.__name__}.{name}", inspect.getdoc(func) or ""))
    return rules


def check_rules() -> list[tuple[str, str]]:
    from sipctl.schemas.checks import offline_checks

    return [(check.__name__, inspect.getdoc(check) or "") for check in offline_checks()]


# --- rendering --------------------------------------------------------------------------------


def reference_text() -> str:
    from sipctl.schemas.jsonschema import spec_schema

    schema = spec_schema()
    out = [
        "# The sipctl spec, version 1",
        "",
        "<!-- Generated from the models by 'sipctl schema --kind reference'; do not edit. -->",
        "",
        "A spec is one YAML file per domain (`sipctl.yaml` by default). Only `version` and "
        "`domain` are required; every section left out is a layer sipctl does not manage. "
        "Unknown keys are errors. Editors can check a spec as it is typed with the JSON "
        "Schema (`sipctl schema --out-file sipctl.schema.json` writes it); "
        "`sipctl validate` checks everything below, including the rules at the end that "
        "a JSON Schema cannot express.",
        "",
        *_names_paragraph(),
    ]
    sections: list[tuple[str, dict[str, Any]]] = [("", schema)]
    while sections:
        path, node = sections.pop(0)
        rows, nested = _section(path, node, schema)
        out.append(f"## `{path}`" if path else "## Top level")
        out.append("")
        if node.get("description") and path:
            out.append(_cell(node["description"]).rstrip(".") + ".")
            out.append("")
        out.append("| key | type | default | what it does | example |")
        out.append("|---|---|---|---|---|")
        out.extend(rows)
        out.append("")
        sections[0:0] = nested
    out += _rules_section()
    return "\n".join(out).rstrip("\n") + "\n"


def _names_paragraph() -> list[str]:
    """What the two kinds of name every spec has may hold: a new user learns it here, not
    from the error of a first try (a user named ivan-petrov, a domain in Cyrillic)."""
    from sipctl.schemas.names import (
        MAX_EXTENSION_LENGTH,
        MAX_LETTERED_NAME_LENGTH,
        SPECIAL_EXTENSIONS,
        USER_NAME_RULE,
    )

    special = ", ".join(f"`{name}`" for name in sorted({n.lower() for n in SPECIAL_EXTENSIONS}))
    return [
        f"A **user name** (the keys of `users`, `rooms` and `cards.names`, and "
        f"`webrtc.page.names`) holds {USER_NAME_RULE}; at most {MAX_LETTERED_NAME_LENGTH} "
        f"characters with a letter, {MAX_EXTENSION_LENGTH} of digits alone, and none of "
        f"Asterisk's own extensions ({special}, in any case). A **host name** is written in "
        "ASCII: an international domain in its punycode form (`xn--...`), which "
        "`sipctl validate` prints for a name given in Unicode. What people read (the business "
        "cards' page: its title and each card's address) shows such a domain in its Unicode "
        "form (`xn--e1afmkfd.xn--p1ai` as `пример.рф`); every SIP URI, link, QR code and DNS "
        "name keeps the ASCII form.",
        "",
    ]


def _section(
    path: str, node: dict[str, Any], root: dict[str, Any]
) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    rows: list[str] = []
    nested: list[tuple[str, dict[str, Any]]] = []
    required = set(node.get("required", []))
    for key, prop in node.get("properties", {}).items():
        prop = _resolve(prop, root)
        dotted = f"{path}.{key}" if path else key
        if key in required:
            default = "required"
        elif "default" in prop:
            section = "not managed" if not path else "none"
            default = _yaml(prop["default"]) if "properties" not in prop else section
        else:  # a default made by a factory: the description says what it is
            default = "see below" if "properties" in prop else "{}"
        rows.append(
            f"| `{key}` | {_type_words(prop, root)} | {default} | "
            f"{_cell(prop.get('description', ''))} | {_code(_example(dotted, key, prop))} |"
        )
        if "properties" in prop:
            nested.append((dotted, prop))
        for suffix, child in (
            ("[]", prop.get("items")),
            (".<name>", prop.get("additionalProperties")),
        ):
            if not isinstance(child, dict):
                continue
            for member in [child, *child.get("oneOf", []), *child.get("anyOf", [])]:
                member = _resolve(member, root)
                if "properties" in member:
                    about = member.get("description") or prop.get("description")
                    nested.append((f"{dotted}{suffix}", {**member, "description": about}))
    return rows, nested


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str):
        target: dict[str, Any] = root["$defs"][ref.rsplit("/", 1)[-1]]
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _type_words(node: dict[str, Any], root: dict[str, Any]) -> str:
    node = _resolve(node, root)
    if "const" in node:
        return f"`{_yaml(node['const'])}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    if "anyOf" in node and any(m.get("pattern") == _extension() for m in node["anyOf"]):
        return 'extension (digits: 105 or "0105")'
    for union in ("anyOf", "oneOf"):
        if union in node:
            return " or ".join(_type_words(member, root) for member in node[union])
    kinds = node.get("type", "")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    optional = "null" in kinds
    kinds = [k for k in kinds if k != "null"]
    kind = kinds[0] if kinds else ""
    if kind == "object" and "properties" in node:
        words = "section"
    elif kind == "object":
        value = _type_words(node.get("additionalProperties", {}), root)
        words = f"mapping of {_pattern_name(node.get('propertyNames', {}))} to {value}"
    elif kind == "array":
        words = f"list of {_type_words(node.get('items', {}), root)}"
    elif kind in ("integer", "number"):
        words = kind + _bounds(node)
    elif kind == "string":
        words = _pattern_name(node)
    elif kind == "boolean":
        words = "true or false"
    else:
        words = kind or "any"
    return words + (" (or null)" if optional and words != "section" else "")


def _extension() -> str:
    from sipctl.schemas.names import EXTENSION_PATTERN

    return EXTENSION_PATTERN


def _pattern_name(node: dict[str, Any]) -> str:
    pattern = node.get("pattern")
    if pattern is None:
        return "string"
    named = _pattern_words().get(pattern)
    if named is not None:
        return named
    return f"string matching `{pattern}`" if len(pattern) < 40 else "string (see the schema)"


def _bounds(node: dict[str, Any]) -> str:
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum"))
    if low is None and high is None:
        return ""
    if "exclusiveMinimum" in node:
        return f" above {low}, at most {high}"
    return f" {low if low is not None else ''}–{high if high is not None else ''}"


def _example(dotted: str, key: str, prop: dict[str, Any]) -> str:
    if "properties" in prop:
        return "(below)"
    if "const" in prop:
        value = prop["const"]
    elif prop.get("examples"):
        value = prop["examples"][0]
    elif _example_key(dotted) is not None:
        value = EXAMPLES[str(_example_key(dotted))]
    elif prop.get("default") is not None:
        value = prop["default"]
    elif "enum" in prop:
        value = prop["enum"][0]
    else:
        return ""
    return f"{key}: {_yaml(value)}"


def _example_key(dotted: str) -> str | None:
    """``dotted`` in EXAMPLES, else a key with the same last two parts (ssh.key_file is the
    same field under asterisk, firewall and fail2ban)."""
    if dotted in EXAMPLES:
        return dotted
    tail = dotted.split(".")[-2:]
    return next((key for key in EXAMPLES if key.split(".")[-2:] == tail), None)


def _code(text: str) -> str:
    return f"`{text}`" if text and text != "(below)" else text


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value and value.strip() == value and ":" not in value else json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    return json.dumps(value)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _rules_section() -> list[str]:
    out = [
        "## Rules only `sipctl validate` checks",
        "",
        "A JSON Schema checks each key on its own. These rules relate keys to each other (or "
        "layers to each other); editors cannot show them, `sipctl validate` and every "
        "command that reads a spec do.",
        "",
    ]
    listed: set[str] = set()
    for _, rule in validator_rules() + check_rules():
        if rule and rule not in listed:
            listed.add(rule)
            out.append(f"- {_cell(rule)}")
    out.append("")
    out += [
        "## Checks against the live systems",
        "",
        "`sipctl plan` also compares the spec with what only the live systems know: the "
        "transports Asterisk really listens on, its effective RTP range, and the file it "
        "really logs to (which the fail2ban jail must watch).",
    ]
    return out


def missing_descriptions() -> list[str]:
    """``Model.field (path)`` of every field without a description."""
    return [
        f"{model.__name__}.{name} (spec key {path})"
        for path, model, name in field_paths()
        if not (model.model_fields[name].description or "").strip()
    ]


def missing_rule_docs() -> list[str]:
    return [name for name, rule in validator_rules() + check_rules() if not rule.strip()]
