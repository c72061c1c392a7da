"""Talking to a running Asterisk through ``<program> -rx``, and reading its answers.

The program's words come from the host profile of the asterisk target (``asterisk``,
``docker exec pbx asterisk``, ``chroot /srv/pbx asterisk``: ``asterisk_program``), never
from the spec; each CLI command becomes two more words, ``-rx`` and the command. They run as a
program with arguments, never through a shell (``HostTransport.run_programs``), several in
one round trip.
``query_rx`` runs only what reads (``... show ...``, ``confbridge list``): what ``plan`` may
send.
The parsers are pure functions of captured output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipctl.errors import ProviderError
from sipctl.output import peer_words
from sipctl.providers.transport.host_profile import resolve_program
from sipctl.providers.transport.pool import CommandResult, HostTransport

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.schemas.loader import LoadedSpec

_NOT_CONNECTED = ("Unable to connect to remote asterisk", "does /run/asterisk", "No such command")
# CLI commands that only read: "<module> show ...", "core show ..." and "confbridge list"
# (who is in the conferences; ConfBridge has no "show" for it).
_QUERY_RE = re.compile(
    r"(?:core|pjsip|sip|dialplan|module|confbridge|http|rtp) show(?: .*)?|confbridge list"
)


@dataclass(frozen=True)
class RxAnswer:
    cli: str
    status: int
    output: str

    @property
    def ok(self) -> bool:
        return self.status == 0 and not any(words in self.output for words in _NOT_CONNECTED)

    def words(self, limit: int = 400) -> str:
        """Asterisk's own words, on one line, for a message (at most ``limit`` characters)."""
        text = peer_words(self.output, limit)
        return text if text else f"exit status {self.status}"


UNREACHABLE_HINT = "(is Asterisk running, and the host profile's asterisk entry right?)"


def asterisk_program(ctx: RunContext, transport: HostTransport, loaded: LoadedSpec) -> Program:
    """The words before ``-rx`` on the asterisk target: the entry the spec names
    (``asterisk.program``), else the host profile's default, else ``asterisk``."""
    section = loaded.spec.asterisk
    assert section is not None
    key = f"{loaded.where(('asterisk', 'program'))}: asterisk.program"
    words = resolve_program(ctx, transport, "asterisk", section.program, key)
    return words or ("asterisk",)


Program = tuple[str, ...]


def rx_programs(program: Sequence[str], clis: Sequence[str]) -> list[list[str]]:
    """The argument vectors: the program's words, then ``-rx`` and the CLI command."""
    return [[*program, "-rx", cli] for cli in clis]


def run_rx(transport: HostTransport, program: Sequence[str], clis: Sequence[str]) -> list[RxAnswer]:
    """Run every CLI command in one round trip; one answer per command, in order."""
    results = transport.run_programs(rx_programs(program, clis), timeout=60.0)
    return rx_answers(clis, results)


def query_rx(
    transport: HostTransport, program: Sequence[str], clis: Sequence[str]
) -> list[RxAnswer]:
    """``run_rx`` for reading only: every CLI command must be a query (``_QUERY_RE``)."""
    results = transport.run_programs(query_programs(program, clis), timeout=60.0)
    return rx_answers(clis, results)


def query_programs(program: Sequence[str], clis: Sequence[str]) -> list[list[str]]:
    """``rx_programs`` for reading only: every CLI command must be a query (``_QUERY_RE``)."""
    for cli in clis:
        if not _QUERY_RE.fullmatch(cli):
            raise ProviderError(f"sipctl bug: {cli!r} is not a read-only Asterisk query")
    return rx_programs(program, clis)


def rx_answers(clis: Sequence[str], results: Sequence[CommandResult]) -> list[RxAnswer]:
    """One answer per CLI command, from the results of its programs."""
    return [
        RxAnswer(cli, result.exit_status, result.stdout + result.stderr)
        for cli, result in zip(clis, results, strict=True)
    ]


def rx_one(transport: HostTransport, program: Sequence[str], cli: str) -> RxAnswer:
    return run_rx(transport, program, [cli])[0]


def require_ok(answer: RxAnswer, target: str) -> RxAnswer:
    if not answer.ok:
        raise ProviderError(
            f"asterisk {target}: '{answer.cli}' failed: {answer.words()} {UNREACHABLE_HINT}"
        )
    return answer


# --- parsers of captured output -----------------------------------------------------------------

_TRANSPORT_RE = re.compile(
    r"^\s*Transport:\s+(?P<name>\S+)\s+(?P<proto>udp|tcp|tls|ws|wss)\s+\d+\s+\d+\s+(?P<bind>\S+)",
    re.MULTILINE,
)
_ENDPOINT_RE = re.compile(r"^\s*Endpoint:\s+(?P<name>[^\s<][^\s]*)", re.MULTILINE)


@dataclass(frozen=True)
class LiveTransport:
    name: str
    protocol: str
    address: str
    port: int


def parse_transports(output: str) -> list[LiveTransport]:
    """``pjsip show transports`` -> the transports with their bound address and port."""
    found: list[LiveTransport] = []
    for match in _TRANSPORT_RE.finditer(output):
        bind = match["bind"]
        address, _, port = bind.rpartition(":")
        found.append(
            LiveTransport(
                match["name"],
                match["proto"],
                address.strip("[]"),
                int(port) if port.isdigit() else 0,
            )
        )
    return found


def parse_endpoint_names(output: str) -> list[str]:
    """``pjsip show endpoints`` -> endpoint names."""
    return [m["name"] for m in _ENDPOINT_RE.finditer(output) if not m["name"].startswith("<")]


SHOW_ENDPOINTS = "pjsip show endpoints"
_ENDPOINT_FACT_RE = re.compile(r"^\s*(?P<fact>InAuth|OutAuth|Identify):", re.MULTILINE)


def parse_trunk_names(output: str) -> frozenset[str]:
    """``pjsip show endpoints`` -> the endpoints that are trunks, not phones.

    A phone authenticates to the PBX (``auth=``: an ``InAuth`` line) and is found by that.
    A trunk is one the PBX authenticates to (``outbound_auth``: ``OutAuth``, as a provider
    with an outbound registration wants), one found by its address (``type=identify``:
    ``Identify``), or one nobody authenticates as at all (no ``InAuth``: a call to it goes
    wherever its static contact points). Measured on Asterisk 22.
    """
    facts: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in output.splitlines():
        endpoint = _ENDPOINT_RE.match(line)
        if endpoint is not None:
            name = endpoint["name"]
            current = None if name.startswith("<") else facts.setdefault(name, set())
            continue
        fact = _ENDPOINT_FACT_RE.match(line)
        if fact is not None and current is not None:
            current.add(fact["fact"])
    return frozenset(
        name
        for name, found in facts.items()
        if "InAuth" not in found or found & {"OutAuth", "Identify"}
    )


def parse_setting(output: str, name: str) -> str | None:
    """A ``name : value`` line of ``pjsip show settings`` / ``pjsip show endpoint``."""
    match = re.search(rf"^\s*{re.escape(name)}\s*:\s*(?P<value>.*?)\s*$", output, re.MULTILINE)
    return match["value"] if match else None


def sound_found(output: str) -> bool:
    """``core show sound NAME`` lists formats per language when the sound exists."""
    return "Indexed Information for" in output and "Format:" in output


def dialplan_extensions(output: str) -> set[str]:
    """``dialplan show CONTEXT`` -> the extension names (patterns with their ``_``)."""
    return set(re.findall(r"^\s*'([^']+)' =>", output, re.MULTILINE))


def identifier_order_problem(order: str) -> str | None:
    """Why an ``endpoint_identifier_order`` would turn known callers into guests, if it does.

    Identifiers missing from the list are tried after the listed ones (measured on 22), so
    each identifier that finds guests, ``anonymous`` (the browsers) and ``header`` (the
    plain SIP guests, by their request's method), must either be absent or come after both
    ``ip`` and ``username``.
    """
    names = [part.strip() for part in order.split(",") if part.strip()]
    for guests in ("anonymous", "header"):
        if guests not in names:
            continue
        before = names[: names.index(guests)]
        if "ip" in before and "username" in before:
            continue
        return (
            f"endpoint_identifier_order={order} tries '{guests}' before 'ip' or 'username': "
            "registered phones and trunks would be taken for guests. Put it after both "
            "(ip,username,anonymous,header) in the [global] section of pjsip.conf"
        )
    return None
