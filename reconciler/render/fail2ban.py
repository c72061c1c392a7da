"""Render the fail2ban layer: the filter for rejected SIP callers and the jail that uses it.

Pure: the spec goes in, the two files sipctl owns come out::

    <config_dir>/filter.d/sipctl-asterisk.conf   what a failure looks like in the Asterisk log
    <config_dir>/jail.d/sipctl.conf              [sipctl-asterisk]: where to look, when to ban
                                                 [sipctl-sshd] with fail2ban.sshd: the stock
                                                 sshd filter on the SSH port

Each file is one resource, owned whole. Its value is the file parsed as fail2ban parses it
(sections, keys, values with continuation lines joined), so comments, blank lines, spacing and
key order never make a change; its payload is the exact text to write.

``fail2ban.enabled: false`` keeps both files and writes the jail with ``enabled = false``:
the switch is fail2ban's own, a reload then stops the jail (lifting its bans), and turning it
back on is a one-word change an admin can read in the file. Leaving the ``fail2ban`` section
out of the spec means the layer is not managed at all (the files are left as they are).

The failregexes bind the address from a place the caller cannot move (measured on Asterisk
22.10, see tests/data/asterisk-22-*.log):

- the guest dialplan's ``Wrong call IP=<addr>[:port]`` must END the line: the extension the
  caller dialled is printed before it (``WARNING[pid][C-id] Ext. <exten>: Wrong call IP=..``),
  so a name such as ``x IP=6.6.6.6`` can only ever sit in front of the real address;
- ``<endpoint>: Call (UDP:<addr>:port) to extension '...' rejected because extension not found
  in context '...'.``: the address comes right after text Asterisk writes, the caller's
  extension only after it;
- ``Request 'M' from '<From>' failed for '<addr>:port' (callid: ...) - <reason>``: the From
  header (display name included, quotes and spaces allowed) and the Call-ID are both the
  caller's, on both sides of the address. The From is therefore parsed by its grammar (an
  optional quoted display name with backslash escapes, then ``<uri>`` without spaces or
  angle brackets), which leaves exactly one place for the address. The stock
  ``filter.d/asterisk.conf`` uses ``'(?:[^']*|.*?)'`` there and can be made to ban an address
  named in the display name; it also misses Asterisk 22's ``Call (UDP:...)`` form;
- ``Endpoint '<guest endpoint>' (<addr>:port) has no configured AORs``: a REGISTER that
  reached a guest endpoint (what scanners send to find accounts): one that writes
  ``1 INVITE`` in its CSeq (sipctl-guest, sipctl-browsers), or the ``anonymous`` endpoints
  of older sipctl versions. Asterisk prints the address there itself.

A stranger's request of any other method than INVITE and OPTIONS finds no endpoint
(asterisk.REFUSED_REQUESTS, also for the browsers' endpoint) and gives the "Request ... No
matching endpoint found" line: so SUBSCRIBE, PUBLISH, MESSAGE, REFER, NOTIFY, INFO, UPDATE,
PRACK, REGISTER and unknown methods are all counted, over every transport.

What no filter can stop: Asterisk writes the dialled name into the log unescaped, and a
Request-URI user part may carry ``%0A``, so a caller can write a whole line of their own
(up to 79 characters, AST_MAX_EXTENSION) that fail2ban cannot tell from a real one. Two
paths were measured: ``Log()`` in a catch-all prints ``Ext. <name>``, and Asterisk's own
"extension not found" NOTICE prints the name too. The Asterisk layer closes the first by
logging from a fixed extension (``Goto``) and must keep names out of the second; the live
test ``test_sipctl_guest_dialplan_lets_no_caller_forge_a_line`` shows where it stands.
"""

from __future__ import annotations

import configparser
import posixpath
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sipctl.reconciler.resources import Address, Resource, Value

if TYPE_CHECKING:
    from sipctl.reconciler.plan import Change
    from sipctl.schemas.spec import Fail2ban, Spec

LAYER = "fail2ban"
KIND = "file"
JAIL_NAME = "sipctl-asterisk"
SSHD_JAIL_NAME = "sipctl-sshd"
FILTER_NAME = "sipctl-asterisk"
FILTER_FILE = f"filter.d/{FILTER_NAME}.conf"
JAIL_FILE = "jail.d/sipctl.conf"
# Loopback is never banned, whatever the spec says: a ban there cuts Asterisk off from itself.
ALWAYS_IGNORED = ("127.0.0.1/8", "::1")
# Both protocols on every SIP port: a jail with "protocol = udp" leaves SIP over TCP open to
# the banned scanner, and "protocol = all" makes the multiport actions fail at start
# ("multiport needs -p tcp"). Both iptables and nftables actions loop over a comma list.
BAN_PROTOCOLS = "tcp,udp"
BANACTIONS = {"iptables": "iptables-multiport", "nftables": "nftables-multiport"}

_HEADER = "# Managed by sipctl: every change here is overwritten by the next 'sipctl apply'.\n"

# The filter is self-contained (no "before = common.conf") so that fail2ban-regex can prove
# it from any directory before it is written. Regexes are fail2ban syntax: <ADDR> is an IPv4
# or IPv6 address (with or without [brackets]), never a host name, so nothing is resolved.
FILTER_TEXT = (
    _HEADER
    + r"""# Asterisk log lines of callers that sipctl's guest setup rejected, and failed
# authentications. Lines as Asterisk 22 writes them to its own log file (logger.conf
# "messages"); fail2ban cuts the leading "[date]" and leaves "[]".

[Definition]

_pid = \[\d+\]
_callid = (?:\[C-[0-9a-f]+\])?
_start = ^\s*(?:\[\]\s*)?
_warning = %(_start)sWARNING%(_pid)s%(_callid)s
_notice = %(_start)sNOTICE%(_pid)s%(_callid)s
_source = [^\s:]+\.c:(?:\d+ \w+:)?
_transport = (?:UDP|TCP|TLS|WS|WSS)
_caller = (?:[^\s']+: Call|Call from '[^']*')
_not_found = to extension '.*' rejected because extension not found in context '[^']*'\.$
# A From header as Asterisk prints it: an optional "display name" (with \-escapes), <uri>.
_from = '(?:"(?:[^"\\]|\\.)*" )?<[^<>"\s]*>'
_request = %(_notice)s %(_source)s Request '[A-Za-z]+' from %(_from)s
_acl = Not match Endpoint(?: Contact)? ACL
_auth = (?:Failed|Error) to authenticate
_reason = (?:No matching endpoint found|%(_acl)s|%(_auth)s)
_guest = (?:sipctl-guest|sipctl-browsers|anonymous(?:@[^']*)?)

failregex = %(_warning)s Ext\. .*: Wrong call IP=<ADDR>(?::\d+)?$
            %(_notice)s %(_source)s\s+%(_caller)s \(%(_transport)s:<ADDR>:\d+\) %(_not_found)s
            %(_request)s failed for '<ADDR>(?::\d+)?' \(callid: .*\) - %(_reason)s$
            %(_warning)s %(_source)s Endpoint '%(_guest)s' \(<ADDR>:\d+\) has no configured AORs$

ignoreregex =

datepattern = {^LN-BEG}
"""
)

# A host of many customers logs the called domain after the address (asterisk_hosting): only
# host name characters, so the line still ends in text the caller cannot shape.
_DOMAIN_REGEX = (
    "            %(_warning)s Ext\\. .*: Wrong call IP=<ADDR>(?::\\d+)? domain=[0-9a-z.\\-]*$\n"
)
HOSTING_FILTER_TEXT = FILTER_TEXT.replace(
    "failregex = %(_warning)s Ext\\. .*: Wrong call IP=<ADDR>(?::\\d+)?$\n",
    "failregex = %(_warning)s Ext\\. .*: Wrong call IP=<ADDR>(?::\\d+)?$\n" + _DOMAIN_REGEX,
)


def filter_text(spec: Spec) -> str:
    """The filter of ``spec``'s jail: a host of many customers matches the domain too."""
    return HOSTING_FILTER_TEXT if spec.hosting is not None else FILTER_TEXT


def render_fail2ban(spec: Spec) -> list[Resource]:
    """The two owned files of the fail2ban layer, or none when the layer is not managed."""
    section = spec.fail2ban
    if section is None:
        return []
    files = desired_files(spec)
    return [
        Resource(file_address(path), normalize_ini(text), payload=text)
        for path, text in sorted(files.items())
    ]


def fail2ban_artefacts(spec: Spec) -> dict[str, str]:
    """Files for ``sipctl render --dir`` (written under fail2ban/, as in /etc/fail2ban)."""
    if spec.fail2ban is None:
        return {}
    return {FILTER_FILE: filter_text(spec), JAIL_FILE: jail_text(spec)}


def desired_files(spec: Spec) -> dict[str, str]:
    """Absolute path on the target -> exact text."""
    section = _section(spec)
    return {
        filter_path(section): filter_text(spec),
        jail_path(section): jail_text(spec),
    }


def filter_path(section: Fail2ban) -> str:
    return posixpath.join(section.config_dir, FILTER_FILE)


def jail_path(section: Fail2ban) -> str:
    return posixpath.join(section.config_dir, JAIL_FILE)


def file_address(path: str) -> Address:
    return Address(LAYER, KIND, path)


def banaction(spec: Spec) -> str:
    """The ban action that matches the firewall backend (iptables when there is none)."""
    backend = spec.firewall.backend if spec.firewall is not None else "iptables"
    return BANACTIONS[backend]


def ban_ports(spec: Spec) -> str:
    """The SIP ports of every enabled transport (WSS too), for a multiport action."""
    ports = sorted({port for _, port in spec.transports.listening().values()})
    return ",".join(str(p) for p in ports)


def jail_text(spec: Spec) -> str:
    section = _section(spec)
    ignored = list(ALWAYS_IGNORED) + [i for i in section.ignoreip if i not in ALWAYS_IGNORED]
    lines = [
        f"[{JAIL_NAME}]",
        f"enabled = {'true' if section.enabled else 'false'}",
        f"filter = {FILTER_NAME}",
        # backend "auto" reads logpath; a distribution default of "systemd" would ignore it.
        "backend = auto",
        # fail2ban interpolates "%(name)s" in values: a literal "%" is written "%%".
        f"logpath = {section.logpath.replace('%', '%%')}",
        f"maxretry = {section.maxretry}",
        f"findtime = {section.findtime}",
        f"bantime = {section.bantime}",
        f"ignoreip = {' '.join(ignored)}",
        f"port = {ban_ports(spec)}",
        f"protocol = {BAN_PROTOCOLS}",
        f"banaction = {banaction(spec)}",
        # Spelled out rather than inherited from jail.conf's "action_", so that the ban is
        # the one this file says whatever the host's [DEFAULT] holds.
        'action = %(banaction)s[port="%(port)s", protocol="%(protocol)s"]',
    ]
    if section.sshd:
        lines += ["", *sshd_jail_lines(spec, ignored)]
    return _HEADER + "\n".join(lines) + "\n"


def ssh_port(spec: Spec) -> int:
    """The port the sshd jail bans: the firewall's SSH port, 22 without a firewall."""
    return spec.firewall.ssh_port if spec.firewall is not None else 22


def sshd_jail_lines(spec: Spec, ignored: list[str]) -> list[str]:
    """``[sipctl-sshd]``: Debian's stock ``sshd`` filter, where the distribution says sshd
    logs (``sshd_log``/``sshd_backend`` of paths-*.conf, as the stock [sshd] jail), and the
    same limits and ban action as the Asterisk jail, on the SSH port only."""
    section = _section(spec)
    return [
        f"[{SSHD_JAIL_NAME}]",
        f"enabled = {'true' if section.enabled else 'false'}",
        "filter = sshd",
        "backend = %(sshd_backend)s",
        "logpath = %(sshd_log)s",
        f"maxretry = {section.maxretry}",
        f"findtime = {section.findtime}",
        f"bantime = {section.bantime}",
        f"ignoreip = {' '.join(ignored)}",
        f"port = {ssh_port(spec)}",
        "protocol = tcp",
        f"banaction = {banaction(spec)}",
        'action = %(banaction)s[port="%(port)s", protocol="%(protocol)s"]',
    ]


def normalize_ini(text: str) -> Value:
    """A fail2ban config file as fail2ban reads it: ``{"[section]": ["key = value", ...]}``.

    Keys are lower-cased (configparser does so); a value of several lines (``failregex``)
    gives one item per line; items are sorted (fail2ban tries every failregex, so their order
    does not matter). Comments, blank lines and spacing are gone. Text that is not a valid
    config file becomes ``{"unparsable": <first error line>}``, never equal to a desired value.
    """
    parser = configparser.RawConfigParser(
        comment_prefixes=("#", ";"),
        inline_comment_prefixes=(";",),  # as fail2ban's own reader (configparserinc.py)
        strict=False,
        empty_lines_in_values=False,
        interpolation=None,
        default_section="\x00sipctl-no-default",
    )
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        return {"unparsable": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    sections: dict[str, list[str]] = {}
    for name in parser.sections():
        items: list[str] = []
        for key, value in parser.items(name, raw=True):
            lines = [line.strip() for line in (value or "").splitlines() if line.strip()]
            items += [f"{key} = {line}" for line in lines] or [f"{key} ="]
        sections[f"[{name}]"] = sorted(items)
    return sections


def describe_fail2ban(kind: str, name: str, value: Any) -> dict[str, str]:
    """fail2ban in a plan's words: ``fail2ban jail sipctl-asterisk`` with its limits, one
    entry per address it never bans (loopback, always there, left out), and the filter as
    its number of failure patterns. ``name`` is the file's path."""
    del kind
    if not isinstance(value, Mapping):
        return {}
    found: dict[str, str] = {}
    for section, items in value.items():
        if not (isinstance(section, str) and section.startswith("[")):
            continue
        settings: dict[str, list[str]] = {}
        for item in items:
            key, _, text = str(item).partition(" = ")
            settings.setdefault(key.rstrip(" ="), []).append(text)
        jail = section.strip("[]")
        if jail == "Definition":
            filter_name = posixpath.basename(name).removesuffix(".conf")
            found[f"fail2ban filter {filter_name}"] = (
                f"{len(settings.get('failregex', []))} failure pattern(s)"
            )
            continue
        found[f"fail2ban jail {jail}"] = _jail_words(settings)
        for address in " ".join(settings.get("ignoreip", [])).split():
            if address not in ALWAYS_IGNORED:
                found[f"fail2ban jail {jail} ignoreip {address}"] = ""
    return found


def describe_fail2ban_change(change: Change) -> list[str]:
    """A fail2ban change in a plan's words: as ``describe_fail2ban`` tells each side, except
    that a jail's changed limits name only what changed
    (``~ fail2ban jail sipctl-asterisk maxretry 5 → 3``)."""
    from sipctl.reconciler.describe import difference

    address = change.address
    before = describe_fail2ban(address.kind, address.name, change.before) if change.before else {}
    after = describe_fail2ban(address.kind, address.name, change.after) if change.after else {}
    lines: list[str] = []
    for what in sorted(set(before) | set(after)):
        old, new = before.get(what), after.get(what)
        if old is not None and new is not None and old != new and what.startswith("fail2ban jail"):
            lines += _changed_limits(what, old, new)
        else:
            lines += difference(
                {what: old} if old is not None else {}, {what: new} if new is not None else {}
            )
    return lines or [f"~ fail2ban {address.kind} {address.name}"]


def _changed_limits(what: str, old: str, new: str) -> list[str]:
    """``maxretry 5, bantime 1h`` against ``maxretry 3, bantime 1h``: one line per limit."""
    olds = dict(item.partition(" ")[::2] for item in old.split(", "))
    news = dict(item.partition(" ")[::2] for item in new.split(", "))
    lines = []
    for key in sorted(set(olds) | set(news)):
        if olds.get(key) == news.get(key):
            continue
        if key not in olds:
            lines.append(f"~ {what} {key} {news[key]}".rstrip())
        elif key not in news:
            lines.append(f"~ {what} no longer {key} {olds[key]}".rstrip())
        else:
            lines.append(f"~ {what} {key} {olds[key]} → {news[key]}")
    return lines


def _jail_words(settings: Mapping[str, list[str]]) -> str:
    words = [
        f"{key} {_duration(settings[key][0]) if key.endswith('time') else settings[key][0]}"
        for key in ("maxretry", "findtime", "bantime", "port")
        if settings.get(key)
    ]
    if settings.get("enabled", ["true"])[0] == "false":
        words.insert(0, "disabled")
    return ", ".join(words)


def _duration(seconds: str) -> str:
    """``3600`` -> ``1h``: fail2ban's times in the units a reviewer thinks in."""
    if not seconds.isdigit() or int(seconds) == 0:
        return seconds
    value = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}s"


def _section(spec: Spec) -> Fail2ban:
    if spec.fail2ban is None:
        raise ValueError("the spec has no fail2ban section")
    return spec.fail2ban
