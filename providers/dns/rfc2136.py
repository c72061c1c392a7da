"""The ``rfc2136`` DNS provider: authoritative TSIG-signed reads, one dynamic UPDATE to write.

Reading asks only for the names sipctl owns (the domain's NAPTR, three SRVs, the registry
TXT, the A/AAAA of the hosts it lists or the spec wants, and the SOA), pipelined over one TCP
connection to the primary: all queries are sent, then all answers read. It never transfers the
zone, so a plan costs the same in a zone of 20 records as in one of 100,000. The queries are
written and their answers checked and decoded by ``wire`` (each answer's TSIG verified over
the whole message, then only its answer section decoded): a plan of a thousand zones is
mostly this.

Writing sends every change of the zone in ONE UPDATE message. Each changed rrset carries an
RFC 2136 prerequisite that it is still exactly what was read ("rrset exists (value
dependent)" with the whole live rrset, or "rrset does not exist"), so an edit made by someone
else in between makes the server refuse the whole message: StalePlanError, nothing changed.
What ends a run rides in the same message with its own prerequisites (``UpdateRider`` on
the RunContext: the DNS lock's release, the record of the last apply), so the provider sends
them without knowing what they are, and the server applies all or nothing.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import socket
import stat
import struct
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, TypeVar

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
from dns.rdtypes.ANY.TXT import TXT

from sipctl.errors import ProviderError, SpecError, StalePlanError
from sipctl.providers.base import Provider, UpdateRider
from sipctl.providers.dns.challenge import CHALLENGE_TTL, ChallengeRecord, ChallengeWriter
from sipctl.providers.dns.owned import (
    DnsKept,
    LiveRrset,
    base_names,
    desired_hosts,
    host_names,
    kept_rrsets,
    listed_hosts,
    owned_state,
    records_of,
    ttl_of,
)
from sipctl.providers.dns.wire import Answer, QueryCodec, name_of
from sipctl.reconciler.dns_records import absolute, parse
from sipctl.reconciler.plan import Change
from sipctl.reconciler.resources import LiveState, Resource

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.providers.dns.lock import DnsLock, DnsStateStore
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Dns

DEFAULT_PORT = 53
_PREREQUISITE_FAILED = {
    dns.rcode.NXDOMAIN,
    dns.rcode.YXDOMAIN,
    dns.rcode.NXRRSET,
    dns.rcode.YXRRSET,
}
_BIND_KEY_SECRET = re.compile(r'secret\s+"([^"]+)"')
_BIND_KEY_NAME = re.compile(r'\bkey\s+"?([A-Za-z0-9._-]+)"?\s*\{')
_BIND_KEY_ALGORITHM = re.compile(r'\balgorithm\s+"?([A-Za-z0-9-]+)"?\s*;')


def _is_strict_base64(text: str) -> bool:
    """RFC 4648 base64, nothing skipped: what a TSIG secret in a BIND key file is."""
    try:
        return bool(text) and bool(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return False


def _named_key(text: str, default: tuple[str, str], where: str) -> tuple[str, str]:
    """The name and algorithm of the one key in a BIND key file (``tsig-keygen NAME``).

    A key file says which key it is; the spec's name and algorithm stand for a bare secret.
    """
    names = _BIND_KEY_NAME.findall(text)
    if len(names) > 1:
        raise ProviderError(
            f"{where}: the TSIG key file holds {len(names)} keys ({', '.join(names)}); "
            "give sipctl a file with one"
        )
    algorithm = _BIND_KEY_ALGORITHM.search(text)
    return (
        names[0] if names else default[0],
        algorithm.group(1).lower() if algorithm else default[1],
    )


class Rfc2136Provider(Provider):
    """A zone on a primary name server that accepts RFC 2136 dynamic updates."""

    layer: ClassVar[str] = "dns"
    name: ClassVar[str] = "rfc2136"

    def __init__(self, loaded: LoadedSpec, ctx: RunContext) -> None:
        if loaded.spec.dns is None or loaded.spec.dns.server is None:
            raise SpecError(f"{loaded.source}: provider rfc2136 needs dns.server")
        self._loaded = loaded
        self._ctx = ctx
        self._dns: Dns = loaded.spec.dns
        self.zone = absolute(loaded.spec.zone)
        self.domain = loaded.spec.domain
        self.host, self.port = split_server(loaded.spec.dns.server)
        self.timeout = loaded.spec.dns.timeout
        self.messages_sent = 0  # DNS messages sent by this provider (for the bench and tests)
        self.updates_sent = 0
        self._keyring: dict[dns.name.Name, dns.tsig.Key] | None = None
        self._query_codec: QueryCodec | None = None
        self._secret_notes: list[str] = []
        # The key signing this run: the spec's, or the one a BIND key file names (a CI job
        # picks a read-only key for plan and the writing key for apply by the file it writes).
        tsig = loaded.spec.dns.tsig
        self._key: tuple[str, str] | None = (tsig.name, tsig.algorithm) if tsig else None

    @property
    def target_id(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"rfc2136://{host}:{self.port}/{self.zone}"

    @property
    def _server(self) -> str:
        return f"{self.host}:{self.port}"

    # --- read -------------------------------------------------------------------------------

    def read(self, desired: Sequence[Resource]) -> LiveState:
        """Read the owned rrsets: at most two pipelined batches on one TCP connection."""
        self._load_keyring()  # a bad secret is reported before any packet is sent
        with _Connection(self) as conn:
            first = [(self.zone, "SOA"), *base_names(self.domain)]
            first += host_names(desired_hosts(desired))
            answers = self._ask(conn, first)
            soa = answers.pop((self.zone, "SOA"), None)
            if soa is None:
                raise ProviderError(
                    f"DNS server {self._server} has no SOA for zone {self.zone}: it does not "
                    "serve that zone (check dns.zone and dns.server)"
                )
            listed = listed_hosts(answers, self.domain, self.zone)
            # Hosts the registry lists that the spec no longer wants: their A/AAAA are ours
            # to delete. Usually none, so usually no second round trip.
            more = [n for n in host_names(listed) if n not in answers and n not in first]
            if more:
                answers.update(self._ask(conn, more))
        live = owned_state(answers, desired)
        live.notes.extend(self._secret_notes)
        serial = int(soa.records[0][1].split()[2])
        live.kept_as(DnsKept).soa_serial = serial
        self._ctx.log(
            f"rfc2136: read {len(answers)} owned rrset(s) of zone {self.zone} from {self._server} "
            f"with {self.messages_sent} signed queries on one TCP connection "
            f"(SOA serial {serial})"
        )
        return live

    def _ask(
        self, conn: _Connection, names: list[tuple[str, str]]
    ) -> dict[tuple[str, str], LiveRrset]:
        answers = conn.ask(names)
        found: dict[tuple[str, str], LiveRrset] = {}
        for (owner, rdtype), answer in zip(names, answers, strict=True):
            self._check_answer(answer, owner, rdtype)
            rrset = answer.rrset(name_of(owner), dns.rdatatype.from_text(rdtype))
            if rrset is not None:
                found[(owner, rdtype)] = LiveRrset.from_rdatas(*rrset)
        return found

    def _check_answer(self, response: Answer, owner: str, rdtype: str) -> None:
        rcode = response.rcode
        if rcode == dns.rcode.REFUSED:
            raise ProviderError(
                f"DNS server {self._server} refused to answer {owner} {rdtype}: check that it "
                f"serves zone {self.zone} and that its allow-query lets {self._who()} query it"
            )
        if rcode == dns.rcode.NOTAUTH:
            raise ProviderError(
                f"DNS server {self._server} is not authoritative for zone {self.zone} (NOTAUTH); "
                f"check dns.server and the TSIG key {self._key_name_text()}"
            )
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise ProviderError(
                f"DNS server {self._server} answered {dns.rcode.to_text(rcode)} "
                f"for {owner} {rdtype}"
            )
        if not response.flags & dns.flags.AA:
            raise ProviderError(
                f"DNS server {self._server} is not authoritative for zone {self.zone} (no AA "
                "bit): dns.server must be the zone's primary, not a resolver or a secondary"
            )

    # --- capabilities: the lock and the record of the last apply are TXT records in the zone,
    # released and written in the zone's last UPDATE (providers/dns/lock.py) ------------------

    def lock_site(self) -> DnsLock:
        from sipctl.providers.dns.lock import DnsLock

        return DnsLock(self)

    def state_store(self) -> DnsStateStore:
        from sipctl.providers.dns.lock import DnsStateStore

        return DnsStateStore(self)

    # --- apply ------------------------------------------------------------------------------

    def apply(
        self, changes: Sequence[Change], live: LiveState, riders: Sequence[UpdateRider] = ()
    ) -> list[str]:
        """Send all ``changes`` in one UPDATE with prerequisites; refused as a whole if stale."""
        if not changes:
            return []
        for change in changes:
            if live.resources.get(change.address) != change.before:
                raise StalePlanError(
                    f"{change.address.kind} {change.address.name} changed since the plan was "
                    "made; nothing was changed. Run plan again"
                )
        update = self.build_update(changes, live)
        # What ends the run (the lock's release, the record of the last apply) may ride in
        # this UPDATE, with its own prerequisites: all of it is applied, or none of it.
        for rider in riders:
            rider.add_to(update)
        with _Connection(self) as conn:
            (response,) = conn.exchange([update])
        self.updates_sent += 1
        rcode = response.rcode()
        if rcode in _PREREQUISITE_FAILED:
            also = "".join(f"; it would also {r.what}" for r in riders)
            raise StalePlanError(
                f"zone {self.zone} changed between read and write (prerequisite failed: "
                f"{dns.rcode.to_text(rcode)}{also}); the server refused the UPDATE and nothing "
                "was changed. Run plan again"
            )
        if rcode == dns.rcode.REFUSED:
            raise ProviderError(
                f"DNS server {self._server} refused the UPDATE of zone {self.zone}: check the "
                f"zone's update-policy (or allow-update) for key {self._key_name_text()} "
                "(sipctl render --dir writes a least-privilege update-policy)"
            )
        if rcode == dns.rcode.NOTAUTH:
            raise ProviderError(
                f"DNS server {self._server} is not authoritative for zone {self.zone} or did "
                f"not accept key {self._key_name_text()} (NOTAUTH): send updates to the primary"
            )
        if rcode == dns.rcode.NOTZONE:
            raise ProviderError(
                f"a name sipctl updates is not inside zone {self.zone} (NOTZONE): check dns.zone"
            )
        if rcode != dns.rcode.NOERROR:
            raise ProviderError(
                f"DNS server {self._server} failed the UPDATE of zone {self.zone}: "
                f"{dns.rcode.to_text(rcode)}"
            )
        for rider in riders:
            rider.sent()
        return [
            f"zone {self.zone}: {len(changes)} rrset(s) changed in one UPDATE to {self._server}"
        ]

    def build_update(self, changes: Sequence[Change], live: LiveState) -> dns.update.UpdateMessage:
        """The UPDATE message: prerequisites first, then deletions and additions per rrset."""
        keyring = self._load_keyring()
        update = dns.update.UpdateMessage(
            self.zone,
            keyring=keyring,
            keyname=dns.name.from_text(self._key_name()) if keyring else None,
            keyalgorithm=self._key_algorithm(),
        )
        rrsets = kept_rrsets(live)
        for change in sorted(changes, key=lambda c: c.address):
            owner, rdtype = change.address.name, change.address.kind
            full = rrsets.get((owner, rdtype))
            if full is None:
                update.absent(owner, rdtype)
            else:
                exact = [e for _, e in full.records]
                update.present(owner, dns.rdataset.from_text_list("IN", rdtype, 0, exact))
            before, after = set(records_of(change.before)), set(records_of(change.after))
            ttl = ttl_of(change.after, self._dns.ttl)
            if rdtype == "NAPTR":
                # Only the SIP NAPTRs are ours: delete them one by one, as they are live.
                gone = before - after
                for canonical_text, exact_text in full.records if full else ():
                    if canonical_text in gone:
                        update.delete(owner, parse(rdtype, exact_text))
                if full is not None and len(full.records) > len(before):
                    ttl = full.ttl  # the rrset is shared: keep its TTL (see dns_owned)
            elif full is not None:
                update.delete(owner, rdtype)
            for record in sorted(after):
                update.add(owner, ttl, parse(rdtype, record))
        return update

    # --- ACME DNS-01 challenges (see providers/dns/challenge.py) ------------------------------

    def challenge_writer(self) -> ChallengeWriter:
        return self

    def publish_challenges(self, records: Sequence[ChallengeRecord]) -> None:
        self._change_challenges(records, add=True)

    def withdraw_challenges(self, records: Sequence[ChallengeRecord]) -> None:
        self._change_challenges(records, add=False)

    def _change_challenges(self, records: Sequence[ChallengeRecord], *, add: bool) -> None:
        """One UPDATE adding (or deleting) exactly these TXT values; no other record moves."""
        if not records:
            return
        update = dns.update.UpdateMessage(self.zone)
        for record in records:
            rdata = TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [record.value.encode("ascii")])
            if add:
                update.add(record.owner, CHALLENGE_TTL, rdata)
            else:
                update.delete(record.owner, rdata)
        with _Connection(self) as conn:
            (response,) = conn.exchange([update])
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            what = "add" if add else "remove"
            raise ProviderError(
                f"DNS server {self._server} refused to {what} the ACME challenge record(s) "
                f"{', '.join(sorted({r.owner for r in records}))} "
                f"({dns.rcode.to_text(rcode)}): the zone's update-policy must let key "
                f"{self._key_name_text()} change TXT at _acme-challenge names"
            )

    def challenges_visible(self, records: Sequence[ChallengeRecord]) -> bool:
        owners = sorted({r.owner for r in records})
        with _Connection(self) as conn:
            answers = self._ask(conn, [(owner, "TXT") for owner in owners])
        for record in records:
            found = answers.get((record.owner, "TXT"))
            texts = {exact for _, exact in found.records} if found else set()
            if f'"{record.value}"' not in texts:
                return False
        return True

    def exchange(self, messages: list[dns.message.Message]) -> list[dns.message.Message]:
        """Send ``messages`` on one connection, signed with the spec's key (used by the lock).

        Errors come back as ProviderError with the same words as the provider's own.
        """
        with _Connection(self) as conn:
            return conn.exchange(messages)

    # --- TSIG -------------------------------------------------------------------------------

    def _key_name(self) -> str:
        assert self._key is not None
        return self._key[0]

    def _key_algorithm(self) -> str:
        return self._key[1] if self._key is not None else str(dns.tsig.default_algorithm)

    def _key_name_text(self) -> str:
        return repr(self._key[0]) if self._key else "(none: unsigned requests)"

    @property
    def signer(self) -> str:
        """Which key signs this run's messages, for messages (its name, never its secret)."""
        self._load_keyring()
        return self._who()

    def _who(self) -> str:
        return f"key {self._key[0]!r}" if self._key else "this host"

    def _codec(self) -> QueryCodec:
        """The writer of this run's signed queries (made once: the key does not change)."""
        if self._query_codec is None:
            keyring = self._load_keyring()
            self._query_codec = QueryCodec(next(iter(keyring.values())) if keyring else None)
        return self._query_codec

    def _load_keyring(self) -> dict[dns.name.Name, dns.tsig.Key] | None:
        """The TSIG keyring, its secret read from the environment or a file (never shown)."""
        tsig = self._dns.tsig
        if tsig is None:
            return None
        if self._keyring is not None:
            return self._keyring
        where = self._loaded.where(("dns", "tsig"))
        if tsig.secret_env is not None:
            secret = self._ctx.env.get(tsig.secret_env, "").strip()
            if not secret:
                raise ProviderError(
                    f"{where}: the TSIG secret is missing: set the environment variable "
                    f"{tsig.secret_env} to the base64 secret of key {tsig.name!r}"
                )
        else:
            assert tsig.secret_file is not None
            path = self._loaded.resolve_path(tsig.secret_file)
            try:
                mode = path.stat().st_mode
                secret = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ProviderError(
                    f"{where}: cannot read the TSIG secret file {path}: {exc.strerror}"
                ) from None
            found = _BIND_KEY_SECRET.search(secret)  # also accept a BIND key file
            if found:
                self._key = _named_key(secret, self._key or (tsig.name, tsig.algorithm), where)
                secret = found.group(1)
            if mode & 0o044:
                readers = " and ".join(
                    who for bit, who in ((0o040, "group"), (0o004, "others")) if mode & bit
                )
                self._secret_notes.append(
                    f"{where}: the TSIG secret file {path} is readable by {readers} "
                    f"(mode {stat.S_IMODE(mode):04o}); anyone who reads it can change the zone: "
                    f"chmod 600 {path}"
                )
        self._ctx.remember_secret(secret)
        source = tsig.secret_env or str(tsig.secret_file)
        name, algorithm = self._key or (tsig.name, tsig.algorithm)
        if not _is_strict_base64(secret):
            # dnspython's decoder skips characters outside the alphabet: a typo would make
            # a different key, and the server's BADSIG would say nothing about why.
            raise ProviderError(
                f"{where}: the TSIG secret of key {name!r} (from {source}) is not valid "
                "base64: only A-Z, a-z, 0-9, '+' and '/', '=' padding at the end, a multiple "
                "of 4 characters (copy it from the 'secret' of the server's key file)"
            )
        try:
            self._keyring = dns.tsigkeyring.from_text({name: (algorithm, secret)})
        except (ValueError, dns.exception.DNSException):
            raise ProviderError(
                f"{where}: the TSIG key {name!r} ({algorithm}) from {source} cannot be used: "
                "check its algorithm and that the secret is base64"
            ) from None
        return self._keyring


_Decoded = TypeVar("_Decoded")


class _Connection:
    """One TCP connection to the primary; messages are pipelined (RFC 7766)."""

    def __init__(self, provider: Rfc2136Provider) -> None:
        self._provider = provider
        self._sock: socket.socket | None = None
        self._next_id = 0
        self._buffer = bytearray()

    def __enter__(self) -> _Connection:
        p = self._provider
        try:
            self._sock = socket.create_connection((p.host, p.port), timeout=p.timeout)
        except ConnectionRefusedError:
            raise ProviderError(
                f"cannot reach DNS server {p.host} port {p.port} over TCP: connection refused "
                "(is the name server running and listening there?)"
            ) from None
        except TimeoutError:
            raise ProviderError(
                f"DNS server {p.host} port {p.port} did not accept a TCP connection within "
                f"{p.timeout:g} s (check dns.server and any firewall in between)"
            ) from None
        except OSError as exc:
            raise ProviderError(
                f"cannot reach DNS server {p.host} port {p.port}: {exc.strerror or exc}"
            ) from None
        self._next_id = secrets.randbelow(0x10000)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def exchange(self, messages: list[dns.message.Message]) -> list[dns.message.Message]:
        """Send all ``messages``, then read all answers (in any order); signed when keyed."""
        p = self._provider
        keyring = p._load_keyring()
        frames: list[tuple[int, bytes]] = []
        by_id: dict[int, dns.message.Message] = {}
        for message in messages:
            message.id = self._take_id()
            if keyring is not None and message.keyring is None:
                message.use_tsig(keyring, p._key_name(), algorithm=p._key_algorithm())
            frames.append((message.id, message.to_wire()))
            by_id[message.id] = message

        def decode(mid: int, data: bytes) -> dns.message.Message:
            request = by_id[mid]
            return dns.message.from_wire(data, keyring=request.keyring, request_mac=request.mac)

        return self._pipeline(frames, decode)

    def ask(self, questions: Sequence[tuple[str, str]]) -> list[Answer]:
        """Ask each (owner, type) question, pipelined; each answer's signature is verified
        and only its answer section decoded (see ``wire``)."""
        codec = self._provider._codec()
        frames: list[tuple[int, bytes]] = []
        macs: dict[int, bytes] = {}
        for owner, rdtype in questions:
            mid = self._take_id()
            data, macs[mid] = codec.query(mid, owner, rdtype)
            frames.append((mid, data))
        return self._pipeline(frames, lambda mid, data: codec.answer(data, macs[mid]))

    def _take_id(self) -> int:
        mid = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFF
        return mid

    def _pipeline(
        self, frames: list[tuple[int, bytes]], decode: Callable[[int, bytes], _Decoded]
    ) -> list[_Decoded]:
        """Send all ``frames`` (id, message), then read one answer to each (in any order)."""
        assert self._sock is not None
        p = self._provider
        wire = b"".join(struct.pack("!H", len(data)) + data for _, data in frames)
        deadline = time.monotonic() + p.timeout
        try:
            self._sock.sendall(wire)
            p.messages_sent += len(frames)
            answers: dict[int, _Decoded] = {}
            asked = {mid for mid, _ in frames}
            while len(answers) < len(frames):
                data = self._read_frame(deadline)
                (mid,) = struct.unpack("!H", data[:2])
                if mid not in asked or mid in answers:
                    raise ProviderError(
                        f"DNS server {p.host} port {p.port} sent an answer to no question"
                    )
                answers[mid] = decode(mid, data)
        except TimeoutError:
            raise ProviderError(
                f"DNS server {p.host} port {p.port} did not answer within {p.timeout:g} s"
            ) from None
        except (dns.tsig.PeerBadKey, dns.message.UnknownTSIGKey):
            raise ProviderError(
                f"DNS server {p.host} port {p.port} does not know TSIG key "
                f"{p._key_name_text()} (BADKEY): check dns.tsig.name against the server's key"
            ) from None
        except (dns.tsig.PeerBadSignature, dns.tsig.BadSignature):
            raise ProviderError(
                f"DNS server {p.host} port {p.port} rejected the signature of TSIG key "
                f"{p._key_name_text()} (BADSIG): the secret or the algorithm differs from the "
                "server's"
            ) from None
        except dns.tsig.PeerBadTime:
            raise ProviderError(
                f"DNS server {p.host} port {p.port} rejected the TSIG time (BADTIME): "
                "this host's clock and the server's differ by more than 5 minutes"
            ) from None
        except dns.exception.DNSException as exc:
            raise ProviderError(
                f"DNS server {p.host} port {p.port} sent an answer sipctl cannot use "
                f"({type(exc).__name__}: {exc})"
            ) from None
        except OSError as exc:
            raise ProviderError(
                f"lost the connection to DNS server {p.host} port {p.port}: {exc.strerror or exc}"
            ) from None
        return [answers[mid] for mid, _ in frames]

    def _read_frame(self, deadline: float) -> bytes:
        """The next length-prefixed message; what arrives with it stays buffered (the
        answers of a pipeline come in a few segments: one read each, not two per answer)."""
        (length,) = struct.unpack("!H", self._read_exact(2, deadline))
        return self._read_exact(length, deadline)

    def _read_exact(self, count: int, deadline: float) -> bytes:
        assert self._sock is not None
        while len(self._buffer) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self._sock.settimeout(left)
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("the server closed the connection")
            self._buffer += chunk
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data


def split_server(value: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (IPv6 as ``[::1]:53``) -> (host, port)."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else DEFAULT_PORT
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, DEFAULT_PORT
