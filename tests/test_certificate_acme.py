"""Certificates by ACME DNS-01 through sipctl's own DNS layer: pebble validating against BIND.

The PBX is a ``dir:`` target here (files only; reloads and listeners are proven on the real
Asterisk in test_certificate_asterisk.py). Every run goes through the CLI, as a user runs it.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset
import pytest
from fixtures.bind import BindServer, bind_env
from fixtures.common import run_sipctl
from fixtures.pebble import PebbleServer, running_pebble, self_signed

from sipctl.providers.certificate.pem import key_matches, read_certificate

pytestmark = pytest.mark.bind

CERT = "/etc/asterisk/keys/asterisk.pem"
KEY = "/etc/asterisk/keys/asterisk.key"


def sipctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_sipctl(*args, env=env, timeout=180)


def spec_text(
    bind: BindServer, zone: str, pebble: PebbleServer, root: Path, renew_days: int, servers: str
) -> str:
    return (
        f"version: 1\ndomain: {zone}\n"
        "transports: {udp: {port: 5060}, tls: {port: 5061}}\n"
        f"servers: {servers}\n"
        "users: {director: 105}\n"
        f"dns:\n  provider: rfc2136\n  server: '{bind.server}'\n"
        f"  tsig: {{name: {bind.key_name}, secret_env: SIPCTL_TSIG_SECRET}}\n"
        f"asterisk:\n  target: dir:{root}\n  tls:\n    cert_file: {CERT}\n    key_file: {KEY}\n"
        f"    acme: {{directory: '{pebble.directory}', email: hostmaster@{zone}, "
        f"renew_days: {renew_days}, ca_file: '{pebble.ca_file}'}}\n"
    )


@pytest.fixture
def zone(bind: BindServer) -> Iterator[str]:
    name = bind.new_zone()
    yield name
    bind.delete_zone(name)


def challenges(bind: BindServer, zone: str, names: list[str]) -> list[str]:
    return [t for n in names for t in bind.query(f"_acme-challenge.{n}", "TXT")]


def never_shows_secrets(results: list[subprocess.CompletedProcess[str]], *keys: bytes) -> None:
    for result in results:
        text = result.stdout + result.stderr
        assert "PRIVATE KEY" not in text
        for key in keys:
            for line in key.decode().splitlines():
                if not line.startswith("-----"):
                    assert line not in text


def test_obtain_nothing_to_do_then_renew(
    bind: BindServer, zone: str, pebble: PebbleServer, tmp_path: Path
) -> None:
    root = tmp_path / "pbx"
    spec = tmp_path / "sipctl.yaml"
    one_server = f"[{{host: asterisk.{zone}, ipv4: [203.0.113.10]}}]"
    spec.write_text(spec_text(bind, zone, pebble, root, 5, one_server))
    env = bind_env(bind)
    names = [zone, f"asterisk.{zone}"]

    planned = sipctl("plan", "-f", str(spec), "--detailed-exitcode", env=env)
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert f"+ certificate {sorted(names)[0]}, {sorted(names)[1]} (ACME " in planned.stdout
    assert "renewed below 5 days left)" in planned.stdout

    applied = sipctl("apply", "-f", str(spec), "--auto-approve", "--no-verify", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    cert_pem = (root / CERT.lstrip("/")).read_bytes()
    key_file = root / KEY.lstrip("/")
    key_pem = key_file.read_bytes()
    first = read_certificate(cert_pem)
    assert sorted(first.names) == sorted(names)
    assert key_matches(key_pem, first)
    assert key_file.stat().st_mode & 0o777 == 0o640
    assert b"BEGIN EC PRIVATE KEY" in key_pem or b"BEGIN PRIVATE KEY" in key_pem
    assert challenges(bind, zone, names) == []
    bookkeeping = root / "var/lib/sipctl"
    accounts = list(bookkeeping.glob("acme-account-*.pem"))
    assert len(accounts) == 1
    assert bookkeeping.stat().st_mode & 0o777 == 0o700
    assert accounts[0].stat().st_mode & 0o777 == 0o600
    account_key = accounts[0].read_bytes()

    # A certificate with enough days left: no order at all, and the plan says how many.
    again = sipctl("plan", "-f", str(spec), "--detailed-exitcode", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"\b(9|10) day\(s\) left", again.stdout), again.stdout

    # Fewer days left than renew_days: renewal planned, with the days left.
    spec.write_text(spec_text(bind, zone, pebble, root, 30, one_server))
    due = sipctl("plan", "-f", str(spec), "--detailed-exitcode", env=env)
    assert due.returncode == 2, due.stdout + due.stderr
    assert re.search(r"~ certificate renew: (9|10) day\(s\) left, until ", due.stdout), due.stdout
    assert "renewal due" in due.stdout

    renewed = sipctl("apply", "-f", str(spec), "--auto-approve", "--no-verify", env=env)
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second_pem = (root / CERT.lstrip("/")).read_bytes()
    second = read_certificate(second_pem)
    assert second.serial != first.serial
    new_key = key_file.read_bytes()
    assert new_key != key_pem and key_matches(new_key, second)
    assert key_file.stat().st_mode & 0o777 == 0o640  # kept
    assert challenges(bind, zone, names) == []
    assert accounts[0].read_bytes() == account_key  # the account is reused

    # A new server: its name is missing from the certificate, so it is renewed.
    two = one_server[:-1] + f", {{host: second.{zone}, ipv4: [203.0.113.11]}}]"
    spec.write_text(spec_text(bind, zone, pebble, root, 5, two))
    grown = sipctl("plan", "-f", str(spec), "--detailed-exitcode", env=env)
    assert grown.returncode == 2 and f"second.{zone}" in grown.stdout, grown.stdout

    # A key that is not the certificate's (restored from an old backup, say): renewed too.
    spec.write_text(spec_text(bind, zone, pebble, root, 5, one_server))
    key_file.write_bytes(key_pem)
    mismatch = sipctl("plan", "-f", str(spec), "--detailed-exitcode", env=env)
    assert mismatch.returncode == 2, mismatch.stdout + mismatch.stderr
    assert "does not match the certificate" in mismatch.stdout

    results = [planned, applied, again, due, renewed, grown, mismatch]
    print(due.stdout, renewed.stdout, renewed.stderr, grown.stdout, sep="\n")  # the test log
    never_shows_secrets(results, key_pem, new_key, account_key)
    assert all(bind.secret not in r.stdout + r.stderr for r in results)


class WrongTxtServer:
    """A DNS server that answers every TXT question with a wrong value (UDP and TCP)."""

    def __init__(self) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = int(self.udp.getsockname()[1])
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen()
        self._stop = False
        self.threads = [
            threading.Thread(target=self._serve_udp, daemon=True),
            threading.Thread(target=self._serve_tcp, daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        if question.rdtype == dns.rdatatype.TXT:
            response.answer.append(
                dns.rrset.from_text(question.name, 60, "IN", "TXT", '"not-the-challenge"')
            )
        return response.to_wire()

    def _serve_udp(self) -> None:
        while not self._stop:
            try:
                wire, peer = self.udp.recvfrom(4096)
            except OSError:
                return
            try:
                self.udp.sendto(self._answer(wire), peer)
            except (OSError, dns.exception.DNSException):
                # A stray datagram on this loopback port (other tests probe ports) is not
                # a question: it gets no answer, and the server keeps serving.
                continue

    def _serve_tcp(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                try:
                    size = int.from_bytes(conn.recv(2), "big")
                    answer = self._answer(conn.recv(size))
                    conn.sendall(len(answer).to_bytes(2, "big") + answer)
                except (OSError, ValueError, dns.exception.DNSException):
                    pass

    def close(self) -> None:
        self._stop = True
        self.udp.close()
        self.tcp.close()


def test_a_refused_order_keeps_the_old_certificate_and_cleans_the_zone(
    bind: BindServer, zone: str, tmp_path: Path
) -> None:
    liar = WrongTxtServer()
    refusing = running_pebble(f"127.0.0.1:{liar.port}")
    try:
        root = tmp_path / "pbx"
        old_cert, old_key = self_signed([zone])
        (root / "etc/asterisk/keys").mkdir(parents=True)
        (root / CERT.lstrip("/")).write_bytes(old_cert)
        (root / KEY.lstrip("/")).write_bytes(old_key)
        spec = tmp_path / "sipctl.yaml"
        servers = f"[{{host: asterisk.{zone}, ipv4: [203.0.113.10]}}]"
        spec.write_text(spec_text(bind, zone, refusing, root, 30, servers))
        env = bind_env(bind)
        planned = sipctl("plan", "-f", str(spec), env=env)
        assert "not obtained by sipctl" in planned.stdout, planned.stdout + planned.stderr
        result = sipctl("apply", "-f", str(spec), "--auto-approve", "--no-verify", env=env)
        assert result.returncode == 1, result.stdout + result.stderr
        error = result.stderr
        print(planned.stdout, error, sep="\n")  # the test log
        assert f"ACME server {refusing.directory} refused the order" in error, error
        assert "not-the-challenge" in error or "Correct value not found" in error, error
        assert "Traceback" not in error
        assert (root / CERT.lstrip("/")).read_bytes() == old_cert
        assert (root / KEY.lstrip("/")).read_bytes() == old_key
        assert challenges(bind, zone, [zone, f"asterisk.{zone}"]) == []
        never_shows_secrets([planned, result], old_key)
    finally:
        refusing.stop()
        liar.close()


def test_an_acme_server_it_cannot_trust_is_one_clear_line(
    bind: BindServer, zone: str, pebble: PebbleServer, tmp_path: Path
) -> None:
    root = tmp_path / "pbx"
    spec = tmp_path / "sipctl.yaml"
    servers = f"[{{host: asterisk.{zone}, ipv4: [203.0.113.10]}}]"
    text = spec_text(bind, zone, pebble, root, 5, servers)
    spec.write_text(text.replace(f", ca_file: '{pebble.ca_file}'", ""))
    result = sipctl("apply", "-f", str(spec), "--auto-approve", "--no-verify", env=bind_env(bind))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot trust the HTTPS certificate" in result.stderr, result.stderr
    assert "asterisk.tls.acme.ca_file" in result.stderr and "Traceback" not in result.stderr
    assert not (root / CERT.lstrip("/")).exists()
    assert challenges(bind, zone, [zone, f"asterisk.{zone}"]) == []
