"""What the Asterisk layer wants on the PBX, derived from the spec: a pure function.

sipctl owns, in ``asterisk.config_dir``:

- ``pjsip_sipctl.conf`` (``sip_sipctl.conf`` for chan_sip) and ``extensions_sipctl.conf``,
  whole;
- exactly one ``#include`` line for each of them in its parent (``pjsip.conf``/``sip.conf``,
  ``extensions.conf``);
- the keys ``rtpstart``/``rtpend`` of ``rtp.conf`` ``[general]``.

Measured on Asterisk 22 and built in here:

- No ``[global]`` is written. A second ``type=global`` object makes res_pjsip log "At most
  one pjsip.conf type=global object" and replace the admin's global settings wholesale; a
  second ``[global]`` section makes all of pjsip.conf fail to load; ``[global](+)`` fails
  where the admin has no ``[global]``. The default ``endpoint_identifier_order`` is
  ``ip,username,anonymous``, and an identifier missing from an admin's own list is still
  tried after the listed ones, so guests are found without touching ``[global]``; the
  provider refuses a plan where the live order puts ``anonymous`` before ``ip`` or
  ``username`` (registered phones would become guests).
- ``_.`` matches ``h`` and lends its priorities to other extensions. The catch-all here is
  two patterns over the characters of SIP user names: one for two or more characters, one
  for a single character that is not one of Asterisk's special extensions (a e h i o s t
  T). Every user extension ends with its own last step, so a failed ``Dial`` never falls
  into the catch-all's priorities.
- ``CHANNEL(pjsip,remote_addr)`` is ``ip:port`` (``[v6]:port``): the port is popped and the
  brackets filtered away, so the log line ends with the bare address fail2ban can match.
"""

from __future__ import annotations

from sipctl.reconciler.asterisk_conf import normalize_dialplan, normalize_sections
from sipctl.reconciler.resources import Address, Resource
from sipctl.schemas.spec import Asterisk, Spec

LAYER = "asterisk"
PJSIP_FILE = "pjsip_sipctl.conf"
SIP_FILE = "sip_sipctl.conf"
DIALPLAN_FILE = "extensions_sipctl.conf"
RTP_FILE = "rtp.conf"
PARENTS = {PJSIP_FILE: "pjsip.conf", SIP_FILE: "sip.conf", DIALPLAN_FILE: "extensions.conf"}
GUEST_ENDPOINT = "anonymous"
GUEST_CODECS = "ulaw,alaw,g722,gsm"

# The characters of SIP user names a caller may dial (and a few more scanners use).
_NAME_CHARS = "0-9A-Za-z#*+._~%"
# One character, without Asterisk's one-letter special extensions a e h i o s t T.
_SINGLE_CHARS = "0-9A-SU-Zb-df-gj-np-ru-z#*+._~%"
CATCH_ALL_PATTERNS = (f"_[{_NAME_CHARS}].", f"_[{_SINGLE_CHARS}]")

HEADER = "; Managed by sipctl: this file is replaced on every apply. Edit the spec instead.\n"


def channel_file(section: Asterisk) -> str:
    return PJSIP_FILE if section.channel == "pjsip" else SIP_FILE


def include_line(file_name: str) -> str:
    return f"#include {file_name}"


# --- pjsip_sipctl.conf / sip_sipctl.conf ----------------------------------------------------


def pjsip_text(spec: Spec) -> str:
    section = _section(spec)
    lines = [
        HEADER.rstrip("\n"),
        f"; Unauthenticated callers of sip:<name>@{spec.domain} land in context",
        f"; {section.guest_context} (res_pjsip_endpoint_identifier_anonymous, tried after ip",
        "; and username, so registered phones are still identified as themselves).",
        f"[{GUEST_ENDPOINT}]",
        "type=endpoint",
        f"context={section.guest_context}",
        "disallow=all",
        f"allow={GUEST_CODECS}",
        "direct_media=no",
        "rtp_symmetric=yes",
        "force_rport=yes",
        "rewrite_contact=yes",
        "allow_subscribe=no",
        # Without this, a name that begins like a longer pattern ("h" of "_[...].") gets
        # 484 Address Incomplete and the caller is asked to dial more.
        "allow_overlap=no",
    ]
    if section.manage_transports:
        lines.extend(_pjsip_transports(spec))
    return "\n".join(lines) + "\n"


def _pjsip_transports(spec: Spec) -> list[str]:
    section = _section(spec)
    lines: list[str] = []
    v6 = any(server.ipv6 for server in spec.servers)
    for name, transport in spec.transports.enabled().items():
        if name == "tls" and section.tls is None:
            continue  # the cross checks ask for asterisk.tls; without it there is no TLS
        binds = [("", f"0.0.0.0:{transport.port}")]
        if v6:
            binds.append(("6", f"[::]:{transport.port}"))
        for suffix, bind in binds:
            lines += [
                "",
                f"[sipctl-{name}{suffix}]",
                "type=transport",
                f"protocol={name}",
                f"bind={bind}",
            ]
            if name == "tls" and section.tls is not None:
                lines += [
                    f"cert_file={section.tls.cert_file}",
                    f"priv_key_file={section.tls.key_file}",
                ]
                if section.tls.ca_list_file:
                    lines.append(f"ca_list_file={section.tls.ca_list_file}")
                lines.append("method=tlsv1_2")
    return lines


def sip_text(spec: Spec) -> str:
    """chan_sip (Asterisk <= 20): guests through ``[general]``, as the classic setup does."""
    section = _section(spec)
    lines = [
        HEADER.rstrip("\n"),
        "; Extends the [general] section of sip.conf (it must come before the #include).",
        "[general](+)",
        "allowguest=yes",
        f"context={section.guest_context}",
    ]
    if section.manage_transports:
        enabled = spec.transports.enabled()
        if "udp" in enabled:
            lines.append(f"udpbindaddr=0.0.0.0:{enabled['udp'].port}")
        if "tcp" in enabled:
            lines += ["tcpenable=yes", f"tcpbindaddr=0.0.0.0:{enabled['tcp'].port}"]
        if "tls" in enabled and section.tls is not None:
            lines += [
                "tlsenable=yes",
                f"tlsbindaddr=0.0.0.0:{enabled['tls'].port}",
                f"tlscertfile={section.tls.cert_file}",
                f"tlsprivatekey={section.tls.key_file}",
            ]
    return "\n".join(lines) + "\n"


# --- extensions_sipctl.conf -------------------------------------------------------------------


def _caller_address_steps(section: Asterisk) -> list[str]:
    """Steps that leave the caller's bare address (no port, no brackets) in SIPCTL_IP."""
    if section.channel == "sip":
        return ["Set(SIPCTL_IP=${CHANNEL(peerip)})"]
    return [
        "Set(SIPCTL_IP=${CHANNEL(pjsip,remote_addr)})",
        "Set(SIPCTL_PORT=${POP(SIPCTL_IP,:)})",
    ]


_LOGGED_ADDRESS = "${FILTER(0-9a-fA-F.:,${SIPCTL_IP})}"


def _extension(name: str, steps: list[str]) -> list[str]:
    lines = [f"exten => {name},1,{steps[0]}"]
    lines += [f" same => n,{step}" for step in steps[1:]]
    return lines


def user_steps(section: Asterisk, extension: str) -> list[str]:
    driver = "PJSIP" if section.channel == "pjsip" else "SIP"
    steps = [*_caller_address_steps(section), f"Log(NOTICE,Good call IP={_LOGGED_ADDRESS})"]
    if section.route == "goto":
        steps.append(f"Goto({section.local_context},{extension},1)")
    else:
        # The explicit Hangup ends the extension: without it a failed Dial would go on with
        # the catch-all's next priority (the pattern matches this name too).
        steps += [f"Dial({driver}/{extension})", "Hangup()"]
    return steps


def reject_steps(section: Asterisk) -> list[str]:
    return [
        *_caller_address_steps(section),
        f"Log(WARNING,Wrong call IP={_LOGGED_ADDRESS})",
        f"Playback({section.reject_sound})",
        "Hangup()",
    ]


def dialplan_text(spec: Spec) -> str:
    section = _section(spec)
    lines = [
        HEADER.rstrip("\n"),
        f"; Guest calls to sip:<name>@{spec.domain}: the names of the spec, and nothing else.",
        f"[{section.guest_context}]",
    ]
    for name, extension in spec.users.items():
        lines += _extension(name, user_steps(section, extension))
    if section.unknown_callers == "reject":
        lines.append("; Any other name: logged for fail2ban, told so, hung up.")
        for pattern in CATCH_ALL_PATTERNS:
            lines += _extension(pattern, reject_steps(section))
    return "\n".join(lines) + "\n"


# --- resources ----------------------------------------------------------------------------------


def _section(spec: Spec) -> Asterisk:
    if spec.asterisk is None:
        raise ValueError("the spec has no asterisk section")
    return spec.asterisk


def file_address(name: str) -> Address:
    return Address(LAYER, "file", name)


def include_address(parent: str) -> Address:
    return Address(LAYER, "include", parent)


RTP_ADDRESS = Address(LAYER, "rtp", RTP_FILE)


def file_value(name: str, text: str) -> dict[str, list[str]]:
    """The comparable value of a managed file's text (the same function reads live files)."""
    if name == DIALPLAN_FILE:
        return normalize_dialplan(text)
    return normalize_sections(text)


def include_value(file_name: str, count: int = 1) -> dict[str, object]:
    return {"line": include_line(file_name), "count": count}


def rtp_value(start: int | None, end: int | None) -> dict[str, object]:
    return {"rtpstart": start, "rtpend": end}


def desired_files(spec: Spec) -> dict[str, str]:
    """Managed file name (relative to config_dir) -> exact text."""
    section = _section(spec)
    channel = pjsip_text(spec) if section.channel == "pjsip" else sip_text(spec)
    return {channel_file(section): channel, DIALPLAN_FILE: dialplan_text(spec)}


def render_asterisk(spec: Spec) -> list[Resource]:
    """The Asterisk resources of ``spec`` (none when ``ensure: absent``)."""
    section = _section(spec)
    if section.ensure == "absent":
        return []
    resources: list[Resource] = []
    for name, text in desired_files(spec).items():
        resources.append(Resource(file_address(name), file_value(name, text), text))
        line = include_line(name)
        resources.append(Resource(include_address(PARENTS[name]), include_value(name), line))
    resources.append(Resource(RTP_ADDRESS, rtp_value(section.rtp.start, section.rtp.end), None))
    return resources


def asterisk_artefacts(spec: Spec) -> dict[str, str]:
    """Files for ``sipctl render --dir`` (written under asterisk/)."""
    if spec.asterisk is None or spec.asterisk.ensure == "absent":
        return {}
    section = spec.asterisk
    files = dict(desired_files(spec))
    parents = sorted({PARENTS[name] for name in files})
    files["README"] = (
        "sipctl adds these files to the PBX's config dir "
        f"({section.config_dir}), one include line to each parent file:\n"
        + "".join(
            f"  {PARENTS[name]}: {include_line(name)}\n"
            for name in sorted(files)
            if name in PARENTS
        )
        + f"and sets in rtp.conf [general]: rtpstart={section.rtp.start}, "
        + f"rtpend={section.rtp.end}\n"
        + f"(parents: {', '.join(parents)}; the admin's own lines are never changed)\n"
    )
    return files
