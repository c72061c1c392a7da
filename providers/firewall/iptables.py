"""The ``iptables`` firewall provider: chain ``SIPCTL`` in the filter table, one jump to it
from INPUT, and INPUT's policy; ip6tables the same when IPv6 is filtered.

Read: ``iptables-save -t filter`` and ``ip6tables-save -t filter`` in one round trip, parsed
into the canonical value of ``render_firewall`` (``-m tcp``, ``--dport A:B``, multiport
lists, numeric ICMP types and the conntrack state order are what iptables-save prints
differently from what was written; they are normalized here). Write: one
``iptables-restore --noflush`` per family whose input declares ``:SIPCTL`` (which flushes
only that chain), rewrites it, and adds the INPUT jump only when it is missing (an existing
jump keeps its place, so fail2ban's ``f2b-*`` jumps inserted above it stay above it). No
other chain is flushed, deleted or reordered.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sipctl.output import peer_words
from sipctl.providers.firewall.common import FirewallKept, FirewallProvider
from sipctl.providers.firewall.confirm import Step
from sipctl.providers.firewall.shell import Section, heredoc
from sipctl.reconciler.render.firewall import (
    CHAIN,
    FAMILIES,
    ICMP_CODES,
    ICMPV6_CODES,
    IPTABLES_HOOK,
    Rule,
    iptables_chain_lines,
    merge_families,
    wants_ipv6,
)
from sipctl.reconciler.resources import LiveState, Value

PLAIN_JUMP = f"-j {CHAIN}"
_SAVE = {"ipv4": "iptables-save", "ipv6": "ip6tables-save"}
_RESTORE = {"ipv4": "iptables-restore", "ipv6": "ip6tables-restore"}
_REJECT_DEFAULT = {"ipv4": "icmp-port-unreachable", "ipv6": "icmp6-port-unreachable"}
# Modules iptables-save names although the rule did not ask for them (``-p tcp`` -> ``-m
# tcp``), or that only carry the options we understand.
_MODULES = frozenset({"tcp", "udp", "icmp", "icmp6", "conntrack", "state", "multiport"})
_OPTIONS = {
    "-p": "proto",
    "--protocol": "proto",
    "--dport": "dport",
    "--destination-port": "dport",
    "--dports": "dports",
    "--destination-ports": "dports",
    "-i": "iif",
    "--in-interface": "iif",
    "--ctstate": "ct",
    "--state": "ct",
    "--icmp-type": "icmp",
    "--icmpv6-type": "icmpv6",
    "-j": "target",
    "--jump": "target",
    "--reject-with": "reject_with",
}
_ICMP_NAMES = {str(code): name for name, code in ICMP_CODES.items()}
_ICMPV6_NAMES = {str(code): name for name, code in ICMPV6_CODES.items()} | {
    "router-solicitation": "nd-router-solicit",
    "router-advertisement": "nd-router-advert",
    "neighbour-solicitation": "nd-neighbor-solicit",
    "neighbor-solicitation": "nd-neighbor-solicit",
    "neighbour-advertisement": "nd-neighbor-advert",
    "neighbor-advertisement": "nd-neighbor-advert",
}
# Whether the other backend's rules are still loaded (after a change of backend).
OTHER_BACKEND_SHELL = "nft list table inet sipctl >/dev/null 2>&1"
_DIGEST_FILTER = (
    f"grep -E '^(:INPUT |:{CHAIN} |-A {CHAIN} |-A INPUT .*-j {CHAIN}( |$))' "
    "| sed -E 's/ \\[[0-9]+:[0-9]+\\]$//' | cksum"
)


@dataclass
class FilterTable:
    """What sipctl owns in one family's filter table, as iptables-save printed it."""

    policy: str | None = None  # INPUT's policy
    chain: bool = False  # SIPCTL exists
    rules: list[str] = field(default_factory=list)  # arguments of each -A SIPCTL
    jumps: list[str] = field(default_factory=list)  # arguments of each INPUT rule -> SIPCTL

    @property
    def ours(self) -> bool:
        return self.chain or bool(self.jumps)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FilterTable:
        return cls(data["policy"], data["chain"], list(data["rules"]), list(data["jumps"]))


def parse_save(text: str) -> FilterTable:
    """The filter table of an ``iptables-save`` (or restore file) text."""
    table = FilterTable()
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            current = line[1:]
        elif current != "filter" or not line or line.startswith("#"):
            continue
        elif line.startswith(":"):
            name, _, rest = line[1:].partition(" ")
            if name == "INPUT":
                table.policy = rest.split()[0] if rest.split() else None
            elif name == CHAIN:
                table.chain = True
        elif line.startswith(f"-A {CHAIN} "):
            table.rules.append(line[len(f"-A {CHAIN} ") :])
        elif line.startswith("-A INPUT ") and _jumps_to_us(line):
            table.jumps.append(line[len("-A INPUT ") :])
    return table


def _jumps_to_us(line: str) -> bool:
    words = _split(line)
    return any(
        w in ("-j", "--jump", "-g", "--goto") and i + 1 < len(words) and words[i + 1] == CHAIN
        for i, w in enumerate(words)
    )


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


REJECT = "reject"


def parse_rule(args: str, family: str) -> list[Rule] | str | None:
    """Canonical rules of one ``-A SIPCTL`` line; ``REJECT`` for a plain reject; None when
    the line holds anything sipctl does not write (it is then kept as a raw record)."""
    words = _split(args)
    options: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        if index + 1 >= len(words) or word == "!":
            return None
        if word in ("-m", "--match"):
            if words[index + 1] not in _MODULES:
                return None
        elif word in _OPTIONS and _OPTIONS[word] not in options:
            options[_OPTIONS[word]] = words[index + 1]
        else:
            return None
        index += 2
    target = options.pop("target", "")
    if target == "REJECT":
        plain = set(options) <= {"reject_with"}
        default = options.get("reject_with", _REJECT_DEFAULT[family]) == _REJECT_DEFAULT[family]
        return REJECT if plain and default else None
    if target != "ACCEPT":
        return None
    return _accept_rules(options)


def _accept_rules(options: dict[str, str]) -> list[Rule] | None:
    keys = set(options)
    proto = options.get("proto", "")
    if keys == {"ct"}:
        states = sorted(s.lower() for s in options["ct"].split(","))
        return [Rule("accept", "ct", ",".join(states))]
    if keys == {"iif"}:
        return [Rule("accept", "iif", options["iif"])]
    if proto == "icmp" and keys == {"proto", "icmp"}:
        name = _ICMP_NAMES.get(options["icmp"].split("/")[0], options["icmp"])
        return [Rule("accept", "icmp", name)] if name in ICMP_CODES else None
    if proto in ("ipv6-icmp", "icmpv6", "58") and keys == {"proto", "icmpv6"}:
        name = _ICMPV6_NAMES.get(options["icmpv6"].split("/")[0], options["icmpv6"])
        return [Rule("accept", "icmpv6", name)] if name in ICMPV6_CODES else None
    if proto in ("tcp", "udp") and keys in ({"proto", "dport"}, {"proto", "dports"}):
        ports = options.get("dport") or options["dports"]
        rules = []
        for item in ports.split(","):
            first, _, last = item.partition(":")
            if not first.isdigit() or not (last or first).isdigit():
                return None
            a, b = int(first), int(last or first)
            rules.append(Rule("accept", proto, str(a) if a == b else f"{a}-{b}"))
        return rules
    return None


def canonical(tables: dict[str, FilterTable]) -> Value:
    """The canonical value of our chains (None when no family holds anything of ours)."""
    families = [f for f in FAMILIES if f in tables and tables[f].ours]
    if not families:
        return None
    per_family: dict[str, list[Rule]] = {}
    policies: dict[str, str] = {}
    hooks: dict[str, str] = {}
    for family in families:
        table = tables[family]
        parsed = [(args, parse_rule(args, family)) for args in table.rules]
        terminal = bool(parsed) and parsed[-1][1] == REJECT and table.policy == "DROP"
        if terminal:
            parsed = parsed[:-1]
        rules: list[Rule] = []
        for args, found in parsed:
            rules.extend(found if isinstance(found, list) else [Rule("raw", "raw", args)])
        per_family[family] = rules
        if table.policy == "DROP":
            policies[family] = "reject" if terminal else "drop"
        else:
            policies[family] = (table.policy or "none").lower()
        if table.jumps == [PLAIN_JUMP]:
            hooks[family] = IPTABLES_HOOK
        elif not table.jumps:
            hooks[family] = "no jump from INPUT"
        else:
            hooks[family] = "INPUT jumps: " + " | ".join(table.jumps)
    return {
        "families": families,
        "policy": _same_or_each(policies),
        "hook": _same_or_each(hooks),
        "records": merge_families(per_family, families),
    }


def _same_or_each(by_family: dict[str, str]) -> str:
    values = set(by_family.values())
    if len(values) == 1:
        return values.pop()
    return "; ".join(f"{family}: {value}" for family, value in by_family.items())


def restore_text(value: Value, family: str, old: FilterTable) -> str:
    """``iptables-restore --noflush`` input that makes ``value`` live in ``family``."""
    lines = ["*filter"]
    if value is not None and family in value["families"]:
        lines += [":INPUT DROP [0:0]", f":{CHAIN} - [0:0]"]
        kept = False
        for jump in old.jumps:
            if jump == PLAIN_JUMP and not kept:
                kept = True  # stays where it is: fail2ban's jumps above it stay above it
            else:
                lines.append(f"-D INPUT {jump}")
        if not kept:
            lines.append(f"-A INPUT {PLAIN_JUMP}")
        lines += iptables_chain_lines(value, family)
    else:
        # Removing: INPUT's policy goes back to ACCEPT, so that taking sipctl away can
        # never leave a host that nobody can reach.
        lines += [":INPUT ACCEPT [0:0]", f":{CHAIN} - [0:0]"]
        lines += [f"-D INPUT {jump}" for jump in old.jumps]
        lines.append(f"-X {CHAIN}")
    return "\n".join([*lines, "COMMIT", ""])


def rollback_text(value: Value, family: str, old: FilterTable) -> str:
    """Input that turns what ``restore_text`` made back into ``old``."""
    lines = ["*filter", f":INPUT {old.policy or 'ACCEPT'} [0:0]", f":{CHAIN} - [0:0]"]
    applied = value is not None and family in value["families"]
    readd = list(old.jumps)
    if applied and PLAIN_JUMP in old.jumps:
        readd.remove(PLAIN_JUMP)  # the one apply kept in place
    elif applied:
        lines.append(f"-D INPUT {PLAIN_JUMP}")  # the one apply appended
    lines += [f"-A INPUT {jump}" for jump in readd]
    if old.chain:
        lines += [f"-A {CHAIN} {rule}" for rule in old.rules]
    else:
        lines.append(f"-X {CHAIN}")
    return "\n".join([*lines, "COMMIT", ""])


@dataclass
class IptablesKept(FirewallKept):
    """Also the live filter tables, by family (the undo of each step)."""

    tables: dict[str, FilterTable] = field(default_factory=dict)


class IptablesProvider(FirewallProvider):
    """Chain SIPCTL in the filter table of iptables (and ip6tables)."""

    name: ClassVar[str] = "iptables"
    kept_type: ClassVar[type[FirewallKept]] = IptablesKept
    other_backend_shell: ClassVar[str] = OTHER_BACKEND_SHELL

    def snapshot(self) -> str:
        return (
            "sipctl_v4=$(iptables-save -t filter 2>&1); sipctl_r4=$?\n"
            "sipctl_v6=$(ip6tables-save -t filter 2>&1); sipctl_r6=$?\n"
            'sipctl_digest=$(printf \'%s\\n%s\\n\' "$sipctl_v4" "$sipctl_v6" | '
            f"{_DIGEST_FILTER})\n"
        )

    def snapshot_sections(self) -> dict[str, str]:
        return {
            "ipv4": 'printf "%s" "$sipctl_v4"; (exit $sipctl_r4)',
            "ipv6": 'printf "%s" "$sipctl_v6"; (exit $sipctl_r6)',
        }

    def parse_snapshot(self, sections: dict[str, Section], live: LiveState) -> Value:
        tables: dict[str, FilterTable] = {}
        need_ipv6 = self.fw.ensure == "present" and wants_ipv6(self.spec)
        for family in FAMILIES:
            section = sections.get(family, Section("no answer", 255))
            if section.status == 0:
                tables[family] = parse_save(section.body)
                continue
            why = (
                f"{_SAVE[family]} is not installed (install the iptables package)"
                if section.status == 127
                else f"{_SAVE[family]} failed: {peer_words(section.body, 200)}"
            )
            if family == "ipv4" or need_ipv6:
                live.problems.append(why)
        kept = live.kept_as(IptablesKept)
        kept.tables = dict(tables)
        kept.digest = sections.get("digest", Section("", 0)).body.strip()
        if sections.get("other", Section("", 1)).status == 0:
            live.notes.append(
                "table inet sipctl of the nftables backend is still loaded; it filters too. "
                "Remove it: apply once with backend: nftables and ensure: absent"
            )
        return canonical(tables)

    def parse_persist(self, files: dict[str, str | None]) -> Value:
        tables = {f: parse_save(text) for f, text in files.items() if text is not None}
        return canonical(tables)

    def _touched(self, value: Value, old: dict[str, FilterTable]) -> list[str]:
        wanted = value["families"] if value is not None else []
        return [f for f in FAMILIES if f in wanted or (f in old and old[f].ours)]

    def steps(self, value: Value, live: LiveState, delimiter: str) -> list[Step]:
        old = live.kept_as(IptablesKept).tables
        steps = []
        for family in self._touched(value, old):
            table = old.get(family, FilterTable())
            command = f"{_RESTORE[family]} -w 10 --noflush"
            steps.append(
                Step(
                    family,
                    heredoc(command, restore_text(value, family, table), delimiter),
                    heredoc(command, rollback_text(value, family, table), delimiter),
                )
            )
        return steps

    def describe(self, value: Value) -> str:
        if value is None:
            return f"chain {CHAIN} removed, INPUT policy back to ACCEPT"
        families = "+".join(value["families"])
        return (
            f"chain {CHAIN} written ({len(value['records'])} rules, policy "
            f"{value['policy']}, {families})"
        )
