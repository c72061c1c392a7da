"""The firewall layer's desired state: a canonical, backend-neutral rule set, and its texts.

The rule set is a value both backends can be compared against: ``{"families", "policy",
"hook", "records"}``, where every record is one accepted packet class written the same way
whatever printed it (``accept tcp 5060``, ``accept udp 10000-20000``, ``accept icmp
echo-request``). A record that holds only in one address family is prefixed with it
(``ipv4 accept tcp 443``); ICMP and ICMPv6 records carry their family in their protocol.
Records are a sorted set: every rule sipctl writes accepts, so their order means nothing,
and a reordered chain is not a change. ``policy: reject`` is a drop policy plus one final
reject rule (neither iptables nor nftables has a reject policy).

The texts (``iptables-restore`` input, the ``nft -f`` script, the persist files) are pure
functions of that value; providers parse live output back into the same value.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sipctl.reconciler.resources import Address, Resource

if TYPE_CHECKING:
    from sipctl.schemas.spec import Firewall, Spec

LAYER = "firewall"
PERSIST_HEADER = "# Written by sipctl; do not edit (sipctl apply rewrites it)."
CHAIN = "SIPCTL"  # iptables: our chain in the filter table
NFT_TABLE = "inet sipctl"  # nftables: our table
NFT_CHAIN = "input"
FAMILIES = ("ipv4", "ipv6")
IPTABLES_HOOK = f"INPUT -j {CHAIN}"
NFT_HOOK = "filter input priority 0"
# What ICMPv6 must let through for IPv6 to work at all (RFC 4890): router and neighbour
# discovery. Without them the host loses its neighbours, and with them every IPv6 peer.
ICMPV6_ESSENTIAL = (
    "nd-router-solicit",
    "nd-router-advert",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
)
ICMP_CODES = {"echo-request": 8}
ICMPV6_CODES = {
    "echo-request": 128,
    "nd-router-solicit": 133,
    "nd-router-advert": 134,
    "nd-neighbor-solicit": 135,
    "nd-neighbor-advert": 136,
}
_KIND_ORDER = {"ct": 0, "iif": 1, "icmp": 2, "icmpv6": 3, "tcp": 4, "udp": 4, "raw": 9}


@dataclass(frozen=True)
class Rule:
    """One canonical rule. ``family`` is "" when it holds in every family it can."""

    action: str  # accept | drop | reject
    kind: str  # ct | iif | icmp | icmpv6 | tcp | udp | raw
    arg: str  # states, interface, ICMP type, port or range ("10000-20000"), raw text
    family: str = ""

    @property
    def record(self) -> str:
        prefix = f"{self.family} " if self.family else ""
        if self.kind == "raw":
            return f"{prefix}raw {self.arg}"
        return f"{prefix}{self.action} {self.kind} {self.arg}"

    @classmethod
    def from_record(cls, record: str) -> Rule:
        words = record.split(" ")
        family = words.pop(0) if words[0] in FAMILIES else ""
        if words[0] == "raw":
            return cls("raw", "raw", " ".join(words[1:]), family)
        if len(words) < 3:
            raise ValueError(f"not a firewall record: {record!r}")
        return cls(words[0], words[1], " ".join(words[2:]), family)

    def natural(self, families: Sequence[str]) -> tuple[str, ...]:
        """The families this rule can hold in: ICMP is IPv4, ICMPv6 is IPv6, the rest both."""
        if self.kind == "icmp":
            return ("ipv4",) if "ipv4" in families else ()
        if self.kind == "icmpv6":
            return ("ipv6",) if "ipv6" in families else ()
        return tuple(families)

    def families(self, families: Sequence[str]) -> tuple[str, ...]:
        return (self.family,) if self.family else self.natural(families)

    def port_range(self) -> tuple[int, int]:
        first, _, last = self.arg.partition("-")
        return int(first), int(last or first)

    def sort_key(self) -> tuple[int, int, int, str, str]:
        first, last = self.port_range() if self.kind in ("tcp", "udp") else (0, 0)
        return (_KIND_ORDER.get(self.kind, 8), first, last, self.kind + " " + self.arg, self.family)


def port_text(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def sort_records(records: Iterable[str]) -> list[str]:
    unique = {Rule.from_record(r) for r in records}
    return [r.record for r in sorted(unique, key=Rule.sort_key)]


def merge_families(per_family: dict[str, list[Rule]], families: Sequence[str]) -> list[str]:
    """Records of rules found per family: a rule found in all its natural families is
    written once without a prefix, else once per family that has it."""
    found: dict[Rule, set[str]] = {}
    for family, rules in per_family.items():
        for rule in rules:
            found.setdefault(Rule(rule.action, rule.kind, rule.arg), set()).add(family)
    records = []
    for rule, where in found.items():
        if set(rule.natural(families)) == where:
            records.append(rule.record)
        else:
            records.extend(Rule(rule.action, rule.kind, rule.arg, f).record for f in sorted(where))
    return sort_records(records)


def rules_for(value: dict[str, Any], family: str) -> list[Rule]:
    """The rules of ``value`` that hold in ``family``, in the order they are written."""
    families = value["families"]
    rules = [Rule.from_record(r) for r in value["records"]]
    return sorted((r for r in rules if family in r.families(families)), key=Rule.sort_key)


# --- the desired rule set -----------------------------------------------------------------


def wants_ipv6(spec: Spec) -> bool:
    """IPv6 input is always filtered, by both backends alike: a host whose spec names no IPv6
    address still has link-local and often SLAAC addresses, and an open IPv6 INPUT would let
    in every port the IPv4 rules deny. So it is default-deny with the same ports open, plus
    the ICMPv6 that IPv6 needs to work at all."""
    assert spec.firewall is not None
    return True


def desired_ruleset(spec: Spec) -> dict[str, Any]:
    """The canonical value of the firewall layer (see the module docstring)."""
    fw: Firewall | None = spec.firewall
    assert fw is not None
    families = list(FAMILIES) if wants_ipv6(spec) else ["ipv4"]
    rules = [Rule("accept", "ct", "established,related"), Rule("accept", "iif", "lo")]
    if fw.allow_ping:
        rules.append(Rule("accept", "icmp", "echo-request"))
        if "ipv6" in families:
            rules.append(Rule("accept", "icmpv6", "echo-request"))
    if "ipv6" in families:
        rules.extend(Rule("accept", "icmpv6", name) for name in ICMPV6_ESSENTIAL)
    rules.append(Rule("accept", "tcp", str(fw.ssh_port)))
    for proto, port in spec.transports.listening().values():
        rules.append(Rule("accept", proto, str(port)))
    if spec.asterisk is not None:
        rtp = spec.asterisk.rtp
    else:  # the media range Asterisk would use by default
        from sipctl.schemas.spec import Rtp

        rtp = Rtp()
    rules.append(Rule("accept", "udp", port_text(rtp.start, rtp.end)))
    for extra in fw.extra:
        proto, _, ports = extra.partition("/")
        rules.append(Rule("accept", proto, ports))
    hook = IPTABLES_HOOK if fw.backend == "iptables" else NFT_HOOK
    return {
        "families": families,
        "policy": fw.policy,
        "hook": hook,
        "records": sort_records(r.record for r in rules),
    }


def accepts_tcp(value: dict[str, Any] | None, port: int, family: str) -> bool:
    """Whether a rule set lets a NEW TCP connection to ``port`` in (over ``family``)."""
    if value is None:
        return True
    if family not in value["families"]:
        return True  # that family is not filtered by us
    for rule in rules_for(value, family):
        if rule.action == "accept" and rule.kind == "tcp":
            first, last = rule.port_range()
            if first <= port <= last:
                return True
    return False


# --- texts ------------------------------------------------------------------------------------


def iptables_rule_args(rule: Rule, family: str) -> str:
    """The arguments of ``-A SIPCTL`` for one rule, in the form iptables-save prints back."""
    if rule.kind == "ct":
        return f"-m conntrack --ctstate {rule.arg.upper()} -j ACCEPT"
    if rule.kind == "iif":
        return f"-i {rule.arg} -j ACCEPT"
    if rule.kind == "icmp":
        return f"-p icmp -m icmp --icmp-type {ICMP_CODES[rule.arg]} -j ACCEPT"
    if rule.kind == "icmpv6":
        return f"-p ipv6-icmp -m icmp6 --icmpv6-type {ICMPV6_CODES[rule.arg]} -j ACCEPT"
    if rule.kind in ("tcp", "udp"):
        first, last = rule.port_range()
        ports = str(first) if first == last else f"{first}:{last}"
        return f"-p {rule.kind} -m {rule.kind} --dport {ports} -j ACCEPT"
    raise ValueError(f"cannot write {rule.record!r} as an iptables rule")


def iptables_reject_args(family: str) -> str:
    unreachable = "icmp-port-unreachable" if family == "ipv4" else "icmp6-port-unreachable"
    return f"-j REJECT --reject-with {unreachable}"


def iptables_chain_lines(value: dict[str, Any], family: str) -> list[str]:
    """The ``-A SIPCTL`` lines of ``value`` for ``family``."""
    lines = [f"-A {CHAIN} {iptables_rule_args(r, family)}" for r in rules_for(value, family)]
    if value["policy"] == "reject":
        lines.append(f"-A {CHAIN} {iptables_reject_args(family)}")
    return lines


def iptables_persist_text(value: dict[str, Any] | None, family: str, path: str = "FILE") -> str:
    """A whole filter table for ``iptables-restore < FILE`` at boot.

    Why a whole table and not a ``--noflush`` fragment: the classic ``post-up
    iptables-restore < /etc/iptables.up`` line restores without ``--noflush``, and a fragment
    that appends the INPUT jump would add a second jump each time it ran. At boot the table
    is empty and fail2ban and Docker create their own chains when they start, so a table that
    holds only our chain loses nothing there. Built-in chains other than INPUT are not named,
    so their policies stay as they are. ``value`` None (``ensure: absent``) writes a table
    that leaves INPUT open, so an old post-up line restores nothing of ours.
    """
    program = "iptables-restore" if family == "ipv4" else "ip6tables-restore"
    head = [
        PERSIST_HEADER,
        f"# Restore at boot with: post-up {program} < {path}",
        "# It replaces the whole filter table: on a running host use 'sipctl apply' instead.",
        "*filter",
    ]
    if value is None or family not in value["families"]:
        return "\n".join([*head, ":INPUT ACCEPT [0:0]", "COMMIT", ""])
    body = [":INPUT DROP [0:0]", f":{CHAIN} - [0:0]", f"-A {IPTABLES_HOOK}"]
    return "\n".join([*head, *body, *iptables_chain_lines(value, family), "COMMIT", ""])


def nft_rule_text(rule: Rule) -> str:
    prefix = f"meta nfproto {rule.family} " if rule.family else ""
    if rule.kind == "ct":
        return f"{prefix}ct state {rule.arg} accept"
    if rule.kind == "iif":
        return f'{prefix}iifname "{rule.arg}" accept'
    if rule.kind in ("icmp", "icmpv6"):
        return f"{prefix}{rule.kind} type {rule.arg} accept"
    if rule.kind in ("tcp", "udp"):
        return f"{prefix}{rule.kind} dport {rule.arg} accept"
    raise ValueError(f"cannot write {rule.record!r} as an nftables rule")


def nft_script(value: dict[str, Any] | None, path: str = "FILE") -> str:
    """One ``nft -f`` transaction that replaces ``table inet sipctl`` and nothing else.

    ``table ... {}`` then ``delete table`` makes the script work whether the table exists
    or not; deleting (rather than ``flush table``) lets a changed base chain (its policy,
    hook or priority) be recreated. nft applies the file as one transaction, so there is
    never a moment without rules, and other tables (fail2ban's ``f2b-table``) are untouched.
    ``value`` None (``ensure: absent``) only deletes our table.
    """
    lines = [
        PERSIST_HEADER,
        f'# Include it from /etc/nftables.conf: include "{path}"',
        f"table {NFT_TABLE} {{}}",
        f"delete table {NFT_TABLE}",
    ]
    if value is None:
        return "\n".join([*lines, ""])
    rules = sorted(
        (Rule.from_record(r) for r in value["records"]),
        key=Rule.sort_key,
    )
    body = [
        f"table {NFT_TABLE} {{",
        f"\tchain {NFT_CHAIN} {{",
        "\t\ttype filter hook input priority filter; policy drop;",
        *(f"\t\t{nft_rule_text(r)}" for r in rules),
        *(["\t\treject"] if value["policy"] == "reject" else []),
        "\t}",
        "}",
    ]
    return "\n".join([*lines, *body, ""])


def persist_paths(fw: Firewall, ipv6: bool, always_ipv6: bool = True) -> dict[str, str]:
    """Persist file per family (iptables) or for the table (nftables, key "inet").

    The IPv6 file of iptables sits beside the IPv4 one, named as Debian names them:
    ``rules.v4`` -> ``rules.v6``, ``iptables.up`` -> ``ip6tables.up``, else ``FILE.v6``.
    It is written even when IPv6 is not filtered (then it leaves INPUT open): a file that
    held our IPv6 rules must not bring them back at the next boot after IPv6 left the spec.
    """
    if fw.persist is None:
        return {}
    if fw.backend == "nftables":
        return {"inet": fw.persist}
    paths = {"ipv4": fw.persist}
    if ipv6 or always_ipv6:
        directory, name = posixpath.split(fw.persist)
        if name.endswith(".v4"):
            name = name[:-3] + ".v6"
        elif "iptables" in name:
            name = name.replace("iptables", "ip6tables", 1)
        else:
            name += ".v6"
        paths["ipv6"] = posixpath.join(directory, name)
    return paths


def persist_texts(spec: Spec, paths: dict[str, str] | None = None) -> dict[str, str]:
    """Persist path -> content for the spec (empty without ``persist``).

    ``paths`` overrides where each family's file goes (``render --dir`` without persist).
    """
    fw = spec.firewall
    assert fw is not None
    value = desired_ruleset(spec) if fw.ensure == "present" else None
    ipv6 = fw.ensure == "present" and wants_ipv6(spec)
    texts = {}
    for key, path in (paths or persist_paths(fw, ipv6)).items():
        if key == "inet":
            texts[path] = nft_script(value, path)
        else:
            texts[path] = iptables_persist_text(value, key, path)
    return texts


# --- the layer's entry points -----------------------------------------------------------


def ruleset_address(fw: Firewall) -> Address:
    if fw.backend == "nftables":
        return Address(LAYER, "table", NFT_TABLE)
    return Address(LAYER, "chain", CHAIN)


def file_address(path: str) -> Address:
    return Address(LAYER, "file", path)


def persist_file_shown(text: str) -> str:
    """What a plan holds of a live persist file: one sipctl wrote, whole (its lines are
    rules); any other only by size and digest. The spec names the path (``firewall.persist``),
    so a merge request could otherwise point it at ``/etc/shadow`` or a key and read that
    file in the plan's diff, its JSON and the Markdown comment of the pipeline. The digest
    still tells a changed file from the one planned against."""
    if text.startswith(PERSIST_HEADER + "\n"):
        return text
    data = text.encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(data).hexdigest()
    return f"(a file sipctl did not write: {len(data)} bytes, sha256 {digest})\n"


def render_firewall(spec: Spec) -> list[Resource]:
    """The rule set (unless ``ensure: absent``) and the persist file(s), when set."""
    fw = spec.firewall
    if fw is None:
        return []
    resources = []
    if fw.ensure == "present":
        resources.append(Resource(ruleset_address(fw), desired_ruleset(spec)))
    for path, text in persist_texts(spec).items():
        resources.append(Resource(file_address(path), text))
    return resources


def firewall_artefacts(spec: Spec) -> dict[str, str]:
    """What ``sipctl render --dir`` writes for the firewall (under ``firewall/``): the
    persist file(s) with their own names (default names when ``persist`` is not set).

    The nft file is also the exact script ``apply`` runs; the iptables files hold the chain
    ``apply`` writes with ``iptables-restore --noflush`` (which adds the INPUT jump only when
    it is missing, instead of replacing the whole table).
    """
    fw = spec.firewall
    if fw is None:
        return {}
    ipv6 = fw.ensure == "present" and wants_ipv6(spec)
    paths = persist_paths(fw, ipv6)
    if not paths:
        paths = {"inet": "/sipctl.nft"} if fw.backend == "nftables" else {"ipv4": "/iptables.up"}
        if fw.backend == "iptables" and ipv6:
            paths["ipv6"] = "/ip6tables.up"
    texts = persist_texts(spec, paths)
    return {posixpath.basename(path): text for path, text in texts.items()}
