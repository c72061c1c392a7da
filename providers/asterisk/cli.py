"""Talking to a running Asterisk through ``<command> -rx``, and reading its answers.

``command`` is a prefix written by the admin (``asterisk``, ``docker exec pbx asterisk``,
``chroot /srv/pbx asterisk``); each CLI command is quoted for the shell and several are
run in one round trip, each followed by a marker line with its exit status.
The parsers are pure functions of captured output.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from sipctl.errors import ProviderError
from sipctl.providers.transport.pool import HostTransport

_MARK = "--sipctl-rx-done--"
_NOT_CONNECTED = ("Unable to connect to remote asterisk", "does /run/asterisk", "No such command")


@dataclass(frozen=True)
class RxAnswer:
    cli: str
    status: int
    output: str

    @property
    def ok(self) -> bool:
        return self.status == 0 and not any(words in self.output for words in _NOT_CONNECTED)

    def words(self) -> str:
        """Asterisk's own words, on one line, for a message."""
        text = " ".join(line.strip() for line in self.output.splitlines() if line.strip())
        return text[:400] if text else f"exit status {self.status}"


def rx_script(command: str, clis: Sequence[str]) -> str:
    return "\n".join(f'{command} -rx {shlex.quote(cli)} 2>&1; echo "{_MARK} $?"' for cli in clis)


def run_rx(transport: HostTransport, command: str, clis: Sequence[str]) -> list[RxAnswer]:
    """Run every CLI command in one round trip; one answer per command, in order."""
    result = transport.run(rx_script(command, clis), timeout=60.0)
    answers: list[RxAnswer] = []
    chunks = (result.stdout + result.stderr).split(_MARK)
    for index, cli in enumerate(clis):
        if index + 1 >= len(chunks):
            answers.append(RxAnswer(cli, result.exit_status or 127, result.stderr.strip()))
            continue
        output = chunks[index]
        if index > 0:
            # the chunk starts with the previous marker's " <status>\n"
            output = output.split("\n", 1)[1] if "\n" in output else ""
        status_text = chunks[index + 1].split("\n", 1)[0].strip()
        status = int(status_text) if status_text.isdigit() else 1
        answers.append(RxAnswer(cli, status, output))
    return answers


def rx_one(transport: HostTransport, command: str, cli: str) -> RxAnswer:
    return run_rx(transport, command, [cli])[0]


def require_ok(answer: RxAnswer, target: str) -> RxAnswer:
    if not answer.ok:
        raise ProviderError(
            f"asterisk {target}: '{answer.cli}' failed: {answer.words()} "
            "(is Asterisk running, and is asterisk.command right?)"
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
    ``anonymous`` must either be absent or come after both ``ip`` and ``username``.
    """
    names = [part.strip() for part in order.split(",") if part.strip()]
    if "anonymous" not in names:
        return None
    before = names[: names.index("anonymous")]
    if "ip" in before and "username" in before:
        return None
    return (
        f"endpoint_identifier_order={order} tries 'anonymous' before 'ip' or 'username': "
        "registered phones and trunks would be taken for guests. Put anonymous last "
        "(ip,username,anonymous) in the [global] section of pjsip.conf"
    )
