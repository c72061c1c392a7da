"""Values are data, proven by the real programs' own parsers.

Each exploit of issue 9 is reproduced first: the file sipctl rendered before the rule (a
value forced past validation with ``model_copy``) fools the real parser - fail2ban's config
reader sees a jail of the attacker's, named-checkzone a record of the attacker's. Then the
same spec is refused at load time with file:line:col.

The property tests generate specs from the JSON Schema (tests/spec_strategies.py): every
string field refuses every forbidden character, and every accepted hostile spec renders files
that fail2ban's reader and named-checkzone read back with the meaning sipctl intended.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.fail2ban_reader import config_dir, read_configs
from fixtures.netns import Netns
from fixtures.properties import examples
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from spec_strategies import FULL_SPEC, KEY, hostile_specs, set_at, string_paths

from sipctl.errors import SpecError
from sipctl.reconciler.render.dns import render_dns, zone_snippet
from sipctl.reconciler.render.fail2ban import (
    ALWAYS_IGNORED,
    JAIL_NAME,
    ban_ports,
    banaction,
    fail2ban_artefacts,
)
from sipctl.reconciler.render.firewall import (
    desired_ruleset,
    persist_paths,
    persist_texts,
    wants_ipv6,
)
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.spec import Spec
from sipctl.schemas.text import FORBIDDEN_PATTERN


def fast(count: int) -> settings:
    return settings(
        max_examples=examples(count),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        # No shrinking: each try runs real programs, and shrinking a batch took over five
        # minutes, so pytest's timeout hid the failure it was shrinking.
        phases=(Phase.explicit, Phase.generate),
    )


ZONE_HEAD = (
    "$TTL 600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 192.0.2.53\n"
)


def full_spec(**changes: Any) -> Spec:
    data = {**FULL_SPEC, **changes}
    return load_spec_text(yaml.safe_dump(data, allow_unicode=True)).spec


def forced(spec: Spec, section: str, **values: Any) -> Spec:
    """``spec`` with values no validator saw: what sipctl rendered before the rule."""
    part = getattr(spec, section)
    return spec.model_copy(update={section: part.model_copy(update=values)})


def fail2ban_reading(tmp_path: Path, spec: Spec) -> Any:
    conf = config_dir(tmp_path, fail2ban_artefacts(spec))
    return read_configs([conf])[conf]


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        load_spec_text(yaml.safe_dump(data, allow_unicode=False), source="s.yaml")
    return "\n".join(info.value.problems or [str(info.value)])


# --- the exploits -----------------------------------------------------------------------------

INJECTED_JAIL = (
    "/var/log/asterisk/messages.log\r[pwn]\renabled = true\rfilter = sipctl-asterisk\r"
    "logpath = /var/log/asterisk/messages.log\rbackend = auto\r"
    'action = dummy[actionstart="touch /tmp/pwned"]\r[sipctl-rest]'
)


@pytest.mark.fail2ban
def test_cr_in_logpath_gave_fail2ban_a_root_command_and_is_refused(tmp_path: Path) -> None:
    before = fail2ban_reading(tmp_path, forced(full_spec(), "fail2ban", logpath=INJECTED_JAIL))
    assert "pwn" in before.jails  # fail2ban reads CR as a line break: a jail of the attacker's
    assert before.actions("pwn")["dummy"]["actionstart"] == "touch /tmp/pwned"

    data = set_at(FULL_SPEC, ("fail2ban", "logpath"), INJECTED_JAIL)
    assert "s.yaml:18:12: fail2ban.logpath contains U+000D (CARRIAGE RETURN)" in refusal(data)


@pytest.mark.fail2ban
def test_a_jail_added_through_ignoreip_is_refused(tmp_path: Path) -> None:
    evil = "10.0.0.1\n[pwn]\nenabled = true\nfilter = sipctl-asterisk\nlogpath = /var/log/syslog"
    spec = forced(full_spec(), "fail2ban", ignoreip=(evil,))
    assert "pwn" in fail2ban_reading(tmp_path, spec).jails
    assert "fail2ban.ignoreip[0] contains U+000A" in refusal(
        set_at(FULL_SPEC, ("fail2ban", "ignoreip", 0), evil)
    )


@pytest.mark.fail2ban
def test_a_scope_id_in_ignoreip_broke_all_of_fail2ban_and_is_refused(tmp_path: Path) -> None:
    spec = forced(full_spec(), "fail2ban", ignoreip=("fe80::1%eth0",))
    reading = fail2ban_reading(tmp_path, spec)
    assert not reading.ok  # '%' starts an interpolation: fail2ban refuses the whole config
    assert "scope id" in refusal(set_at(FULL_SPEC, ("fail2ban", "ignoreip", 0), "fe80::1%eth0"))


@pytest.mark.parametrize("entry", ["0.0.0.0/0", "::/0", "0.0.0.0"])
def test_ignoreip_covering_everything_is_refused(entry: str) -> None:
    problems = refusal(set_at(FULL_SPEC, ("fail2ban", "ignoreip", 0), entry))
    assert "fail2ban.ignoreip[0]" in problems and ("every address" in problems or "any" in problems)


@pytest.mark.fail2ban
def test_a_percent_in_logpath_reads_back_as_written(tmp_path: Path) -> None:
    spec = full_spec(fail2ban={**FULL_SPEC["fail2ban"], "logpath": "/var/log/100%x%%s/m.log"})
    reading = fail2ban_reading(tmp_path, spec)
    assert reading.ok, reading
    assert reading.jails[JAIL_NAME]["logpath"] == "/var/log/100%x%%s/m.log"


FORGED = "2001:db8::1%x\nevil.mysite.ru. 60 IN A 6.6.6.6"


@pytest.mark.programs
def test_an_ipv6_scope_id_forged_zone_records_and_is_refused(tmp_path: Path) -> None:
    server = full_spec().servers[0]
    spec = full_spec().model_copy(
        update={"servers": (server.model_copy(update={"ipv6": (FORGED,)}),)}
    )
    snippet = zone_snippet(spec)
    # named-checkzone reads the address line as broken and the next as a record of its own:
    # with the broken line fixed, the attacker's A record is in the zone.
    check = named_checkzone(tmp_path, snippet)
    assert "bad IPv6 address" in check.stdout + check.stderr
    fixed = named_checkzone(tmp_path, snippet.replace("2001:db8::1%x", "2001:db8::1"))
    assert ("evil.mysite.ru.", "A", "6.6.6.6") in zone_records(fixed.stdout)

    problems = refusal(set_at(FULL_SPEC, ("servers", 0, "ipv6", 0), FORGED))
    assert "servers[0].ipv6[0] contains U+000A" in problems
    no_newline = refusal(set_at(FULL_SPEC, ("servers", 0, "ipv6", 0), "2001:db8::1%eth0"))
    assert "servers[0].ipv6[0]: '2001:db8::1%eth0' has a scope id" in no_newline


def named_checkzone(tmp_path: Path, snippet: str) -> subprocess.CompletedProcess[str]:
    zone = tmp_path / "zone.db"
    zone.write_text(ZONE_HEAD + snippet)
    program = shutil.which("named-checkzone") or "/usr/bin/named-checkzone"
    return subprocess.run(
        [program, "-D", "-o", "-", "mysite.ru", str(zone)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


# --- the one rule, over every string field of the JSON Schema --------------------------------

FORBIDDEN_SAMPLE = [chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)]
FORBIDDEN_SAMPLE += ["\u2028", "\u2029", "\u202e", "\u2066", "\ufeff"]
PATHS = string_paths()


def test_the_schema_lists_the_string_fields_we_know() -> None:
    for path in [("fail2ban", "logpath"), ("asterisk", "program"), ("users", KEY)]:
        assert path in PATHS
    assert len(PATHS) > 40


@pytest.mark.parametrize("path", PATHS, ids=lambda p: ".".join(map(str, p)))
@fast(8)
@given(
    char=st.sampled_from(FORBIDDEN_SAMPLE),
    before=st.text(alphabet="abc/.:-1", max_size=6),
    after=st.text(alphabet="abc/.:-1", max_size=6),
)
def test_every_string_field_refuses_every_forbidden_character(
    path: tuple[Any, ...], char: str, before: str, after: str
) -> None:
    data = set_at(FULL_SPEC, path, before + char + after)
    # Escaped ("\x85"): a raw NEL or LS in YAML text is a line break of YAML's own.
    with pytest.raises(SpecError) as info:
        load_spec_text(yaml.safe_dump(data, allow_unicode=False), source="s.yaml")
    message = "\n".join(info.value.problems or [str(info.value)])
    assert f"U+{ord(char):04X}" in message, message
    assert message.startswith("s.yaml:") and char not in message


# --- accepted hostile specs render files the real parsers read as meant ------------------------


def all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in all_strings(k) + all_strings(v)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in all_strings(item)]
    return []


def accepted(batch: list[dict[str, Any]]) -> list[Spec]:
    specs = []
    for data in batch:
        try:
            spec = load_spec_text(yaml.safe_dump(data, allow_unicode=True)).spec
        except SpecError:
            continue
        strings = all_strings(spec.model_dump())
        assert not [s for s in strings if FORBIDDEN_PATTERN.search(s)], data
        specs.append(spec)
    return specs


def intended_jail(spec: Spec) -> dict[str, str]:
    section = spec.fail2ban
    assert section is not None
    ignored = list(ALWAYS_IGNORED) + [i for i in section.ignoreip if i not in ALWAYS_IGNORED]
    return {
        "enabled": "True" if section.enabled else "False",
        "filter": "sipctl-asterisk",
        "logpath": section.logpath,
        "maxretry": str(section.maxretry),
        "findtime": str(section.findtime),
        "bantime": str(section.bantime),
        "ignoreip": " ".join(ignored),
    }


FAIL2BAN_PATHS = [p for p in PATHS if p[0] in ("fail2ban", "transports", "firewall")]
DNS_PATHS = [p for p in PATHS if p[0] in ("domain", "servers", "dns", "users")]


@pytest.mark.fail2ban
@fast(3)
# 60 hostile specs: about a tenth pass the spec's rules, and a batch of 30 gave four (too
# few) once the path rule refused more.
@given(batch=st.lists(hostile_specs(FAIL2BAN_PATHS), min_size=60, max_size=60))
def test_accepted_specs_give_fail2ban_the_jail_sipctl_meant(
    batch: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    specs = [s for s in accepted(batch) if s.fail2ban is not None]
    assert len(specs) >= 5, "too few accepted specs to prove anything"
    dirs = [config_dir(tmp_path_factory.mktemp("f2b"), fail2ban_artefacts(s)) for s in specs]
    readings = read_configs(dirs)
    for spec, conf in zip(specs, dirs, strict=True):
        reading = readings[conf]
        assert reading.ok, (spec.fail2ban, reading.error, reading.jails)
        assert list(reading.jails) == [JAIL_NAME]
        options = reading.jails[JAIL_NAME]
        wanted = intended_jail(spec)
        assert {k: options.get(k) for k in wanted} == wanted
        actions = reading.actions(JAIL_NAME)
        assert list(actions) == [banaction(spec)]
        assert actions[banaction(spec)]["port"] == ban_ports(spec)
        assert actions[banaction(spec)]["protocol"] == "tcp,udp"


def zone_records(text: str) -> set[tuple[str, str, str]]:
    """(owner, type, rdata) of a ``named-checkzone -D`` dump or our snippet, dnspython-parsed."""
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    found = set()
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        words = line.split(None, 4)
        owner, _ttl, _cls, rdtype, rdata = words
        parsed = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), rdata)
        found.add((owner.lower(), rdtype, parsed.to_text()))
    return found


@pytest.mark.programs
@fast(60)
@given(data=hostile_specs(DNS_PATHS))
def test_accepted_specs_give_named_the_records_sipctl_meant(
    data: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    specs = accepted([data])
    if not specs or specs[0].dns is None:
        return
    spec = specs[0]
    snippet = zone_snippet(spec)
    check = named_checkzone(tmp_path_factory.mktemp("zone"), snippet)
    assert check.returncode == 0, check.stdout + check.stderr
    meant = {
        (r.address.name.lower(), r.address.kind, str(rdata))
        for r in render_dns(spec)
        for rdata in r.value["records"]
    }
    meant = zone_records("\n".join(f"{o} 1 IN {t} {d}" for o, t, d in meant))
    read = {
        r
        for r in zone_records(check.stdout)
        if r[1] not in ("SOA", "NS") and r[0] != "ns1.mysite.ru."
    }
    assert read == meant


# --- the firewall: iptables-restore and nft, inside a network namespace ------------------------

FIREWALL_PATHS = [p for p in PATHS if p[0] in ("firewall", "transports", "domain", "servers")]


def kernel_reads_iptables(ns: Netns, spec: Spec) -> Any:
    """Load the persist files as a boot would; what iptables-save then shows, canonical."""
    from sipctl.providers.firewall.iptables import canonical, parse_save

    fw = spec.firewall
    assert fw is not None
    paths = persist_paths(fw, wants_ipv6(spec))
    texts = persist_texts(spec)
    tables = {}
    for family, path in paths.items():
        restore = "iptables-restore" if family == "ipv4" else "ip6tables-restore"
        ns.run(restore, "--test", input=texts[path])
        ns.run(restore, input=texts[path])
        save = "iptables-save" if family == "ipv4" else "ip6tables-save"
        tables[family] = parse_save(ns.run(save, "-t", "filter").stdout)
    return canonical(tables)


def kernel_reads_nft(ns: Netns, spec: Spec, tmp: Path) -> Any:
    from sipctl.providers.firewall.nftables import parse_text

    script = tmp / "sipctl.nft"
    [text] = persist_texts(spec).values()
    script.write_text(text)
    ns.run("nft", "-c", "-f", str(script))
    ns.run("nft", "-f", str(script))
    return parse_text(ns.run("nft", "list", "table", "inet", "sipctl").stdout)


@pytest.mark.netns
@fast(2)
@given(batch=st.lists(hostile_specs(FIREWALL_PATHS), min_size=12, max_size=12))
def test_accepted_specs_give_the_kernel_the_rules_sipctl_meant(
    batch: list[dict[str, Any]], netns: Netns, tmp_path_factory: pytest.TempPathFactory
) -> None:
    specs = [s for s in accepted(batch) if s.firewall is not None]
    assert specs, "no accepted spec to prove anything"
    for spec in specs:
        assert spec.firewall is not None
        if spec.firewall.ensure != "present" or spec.firewall.persist is None:
            continue
        iptables = forced(spec, "firewall", backend="iptables")
        assert kernel_reads_iptables(netns, iptables) == desired_ruleset(iptables)
        nft = forced(spec, "firewall", backend="nftables")
        tmp = tmp_path_factory.mktemp("nft")
        assert kernel_reads_nft(netns, nft, tmp) == desired_ruleset(nft)
