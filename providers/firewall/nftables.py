"""The ``nftables`` firewall provider: ``table inet sipctl`` with its own input base chain.

Read: ``nft -j list table inet sipctl`` (and the same as text, the rollback's material) in
one round trip, parsed into the canonical value of ``render_firewall``: sets are expanded
(``tcp dport { 5060, 5061 }`` is two records), ``meta nfproto`` becomes a family prefix,
the ``l4proto`` dependency nft adds by itself is dropped. Write: one ``nft -f`` transaction
that creates, deletes and re-creates our table (see ``render_firewall.nft_script``). Never
``flush ruleset``: that would erase fail2ban's bans in ``table inet f2b-table``. Our base
chain sits beside other tables' chains on the input hook: a packet must be accepted by
every one of them, so a fail2ban ban (a drop elsewhere) still holds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from sipctl.json_text import read_json
from sipctl.output import peer_words
from sipctl.providers.firewall.common import FirewallKept, FirewallProvider
from sipctl.providers.firewall.confirm import Step
from sipctl.providers.firewall.shell import Section, heredoc
from sipctl.reconciler.render.firewall import (
    FAMILIES,
    ICMP_CODES,
    ICMPV6_CODES,
    NFT_CHAIN,
    NFT_TABLE,
    Rule,
    merge_families,
    nft_script,
    sort_records,
)
from sipctl.reconciler.resources import LiveState, Value

REJECT = "reject"
# Whether the other backend's chain is still loaded (after a change of backend).
OTHER_BACKEND_SHELL = (
    "{ iptables-save -t filter; ip6tables-save -t filter; } 2>/dev/null | grep -q '^:SIPCTL '"
)
_PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50}
_TYPES = {"icmp": ICMP_CODES, "icmpv6": ICMPV6_CODES}
Parsed = list[Rule] | str | None  # rules, REJECT, or None: not something sipctl writes


# --- from nft -j --------------------------------------------------------------------------


def _left_key(left: Any) -> str | None:
    if not isinstance(left, dict):
        return None
    if "meta" in left:
        key = left["meta"].get("key")
        return {"nfproto": "nfproto", "l4proto": "l4proto", "iifname": "iif", "iif": "iif"}.get(key)
    if "ct" in left and left["ct"].get("key") == "state":
        return "ct"
    if "payload" in left:
        protocol, field = left["payload"].get("protocol"), left["payload"].get("field")
        if field == "type" and protocol in ("icmp", "icmpv6"):
            return str(protocol)
        if field == "dport" and protocol in ("tcp", "udp"):
            return str(protocol)
    return None


def _values(right: Any) -> list[str] | None:
    if isinstance(right, str | int):
        return [str(right)]
    if isinstance(right, list):
        flat = [_values(item) for item in right]
        return None if any(v is None for v in flat) else [x for v in flat if v for x in v]
    if isinstance(right, dict) and "set" in right:
        return _values(right["set"])
    if isinstance(right, dict) and "range" in right and len(right["range"]) == 2:
        first, last = right["range"]
        return [f"{first}-{last}"]
    return None


def parse_rule_json(expr: list[Any]) -> Parsed:
    matches: dict[str, list[str]] = {}
    verdict = ""
    for statement in expr:
        if not isinstance(statement, dict) or verdict:
            return None  # anything after the verdict is not ours
        if "counter" in statement:
            continue
        if "accept" in statement:
            verdict = "accept"
        elif "reject" in statement:
            plain = statement["reject"] in (None, {"type": "icmpx", "expr": "port-unreachable"})
            verdict = REJECT if plain else "other"
        elif "match" in statement:
            match = statement["match"]
            key, values = _left_key(match.get("left")), _values(match.get("right"))
            if match.get("op") not in ("==", "in") or key is None or values is None:
                return None
            if key in matches:
                return None
            matches[key] = values
        else:
            return None
    return _rules(matches, verdict)


def _rules(matches: dict[str, list[str]], verdict: str) -> Parsed:
    """Canonical rules of one rule's matches (shared by the JSON and the text parser)."""
    if verdict == REJECT:
        return REJECT if not matches else None
    if verdict != "accept":
        return None
    family = ""
    if "nfproto" in matches:
        nfproto = matches.pop("nfproto")
        if len(nfproto) != 1 or nfproto[0] not in FAMILIES:
            return None
        family = nfproto[0]
    l4proto = matches.pop("l4proto", None)
    if len(matches) != 1:
        return None
    ((kind, values),) = matches.items()
    if l4proto is not None and l4proto != [kind]:
        return None
    if kind == "ct":
        return [Rule("accept", "ct", ",".join(sorted(v.lower() for v in values)), family)]
    if kind == "iif" and len(values) == 1:
        return [Rule("accept", "iif", values[0], family)]
    if kind in _TYPES:
        if any(v not in _TYPES[kind] for v in values):
            return None
        natural = "ipv4" if kind == "icmp" else "ipv6"
        if family not in ("", natural):
            return None
        return [Rule("accept", kind, v) for v in values]
    if kind in ("tcp", "udp") and all(re.fullmatch(r"\d+(-\d+)?", v) for v in values):
        return [Rule("accept", kind, _port(v), family) for v in values]
    return None


def _port(value: str) -> str:
    first, _, last = value.partition("-")
    return first if not last or last == first else f"{first}-{last}"


def canonical(
    chain: dict[str, Any] | None, rules: list[tuple[str, Parsed]], extra: list[str]
) -> dict[str, Any]:
    """The canonical value of our table: ``chain`` is the input chain's type, hook,
    priority and policy; ``rules`` its rules (text for raw ones), ``extra`` other objects."""
    families = list(FAMILIES)
    terminal = bool(rules) and rules[-1][1] == REJECT
    if terminal:
        rules = rules[:-1]
    per_family: dict[str, list[Rule]] = {f: [] for f in families}
    for text, parsed in rules:
        found = parsed if isinstance(parsed, list) else [Rule("raw", "raw", text)]
        for rule in found:
            for family in rule.families(families):
                per_family[family].append(Rule(rule.action, rule.kind, rule.arg))
    records = merge_families(per_family, families)
    records += [Rule("raw", "raw", item).record for item in extra]
    if chain is None:
        return {
            "families": families,
            "policy": "none",
            "hook": "no input chain",
            "records": records,
        }
    policy = str(chain.get("policy", "accept"))
    if policy == "drop" and terminal:
        policy = "reject"
    elif terminal:
        records.append(Rule("raw", "raw", "reject").record)
    hook = f"{chain.get('type')} {chain.get('hook')} priority {chain.get('prio')}"
    return {"families": families, "policy": policy, "hook": hook, "records": sort_records(records)}


def parse_json(text: str) -> Value:
    """The canonical value of ``nft -j list table inet sipctl`` output."""
    items = read_json(text).get("nftables", [])
    family, _, name = NFT_TABLE.partition(" ")
    chain: dict[str, Any] | None = None
    rules: list[tuple[str, Parsed]] = []
    extra: list[str] = []
    found = False
    for item in items:
        kind, body = next(iter(item.items()))
        if kind == "metainfo":
            continue
        if kind == "table":
            found = found or (body.get("family"), body.get("name")) == (family, name)
        elif kind == "chain" and body.get("name") == NFT_CHAIN:
            chain = body
        elif kind == "rule" and body.get("chain") == NFT_CHAIN:
            expr = body.get("expr", [])
            rules.append((json.dumps(expr, sort_keys=True), parse_rule_json(expr)))
        elif kind != "rule":
            extra.append(f"{kind} {body.get('name', '')}".strip())
    return canonical(chain, rules, extra) if found else None


# --- from the script text (a dir: target's persist file) -----------------------------------

_RULE_TEXT = re.compile(
    r"(?:meta nfproto (?P<family>\w+) )?"
    r"(?:(?P<ct>ct state) (?P<states>\S+)"
    r'|(?P<iif>iifname|iif) "(?P<name>[^"]+)"'
    r"|(?P<icmp>icmp|icmpv6) type (?P<types>\{[^}]*\}|\S+)"
    r"|(?P<l4>tcp|udp) dport (?P<ports>\{[^}]*\}|\S+))"
    r" accept"
)


def _text_values(text: str) -> list[str]:
    return [v.strip() for v in text.strip("{} ").split(",") if v.strip()]


def parse_rule_text(line: str) -> Parsed:
    if line in ("reject", "reject with icmpx type port-unreachable"):
        return REJECT
    match = _RULE_TEXT.fullmatch(line)
    if match is None:
        return None
    matches: dict[str, list[str]] = {}
    if match["family"]:
        matches["nfproto"] = [match["family"]]
    if match["ct"]:
        matches["ct"] = _text_values(match["states"])
    elif match["iif"]:
        matches["iif"] = [match["name"]]
    elif match["icmp"]:
        matches[match["icmp"]] = _text_values(match["types"])
    else:
        matches[match["l4"]] = _text_values(match["ports"])
    return _rules(matches, "accept")


def parse_text(text: str) -> Value:
    """The canonical value of an nft script that defines ``table inet sipctl``."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    try:
        start = lines.index(f"table {NFT_TABLE} {{")
    except ValueError:
        return None
    chain: dict[str, Any] | None = None
    rules: list[tuple[str, Parsed]] = []
    inside = False
    for line in lines[start + 1 :]:
        if line == f"chain {NFT_CHAIN} {{":
            inside, chain = True, {}
        elif inside and line == "}":
            break
        elif inside and line.startswith("type "):
            head = re.fullmatch(
                r"type (\w+) hook (\w+) priority ([\w-]+);(?: policy (\w+);)?", line
            )
            if head is None:
                return {"families": list(FAMILIES), "policy": "none", "hook": line, "records": []}
            prio = head[3]
            chain = {
                "type": head[1],
                "hook": head[2],
                "prio": _PRIORITY_NAMES.get(prio, prio),
                "policy": head[4] or "accept",
            }
        elif inside:
            rules.append((line, parse_rule_text(line)))
    return canonical(chain, rules, [])


@dataclass
class NftablesKept(FirewallKept):
    """Also the text of table inet sipctl as live (the undo), None when it is not loaded."""

    text: str | None = None


class NftablesProvider(FirewallProvider):
    """``table inet sipctl`` of nftables."""

    name: ClassVar[str] = "nftables"
    kept_type: ClassVar[type[FirewallKept]] = NftablesKept
    other_backend_shell: ClassVar[str] = OTHER_BACKEND_SHELL

    def snapshot(self) -> str:
        return (
            f"sipctl_nj=$(nft -j list table {NFT_TABLE} 2>&1); sipctl_rn=$?\n"
            f"sipctl_nt=$(nft list table {NFT_TABLE} 2>/dev/null)\n"
            'sipctl_digest=$(printf \'%s\\n%s\\n\' "$sipctl_nj" "$sipctl_nt" | cksum)\n'
        )

    def snapshot_sections(self) -> dict[str, str]:
        return {
            "json": 'printf "%s" "$sipctl_nj"; (exit $sipctl_rn)',
            "text": 'printf "%s" "$sipctl_nt"',
        }

    def parse_snapshot(self, sections: dict[str, Section], live: LiveState) -> Value:
        found = sections.get("json", Section("no answer", 255))
        kept = live.kept_as(NftablesKept)
        kept.digest = sections.get("digest", Section("", 0)).body.strip()
        kept.text = None
        if sections.get("other", Section("", 1)).status == 0:
            live.notes.append(
                "chain SIPCTL of the iptables backend is still loaded; it filters too. "
                "Remove it: apply once with backend: iptables and ensure: absent"
            )
        if found.status == 127:
            live.problems.append("nft is not installed (install the nftables package)")
            return None
        if found.status != 0:
            if "No such file or directory" in found.body:
                return None  # our table does not exist
            live.problems.append(
                f"nft list table {NFT_TABLE} failed: {peer_words(found.body, 200)}"
            )
            return None
        try:
            value = parse_json(found.body)
        except (ValueError, AttributeError, StopIteration) as exc:
            live.problems.append(f"nft -j printed something that is not its JSON: {exc}")
            return None
        kept.text = sections.get("text", Section("", 0)).body
        return value

    def parse_persist(self, files: dict[str, str | None]) -> Value:
        text = files.get("inet")
        return parse_text(text) if text is not None else None

    def steps(self, value: Value, live: LiveState, delimiter: str) -> list[Step]:
        old = live.kept_as(NftablesKept).text or ""
        undo = f"table {NFT_TABLE} {{}}\ndelete table {NFT_TABLE}\n{old}\n"
        return [
            Step(
                "inet",
                heredoc("nft -f -", nft_script(value), delimiter),
                heredoc("nft -f -", undo, delimiter),
            )
        ]

    def describe(self, value: Value) -> str:
        if value is None:
            return f"table {NFT_TABLE} deleted"
        return (
            f"table {NFT_TABLE} written ({len(value['records'])} rules, policy {value['policy']})"
        )
