"""Plans in the words of the spec: ``+ user sales → 106 & 107 (20 s), then 101``.

Each layer may name a *describer* (``Layer.describe_path``): a pure function
``(kind, name, value) -> {what: text}`` that tells, for one resource value, what it means in
the spec's terms: ``{"user sales": "106 & 107 (20 s), then 101"}``, ``{"firewall allow
udp/10000-20000": ""}``. The same function reads the live value and the desired one, so a
change is told as the difference of two descriptions: one ``+``, ``~`` or ``-`` line per
thing a reviewer knows from the spec. Boilerplate (the catch-all, ``h``) describes to
nothing and is left out. A resource its layer does not describe gets one generic line.

Pure: the engine calls :func:`describe_change` while making the plan and stores the lines
in the plan (``Change.described``), so every view reads them from the plan's JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sipctl.reconciler.plan import Change

Describer = Callable[[str, str, Any], dict[str, str]]
_SIGNS = {"create": "+", "update": "~", "delete": "-"}


def describe_change(describer: Describer | None, change: Change) -> list[str]:
    """The user-term lines of one change (never empty: a generic line at least)."""
    address = change.address
    if describer is not None:
        before = describer(address.kind, address.name, change.before) if change.before else {}
        after = describer(address.kind, address.name, change.after) if change.after else {}
        lines = difference(before, after)
        if change.action != "update":  # the TTL of a new or removed rrset says nothing
            lines = [line for line in lines if not line.split(" → ")[0].endswith(" TTL")]
        if lines or before or after:
            return lines
    return [f"{_SIGNS[change.action]} {address.layer} {address.kind} {address.name}"]


def difference(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """``+ what → text``, ``~ what → text (was old)``, ``- what`` lines, in order of ``what``."""
    lines: list[str] = []
    for what in sorted(set(before) | set(after)):
        old, new = before.get(what), after.get(what)
        if old == new:
            continue
        if old is None:
            lines.append(f"+ {what}" + (f" → {new}" if new else ""))
        elif new is None:
            lines.append(f"- {what}" + (f" → {old}" if old else ""))
        else:
            lines.append(f"~ {what} → {new}" + (f" (was {old})" if old else ""))
    return lines


# --- the describers of the built-in layers ------------------------------------------------------


def describe_dns(kind: str, name: str, value: Any) -> dict[str, str]:
    """One entry per record: ``dns SRV _sip._udp.mysite.ru 10 0 5060 asterisk.mysite.ru``;
    the TTL as an entry of its own, so a TTL change is one line."""
    if not isinstance(value, Mapping):
        return {}
    short = name.rstrip(".")
    found = {f"dns {kind} {short} {str(r).rstrip('.')}": "" for r in value.get("records", [])}
    if found and "ttl" in value:
        found[f"dns {kind} {short} TTL"] = str(value["ttl"])
    return found


def describe_firewall(kind: str, name: str, value: Any) -> dict[str, str]:
    """``firewall allow udp/10000-20000`` per accepting rule; the policy as one entry."""
    if kind == "file":  # the rules saved for boot: the rules themselves are told above
        return {f"firewall rules saved in {name}": ""}
    if not isinstance(value, Mapping):
        return {}
    found: dict[str, str] = {}
    base: list[str] = []  # established, loopback, ICMP: the same on every host, one line
    for record in value.get("records", []):
        words = str(record).split()
        family = words.pop(0) + " " if words and words[0] in ("ipv4", "ipv6") else ""
        if len(words) == 3 and words[0] == "accept" and words[1] in ("tcp", "udp"):
            found[f"firewall allow {family}{words[1]}/{words[2]}"] = ""
        else:
            base.append(family + " ".join(words))
    if base:
        found["firewall base rules"] = f"{len(base)} (established, loopback, ICMP)"
    if "policy" in value:
        found["firewall policy"] = str(value["policy"])
    return found


def describe_asterisk(kind: str, name: str, value: Any) -> dict[str, str]:
    """Users and rooms from the guest dialplan and the ConfBridge file; rtp.conf's range."""
    if not isinstance(value, Mapping):
        return {}
    if kind == "rtp":
        return {"asterisk RTP range": f"{value.get('rtpstart')}-{value.get('rtpend')}"}
    if kind == "include":
        included = str(value.get("line", "")).removeprefix("#include").strip().strip('"')
        return {f"asterisk {name} includes {included}": ""}
    if kind == "http":
        return _https_server(value)
    if kind == "global":
        return {"asterisk Server header": str(value.get("user_agent") or "Asterisk's own")}
    if kind != "file":
        return {}
    if name.startswith("extensions"):
        from sipctl.reconciler.render.asterisk_names import names_from_dialplan

        # A room is one line, told by the ConfBridge file (its size is there, not here).
        names = names_from_dialplan(value)
        return {what: text for what, text in names.items() if not what.startswith("room ")}
    if name.startswith("confbridge"):
        return _rooms(value)
    return _channel_sections(name, value)


def _https_server(value: Mapping[str, Any]) -> dict[str, str]:
    """http.conf's keys for WebRTC: the HTTPS server browsers reach over WSS."""
    if value.get("tlsenable") != "yes":
        return {"asterisk HTTPS server (WSS)": "off"}
    return {
        "asterisk HTTPS server (WSS)": f"on {value.get('tlsbindaddr')}, "
        f"certificate {value.get('tlscertfile')}"
    }


def _channel_sections(name: str, value: Mapping[str, Any]) -> dict[str, str]:
    """pjsip/sip sections: the guest endpoints (WebRTC marked) and the transports."""
    found: dict[str, str] = {}
    for section, options in value.items():
        settings = dict(str(o).partition("=")[::2] for o in options)
        label = str(section).split("]")[0].lstrip("[")
        kind = settings.get("type", "section")
        if kind == "transport":
            found[f"asterisk transport {label}"] = (
                f"{settings.get('protocol', '?')} on {settings.get('bind', '?')}"
            )
        elif kind == "endpoint":
            codecs = ",".join(str(o)[6:] for o in options if str(o).startswith("allow="))
            words = [f"context {settings.get('context', '?')}", f"codecs {codecs}"]
            if settings.get("webrtc") == "yes":
                words.append("WebRTC")
            found[f"asterisk endpoint {label}"] = ", ".join(w for w in words if w)
        else:
            found[f"asterisk {name} [{label}]"] = ""
    return found


def _rooms(value: Mapping[str, Any]) -> dict[str, str]:
    """``room seminar → room (ConfBridge), at most 50 members``: a room's one line."""
    from sipctl.reconciler.render.asterisk_names import ROOM_WORDS

    found: dict[str, str] = {}
    for section, lines in value.items():
        name = str(section).strip("[]")
        if not name.startswith("sipctl-room-"):
            continue
        limit = next((str(x).split("=", 1)[1] for x in lines if str(x).startswith("max_")), "")
        found[f"room {name.removeprefix('sipctl-room-')}"] = (
            f"{ROOM_WORDS}, at most {limit} members" if limit else ROOM_WORDS
        )
    return found
