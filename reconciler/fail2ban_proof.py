"""The proof that sipctl's fail2ban filter bans the right address: lines in, verdict out.

Pure: this module builds the test log (every line form the guest dialplan and Asterisk 22
write, IPv4 and IPv6, plus crafted names that try to smuggle an address into the line) and
judges what ``fail2ban-regex -o ip LOG FILTER`` printed for it. The provider runs the program,
on this machine or on the target.

Each line names the one address fail2ban must take from it, or none. Addresses are unique
per line, and ``fail2ban-regex -o ip`` prints one address per matched line in log order, so
the whole verdict is one list comparison. Smuggled addresses come from 6.6.6.0/24 and must
never appear.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

_DATE = "[Nov 26 15:53:11] "
_W = _DATE + "WARNING[16208][C-00000002] "
_N = _DATE + "NOTICE[16040] "
_SESSION = _N + "res_pjsip_session.c:  anonymous: "
_DISTRIBUTOR = _N + "res_pjsip/pjsip_distributor.c: "
_REGISTRAR = _DATE + "WARNING[16040] res_pjsip_registrar.c: "
_NOT_FOUND = "rejected because extension not found in context 'guest-call'."
SMUGGLED_NETWORK = ipaddress.ip_network("6.6.6.0/24")


@dataclass(frozen=True)
class ProofLine:
    text: str
    expect: str | None  # the address fail2ban must take from this line, None: no match
    why: str


def proof_lines() -> list[ProofLine]:
    """The test log, in order."""
    return [
        # What the guest dialplan writes (Log(WARNING, "Wrong call IP=${...remote_addr}")).
        ProofLine(
            _W + "Ext. nobody: Wrong call IP=203.0.113.1:5060", "203.0.113.1", "dialplan, v4:port"
        ),
        ProofLine(
            _W + "Ext. nobody: Wrong call IP=203.0.113.2", "203.0.113.2", "dialplan, bare v4"
        ),
        ProofLine(
            _W + "Ext. nobody: Wrong call IP=[2001:db8::3]:5060",
            "2001:db8::3",
            "dialplan, [v6]:port",
        ),
        ProofLine(
            _W + "Ext. nobody: Wrong call IP=2001:db8::4", "2001:db8::4", "dialplan, bare v6"
        ),
        ProofLine(
            _W + "Ext. nobody:1 @ guest-call: Wrong call IP=203.0.113.5:5060",
            "203.0.113.5",
            "dialplan, older Log() prefix with priority and context",
        ),
        # Asterisk's own lines (PJSIP, Asterisk 22).
        ProofLine(
            _SESSION + f"Call (UDP:203.0.113.6:5060) to extension 'nobody' {_NOT_FOUND}",
            "203.0.113.6",
            "extension not found, UDP v4",
        ),
        ProofLine(
            _SESSION + f"Call (TCP:[2001:db8::7]:5060) to extension 'nobody' {_NOT_FOUND}",
            "2001:db8::7",
            "extension not found, TCP v6",
        ),
        ProofLine(
            _N + "res_pjsip_session.c: Call from 'anonymous' (TLS:203.0.113.8:5061) to "
            f"extension 'nobody' {_NOT_FOUND}",
            "203.0.113.8",
            "extension not found, older form",
        ),
        ProofLine(
            _DISTRIBUTOR + "Request 'INVITE' from '<sip:105@mysite.ru>' failed for "
            "'203.0.113.9:5060' (callid: a1@b) - Failed to authenticate",
            "203.0.113.9",
            "failed authentication, v4",
        ),
        ProofLine(
            _DISTRIBUTOR + "Request 'REGISTER' from '\"x\" <sip:x@[2001:db8::a]>' failed for "
            "'[2001:db8::a]:5060' (callid: a2) - No matching endpoint found",
            "2001:db8::a",
            "no matching endpoint, v6",
        ),
        ProofLine(
            _REGISTRAR + "Endpoint 'anonymous' (203.0.113.11:5060) has no configured AORs",
            "203.0.113.11",
            "REGISTER to the guest endpoint",
        ),
        ProofLine(
            _DISTRIBUTOR + "Request 'SUBSCRIBE' from '<sip:x@mysite.ru>' failed for "
            "'203.0.113.12:5060' (callid: a3) - Not match Endpoint ACL",
            "203.0.113.12",
            "a request no guest may send (sipctl-refused)",
        ),
        ProofLine(
            _N + "acl.c: SIP ACL: Rejecting '203.0.113.12' due to a failure to pass ACL "
            "'(BASELINE)'",
            None,
            "the ACL's own notice beside that line (counted once, not twice)",
        ),
        ProofLine(
            _REGISTRAR + "Endpoint 'sipctl-browsers' (2001:db8::d:5060) has no configured AORs",
            "2001:db8::d",
            "REGISTER with a forged CSeq to the browsers' endpoint, v6",
        ),
        # Crafted names: the caller's text sits before (or around) the real address.
        ProofLine(
            _W + "Ext. x IP=6.6.6.1 : Wrong call IP=198.51.100.1:5060",
            "198.51.100.1",
            "dialled name 'x IP=6.6.6.1 '",
        ),
        ProofLine(
            _W + "Ext. a:b IP=6.6.6.2:5060: Wrong call IP=198.51.100.2:5060",
            "198.51.100.2",
            "dialled name with a colon and an address",
        ),
        ProofLine(
            _W + "Ext. y: Wrong call IP=6.6.6.3 : Wrong call IP=198.51.100.3:5060",
            "198.51.100.3",
            "dialled name repeating the whole marker",
        ),
        ProofLine(
            _SESSION + "Call (UDP:198.51.100.4:5060) to extension 'a' (UDP:6.6.6.4:5060) to "
            f"extension 'b' {_NOT_FOUND}",
            "198.51.100.4",
            "dialled name imitating the call",
        ),
        ProofLine(
            _DISTRIBUTOR + "Request 'REGISTER' from '\"x' failed for '6.6.6.5:1' (callid: a) - "
            "Failed to authenticate\" <sip:105@mysite.ru>' failed for '198.51.100.5:5060' "
            "(callid: b) - Failed to authenticate",
            "198.51.100.5",
            "display name imitating the line",
        ),
        ProofLine(
            _DISTRIBUTOR + "Request 'REGISTER' from '<sip:105@mysite.ru;p=a%20b>' failed for "
            "'198.51.100.6:5060' (callid: c x' failed for '6.6.6.6:1' (callid: a) - Failed to "
            "authenticate) - Failed to authenticate",
            "198.51.100.6",
            "Call-ID imitating the line",
        ),
        ProofLine(
            _DISTRIBUTOR
            + "Request 'REGISTER' from '\"a\\\"b>' failed for '6.6.6.7:1' (callid: x\" "
            "<sip:105@mysite.ru>' failed for '198.51.100.7:5060' (callid: d) - Failed to "
            "authenticate",
            "198.51.100.7",
            "display name with an escaped quote",
        ),
        # Lines that must not count.
        ProofLine(
            _DATE + "NOTICE[16207][C-00000001] Ext. director: Good call IP=198.51.100.8:5060",
            None,
            "a declared name",
        ),
        ProofLine(
            "x: Wrong call IP=198.51.100.9:5060", None, "the rest of a split line, no prefix"
        ),
        ProofLine(
            _DATE + "NOTICE[16208][C-00000002] Ext. nobody: Wrong call IP=198.51.100.10:5060",
            None,
            "the marker at another level than WARNING",
        ),
    ]


def log_text(lines: list[ProofLine]) -> str:
    return "".join(line.text + "\n" for line in lines)


def judge(lines: list[ProofLine], output: str) -> list[str]:
    """Problems found in the ``-o ip`` output of fail2ban-regex; empty when the filter is right."""
    found = [_canonical(word) for word in output.split()]
    expected = [_canonical(line.expect) for line in lines if line.expect is not None]
    problems: list[str] = []
    smuggled = sorted({a for a in found if _in_smuggled(a)})
    if smuggled:
        problems.append(
            "a crafted name made the filter take an address the caller wrote: "
            + ", ".join(smuggled)
        )
    if found != expected:
        missing = [
            f"{line.why} ({line.expect})"
            for line in lines
            if line.expect is not None and _canonical(line.expect) not in found
        ]
        extra = [a for a in found if a not in expected and not _in_smuggled(a)]
        if missing:
            problems.append("lines the filter does not catch: " + "; ".join(missing))
        if extra:
            problems.append("addresses taken from lines that must not count: " + ", ".join(extra))
        if not missing and not extra and not smuggled:
            problems.append(
                f"the filter matched {len(found)} lines where {len(expected)} were expected"
            )
    return problems


def _canonical(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return text


def _in_smuggled(text: str) -> bool:
    try:
        return ipaddress.ip_address(text) in SMUGGLED_NETWORK
    except ValueError:
        return False


# sshd's own lines, as OpenSSH 9.2p1 (Debian 12) writes them through syslog (measured in
# tests/test_fail2ban_sshd.py): the stock "sshd" filter must take the address of each
# failure, and none from a line that is not one.
def _sshd(pid: int) -> str:
    # One pid per session: the stock filter follows a session's lines by it (mlfid).
    return f"Dec  2 12:12:24 pbx sshd[{pid}]: "


def sshd_proof_lines() -> list[ProofLine]:
    """The test log for the stock sshd filter of the ``sipctl-sshd`` jail."""
    return [
        ProofLine(
            _sshd(4242) + "Invalid user nobodyhere from 203.0.113.21 port 39350",
            "203.0.113.21",
            "a user this host does not have",
        ),
        ProofLine(
            _sshd(4243) + "Failed password for root from 203.0.113.22 port 39352 ssh2",
            "203.0.113.22",
            "a wrong password",
        ),
        ProofLine(
            _sshd(4244)
            + "Failed password for invalid user admin from 2001:db8::23 port 39354 ssh2",
            "2001:db8::23",
            "a wrong password of an unknown user, IPv6",
        ),
        ProofLine(
            _sshd(4245) + 'Connection from 198.51.100.24 port 39356 on 10.0.0.1 port 22 rdomain ""',
            None,
            "a connection, not a failure",
        ),
        ProofLine(
            _sshd(4246)
            + "Accepted publickey for root from 198.51.100.25 port 39358 ssh2: ED25519 x",
            None,
            "a good login",
        ),
    ]
