"""What ``plan`` checks on the live PBX before it turns on ``transports.wss``: pure parsers.

- the modules SIP over WSS and the browsers' media need are loaded (``module show``), and
  with ``transports.wss.opus`` Opus's (a browser in Opus calling a phone without it needs
  the transcoder: measured, without it the call ends when the phone answers);
- the WSS port is free, or Asterisk's own HTTPS server already listens there (``http show
  status`` says where HTTPS is bound; the target's ``/proc/net/tcp`` and ``tcp6`` say which
  TCP ports anything listens on);
- for servers with IPv4 and IPv6 addresses, the one ``[::]`` socket of the HTTPS server
  takes IPv4 too: the host's ``net.ipv6.bindv6only`` is 0 (measured: Asterisk 22 leaves
  the socket option alone, so with 1 its ``[::]`` listener is IPv6 only).

The certificate files (present, a pair, the right names) are the certificate layer's checks.
"""

from __future__ import annotations

import re

# SIP over WebSocket (res_http_websocket, res_pjsip_transport_websocket) and the browsers'
# DTLS-SRTP media (res_srtp).
WSS_MODULES = ("res_http_websocket.so", "res_pjsip_transport_websocket.so", "res_srtp.so")
# With transports.wss.opus: Opus in SDP (its fmtp) and Opus <-> ulaw/alaw for phones without
# Opus (Debian's asterisk-modules has both; upstream Asterisk ships neither by default).
OPUS_MODULES = ("res_format_attr_opus.so", "codec_opus_open_source.so")
SHOW_MODULES = "module show"
SHOW_HTTP = "http show status"
PROC_NET_TCP = ("/proc/net/tcp", "/proc/net/tcp6")
BINDV6ONLY = "/proc/sys/net/ipv6/bindv6only"
_TCP_LISTEN = "0A"
_HTTPS_BOUND = re.compile(r"HTTPS Server Enabled and Bound to (\S+)")


def running_modules(output: str) -> set[str]:
    """The modules ``module show`` lists as running."""
    found = set()
    for line in output.splitlines():
        words = line.split()
        if words and words[0].endswith(".so") and "Running" in line and "Not Running" not in line:
            found.add(words[0])
    return found


def https_port(output: str) -> int | None:
    """The port Asterisk's HTTPS server is bound to (``http show status``), if any."""
    match = _HTTPS_BOUND.search(output)
    if match is None:
        return None
    port = match[1].rsplit(":", 1)[-1]
    return int(port) if port.isdigit() else None


def listening_tcp_ports(*tables: str) -> set[int]:
    """Local ports of listening TCP sockets in ``/proc/net/tcp``-style tables."""
    ports = set()
    for table in tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _TCP_LISTEN and ":" in fields[1]:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def wss_problems(
    modules_output: str,
    http_output: str,
    port: int,
    listening: set[int] | None,
    opus: bool = False,
) -> list[str]:
    """Why transports.wss cannot work on this PBX as it runs now (empty: it can)."""
    problems = []
    running = running_modules(modules_output)
    missing = [m for m in WSS_MODULES if m not in running]
    if missing:
        problems.append(
            f"the running Asterisk has not loaded {', '.join(missing)}, which transports.wss "
            "needs (SIP over WebSocket, and DTLS-SRTP for browsers); load them "
            "(modules.conf: load => <module>) or install the package that has them"
        )
    missing_opus = [m for m in OPUS_MODULES if m not in running] if opus else []
    if missing_opus:
        problems.append(
            f"the running Asterisk has not loaded {', '.join(missing_opus)}: with "
            "transports.wss.opus browsers talk Opus, and a call to a phone without Opus "
            "fails unless Asterisk can transcode it; load them (modules.conf: load => "
            "<module>; Debian's asterisk-modules has them) or set transports.wss.opus: false"
        )
    if listening is not None and port in listening and https_port(http_output) != port:
        problems.append(
            f"TCP port {port} (transports.wss) is already in use by another program; free it "
            "or choose another transports.wss.port"
        )
    return problems


def ipv6_listener_problem(bindv6only: str | None, port: int, ipv4_too: bool) -> str | None:
    """Why the ``[::]`` listener would fail the spec's browsers on this host (None: it
    will not). ``bindv6only``: the content of ``/proc/sys/net/ipv6/bindv6only`` (None: the
    host has no IPv6, or it cannot be read); ``ipv4_too``: the servers also have IPv4.
    """
    if bindv6only is None:
        return (
            f"the spec's servers have IPv6 addresses, so the WSS listener binds [::]:{port}, "
            f"but the PBX has no {BINDV6ONLY} (no IPv6 there); turn IPv6 on or remove the "
            "servers' ipv6 addresses"
        )
    if ipv4_too and bindv6only.strip() == "1":
        return (
            f"the PBX has net.ipv6.bindv6only=1: the WSS listener on [::]:{port} would take "
            "IPv6 browsers only, while the spec's servers also have IPv4 addresses; set "
            "net.ipv6.bindv6only=0 (sysctl) on the PBX, or give the servers one family only"
        )
    return None
