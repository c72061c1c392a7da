"""Plain DNS queries on the wire, TSIG-signed, and their answers verified then decoded.

A plan reads about ten names per zone, so with a thousand zones building each query as a
``dns.message.Message`` and decoding each whole answer dominated the run: an authoritative
server's answers carry the zone's NS records and additional data sipctl never looks at.
Here a query is written directly (header, one question, the TSIG record). An answer is
walked record by record (its framing checked, a TSIG anywhere but last refused); its TSIG is
checked over the WHOLE message by dnspython's own ``dns.tsig.validate`` (as
``dns.message.from_wire`` calls it), and only then are its answer records decoded by
dnspython and grouped as dnspython groups them. The authority and additional records are
never decoded. The first message of a zone transfer is read the same way (``transfer``):
its TSIG checked over the whole message, its records found by owner and type with only their
owner names decoded, and a record's data decoded only when the provider asks for its rrset
(the owned names): the other records of the zone are never decoded.

An answer this reader does not expect (EDNS, which changes the rcode; another class or a
signature in the answer section; a TSIG where none was asked for, or none where one was)
goes to ``dns.message.from_wire`` whole, so sipctl reads it, or refuses it, as before. The
tests compare both readers on the real BIND's answers and on generated (and tampered) ones.
"""

from __future__ import annotations

import hmac
import struct
import time
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsig
from dns.rdtypes.ANY.TSIG import TSIG

from sipctl.reconciler.dns_records import name_of

FUDGE = 300  # seconds of clock difference a signature allows (dnspython's default)
_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdata length
_TSIG_TYPE = int(dns.rdatatype.TSIG)
_OPT_TYPE = int(dns.rdatatype.OPT)
_ANY_CLASS = int(dns.rdataclass.ANY)
_IN_CLASS = int(dns.rdataclass.IN)
# Types whose records dnspython files apart (signatures by what they cover) or refuses in an
# answer section: such an answer goes to dnspython whole.
_SPECIAL = {
    int(t) for t in (dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.SIG, dns.rdatatype.RRSIG)
}


class QueryCodec:
    """Writes signed queries and reads their answers, with one key (or none: unsigned)."""

    def __init__(self, key: dns.tsig.Key | None) -> None:
        self.key = key
        if key is not None:
            self._key_wire = _name_wire(key.name)
            self._key_digest = key.name.to_digestable()
            self._algorithm_wire = _name_wire(key.algorithm)
            self._algorithm_digest = key.algorithm.to_digestable()
            self._mac = _Mac(key)

    def query(self, qid: int, owner: str, rdtype: str) -> tuple[bytes, bytes]:
        """A query for ``owner``/``rdtype`` (class IN, recursion not desired) with id ``qid``,
        and the MAC its answer must be signed over (empty when unsigned)."""
        question = _name_wire(name_of(owner)) + struct.pack(
            "!HH", dns.rdatatype.from_text(rdtype), dns.rdataclass.IN
        )
        if self.key is None:
            return _HEADER.pack(qid, 0, 1, 0, 0, 0) + question, b""
        body = _HEADER.pack(qid, 0, 1, 0, 0, 0)[2:] + question
        now = int(time.time())
        signed_at = struct.pack("!HIH", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF, FUDGE)
        # RFC 8945 4.3.3: the message, then the TSIG variables (key name, class ANY, TTL 0,
        # algorithm, time signed, fudge, error 0, no other data).
        mac = self._mac.of(struct.pack("!H", qid) + body, self._variables(signed_at, 0, b""))
        rdata = (
            self._algorithm_wire
            + signed_at
            + struct.pack("!H", len(mac))
            + mac
            + struct.pack("!HHH", qid, 0, 0)
        )
        tsig = self._key_wire + _RR_FIXED.pack(_TSIG_TYPE, _ANY_CLASS, 0, len(rdata)) + rdata
        header = _HEADER.pack(qid, 0, 1, 0, 0, 1)
        return header + body[10:] + tsig, mac

    def answer(self, wire: bytes, request_mac: bytes) -> Answer:
        """The answer to a query signed with ``request_mac``: its signature verified (raises
        as ``dns.message.from_wire`` does), then its answer section decoded."""
        flags, records = self._checked(wire, request_mac)
        if records is None:
            # Something sipctl does not expect (or an error to report): dnspython decodes
            # and checks the whole message.
            return Answer.of(self._whole(wire, request_mac))
        return Answer(dns.rcode.from_flags(flags, 0), flags, _rrsets(wire, records))

    def transfer(self, wire: bytes, request_mac: bytes) -> Transfer:
        """The first message of a zone transfer asked with ``request_mac``: its signature
        verified over the whole message (raises as ``dns.message.from_wire`` does), its
        answer records found but none decoded yet (``Transfer.rrset`` decodes those asked
        for). A message this reader does not expect goes to dnspython whole, as ``answer``."""
        flags, records = self._checked(wire, request_mac)
        if records is None:
            message = dns.message.from_wire(
                wire, keyring=self.key, request_mac=request_mac, xfr=True, one_rr_per_rrset=True
            )
            return Transfer.of(message)
        found = _TransferRecords(wire, records)
        return Transfer(dns.rcode.from_flags(flags, 0), flags, found.types, found)

    def _checked(
        self, wire: bytes, request_mac: bytes
    ) -> tuple[int, list[tuple[int, int, int]] | None]:
        """The message's flags and its answer records (start, type, class), its framing
        checked and its TSIG verified; None for the records when the message is not what
        this reader expects (dnspython is then to read it whole)."""
        if len(wire) < _HEADER.size:
            raise dns.message.ShortHeader
        _, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
        at = _HEADER.size
        for _ in range(qdcount):
            at = _skip_name(wire, at) + 4
        records = []
        for _ in range(ancount):
            start = at
            at, rdtype, rdclass = _skip_record(wire, at)
            records.append((start, rdtype, rdclass))
        tsig_start = -1
        usual = True
        for section, count in ((2, nscount), (3, arcount)):
            for position in range(count):
                start = at
                at, rdtype, rdclass = _skip_record(wire, at)
                if rdtype == _TSIG_TYPE:
                    if section != 3 or rdclass != _ANY_CLASS or position != count - 1:
                        raise dns.message.BadTSIG
                    tsig_start = start
                elif rdtype == _OPT_TYPE:
                    usual = False  # EDNS: its extended rcode is part of the answer's rcode
        if at != len(wire):
            raise dns.message.TrailingJunk
        usual = usual and all(c == _IN_CLASS and t not in _SPECIAL for _, t, c in records)
        if not usual or (tsig_start >= 0) != (self.key is not None):
            return flags, None
        if tsig_start >= 0:
            self._verify(wire, tsig_start, request_mac)
        return flags, records

    def _whole(self, wire: bytes, request_mac: bytes) -> dns.message.Message:
        return dns.message.from_wire(wire, keyring=self.key, request_mac=request_mac)

    def _variables(self, signed_at: bytes, error: int, other: bytes) -> bytes:
        """The TSIG variables a MAC covers after the message (RFC 8945 4.3.3): key name,
        class ANY, TTL 0, algorithm, time signed and fudge, error, other data."""
        return (
            self._key_digest
            + struct.pack("!HI", _ANY_CLASS, 0)
            + self._algorithm_digest
            + signed_at
            + struct.pack("!HH", error, len(other))
            + other
        )

    def _verify(self, wire: bytes, tsig_start: int, request_mac: bytes) -> None:
        """Check the answer's TSIG (the last record, at ``tsig_start``) with dnspython's own
        ``dns.tsig.validate``, over the whole message, as ``dns.message.from_wire`` does: the
        check that lets an answer in stays dnspython's, not ours."""
        assert self.key is not None, "an answer signed for no key is dnspython's to refuse"
        owner, used = dns.name.from_wire(wire, tsig_start)
        at = tsig_start + used + _RR_FIXED.size
        rdlength = _RR_FIXED.unpack_from(wire, tsig_start + used)[3]
        rdata = dns.rdata.from_wire(dns.rdataclass.ANY, dns.rdatatype.TSIG, wire, at, rdlength)
        assert isinstance(rdata, TSIG)
        dns.tsig.validate(  # type: ignore[no-untyped-call]
            wire, self.key, owner, rdata, int(time.time()), request_mac, tsig_start
        )


class _Mac:
    """HMAC with one key: dnspython's context for the key's algorithm (and truncation),
    keyed once and copied for each message."""

    def __init__(self, key: dns.tsig.Key) -> None:
        context = dns.tsig.get_context(key)  # type: ignore[no-untyped-call]
        if not isinstance(context, dns.tsig.HMACTSig):
            raise NotImplementedError(f"TSIG algorithm {key.algorithm} is not an HMAC")
        self._keyed: hmac.HMAC = context.hmac_context
        self._size = context.size // 8 if context.size else None

    def of(self, *parts: bytes) -> bytes:
        mac = self._keyed.copy()
        for part in parts:
            mac.update(part)
        digest = mac.digest()
        return digest[: self._size] if self._size else digest


@dataclass(frozen=True)
class Answer:
    """What sipctl uses of an answer: its rcode, its flags and its answer section's rrsets,
    by (owner, type), with their TTL (the lowest of the records', as dnspython keeps it)."""

    rcode: dns.rcode.Rcode
    flags: int
    rrsets: dict[tuple[dns.name.Name, int], tuple[int, list[dns.rdata.Rdata]]]

    def rrset(self, owner: dns.name.Name, rdtype: int) -> tuple[int, list[dns.rdata.Rdata]] | None:
        return self.rrsets.get((owner, rdtype))

    @classmethod
    def of(cls, message: dns.message.Message) -> Answer:
        """The same, of a message dnspython decoded (a later rrset of the same owner and
        type, in another class, replaces an earlier one)."""
        rrsets = {(r.name, int(r.rdtype)): (int(r.ttl), list(r)) for r in message.answer}
        return cls(message.rcode(), int(message.flags), rrsets)


class _TransferRecords:
    """The answer records of a transfer message, indexed by (owner, type) with only the
    owner names asked for decoded; a record's data is decoded by dnspython when its rrset
    is asked for. The records of a transfer are files of the zone: each record apart, in
    order (the first and the last are the SOA when the message holds the whole zone).

    An owner written as a pointer (the apex's records point at the question's name) is
    decoded once per place pointed at. An owner whose first label is written out is
    filed under that label (ASCII case folded, as names compare) and decoded only when an
    owner with that first label is asked for: the zone's other names (www, mail, ...) are
    never decoded."""

    def __init__(self, wire: bytes, records: list[tuple[int, int, int]]) -> None:
        self._wire = wire
        self.types = [rdtype for _, rdtype, _ in records]
        self._names: dict[int, dns.name.Name] = {}
        self._starts: dict[tuple[dns.name.Name, int], list[int]] = {}
        self._by_label: dict[bytes, list[tuple[int, int]]] = {}
        for start, rdtype, _ in records[:-1]:  # the closing SOA repeats the opening one
            length = wire[start]
            if length & 0xC0 == 0xC0:
                owner = self._owner(((length & 0x3F) << 8) | wire[start + 1])
                self._starts.setdefault((owner, rdtype), []).append(start)
            else:
                label = wire[start + 1 : start + 1 + length].lower()
                self._by_label.setdefault(label, []).append((start, rdtype))

    def _owner(self, at: int) -> dns.name.Name:
        owner = self._names.get(at)
        if owner is None:
            owner = self._names[at] = dns.name.from_wire(self._wire, at)[0]
        return owner

    def _file(self, first_label: bytes) -> None:
        """Decode the owners that begin with ``first_label`` and file their records."""
        filed = self._by_label.pop(first_label.lower(), None)
        for start, rdtype in filed or ():
            starts = self._starts.setdefault((self._owner(start), rdtype), [])
            starts.append(start)
            starts.sort()  # in the order of the message, with those pointing at the name

    def holds(self, owner: dns.name.Name, rdtype: int) -> bool:
        """Whether the message has a record at ``owner`` of ``rdtype`` (none decoded)."""
        if owner.labels and self._by_label:
            self._file(owner.labels[0])
        return (owner, rdtype) in self._starts

    def rrset(self, owner: dns.name.Name, rdtype: int) -> tuple[int, list[dns.rdata.Rdata]] | None:
        if owner.labels and self._by_label:
            self._file(owner.labels[0])
        starts = self._starts.get((owner, rdtype))
        if starts is None:
            return None
        wire = self._wire
        kind = dns.rdatatype.RdataType.make(rdtype)
        ttl = -1
        rdatas = []
        for start in starts:
            at = _skip_name(wire, start)
            _, _, record_ttl, rdlength = _RR_FIXED.unpack_from(wire, at)
            at += _RR_FIXED.size
            rdatas.append(dns.rdata.from_wire(dns.rdataclass.IN, kind, wire, at, rdlength))
            if ttl < 0:  # the rrset's TTL is its first record's (each record came apart)
                ttl = 0 if record_ttl > 0x7FFFFFFF else record_ttl
        return ttl, rdatas


_Rrsets = dict[tuple[dns.name.Name, int], tuple[int, list[dns.rdata.Rdata]]]


@dataclass(frozen=True)
class Transfer:
    """What sipctl uses of the first message of a zone transfer: its rcode, its flags, the
    types of its answer records in order, and the records at an owned name and type (all of
    the message's but the last, the closing SOA), with the first one's TTL."""

    rcode: dns.rcode.Rcode
    flags: int
    types: list[int]
    records: _TransferRecords | _Rrsets

    def rrset(self, owner: dns.name.Name, rdtype: int) -> tuple[int, list[dns.rdata.Rdata]] | None:
        if isinstance(self.records, _TransferRecords):
            return self.records.rrset(owner, rdtype)
        return self.records.get((owner, rdtype))

    def holds(self, owner: dns.name.Name, rdtype: int) -> bool:
        """Whether the message has a record at ``owner`` of ``rdtype``, none decoded."""
        if isinstance(self.records, _TransferRecords):
            return self.records.holds(owner, rdtype)
        return (owner, rdtype) in self.records

    @classmethod
    def of(cls, message: dns.message.Message) -> Transfer:
        """The same, of a message dnspython decoded each record apart (a record of another
        class joins the rrset of its owner and type)."""
        rrsets: _Rrsets = {}
        for rrset in message.answer[:-1]:
            found = rrsets.setdefault((rrset.name, int(rrset.rdtype)), (int(rrset.ttl), []))
            found[1].extend(rrset)
        types = [int(r.rdtype) for r in message.answer]
        return cls(message.rcode(), int(message.flags), types, rrsets)


def _rrsets(
    wire: bytes, records: list[tuple[int, int, int]]
) -> dict[tuple[dns.name.Name, int], tuple[int, list[dns.rdata.Rdata]]]:
    """The answer section's records (start, type, class; all class IN) as dnspython groups
    them: one rrset per owner and type, the lowest TTL, equal records once (the first), a
    singleton type (SOA, CNAME...) holding its last record only."""
    names: dict[int, dns.name.Name] = {}
    grouped: dict[tuple[dns.name.Name, int], tuple[int, list[dns.rdata.Rdata]]] = {}
    for start, rdtype, _ in records:
        pointer = wire[start] & 0xC0 == 0xC0
        target = ((wire[start] & 0x3F) << 8 | wire[start + 1]) if pointer else start
        owner = names.get(target)
        if owner is None:
            owner = names[target] = dns.name.from_wire(wire, target)[0]
        at = _skip_name(wire, start)
        _, _, ttl, rdlength = _RR_FIXED.unpack_from(wire, at)
        at += _RR_FIXED.size
        kind = dns.rdatatype.RdataType.make(rdtype)
        rdata = dns.rdata.from_wire(dns.rdataclass.IN, kind, wire, at, rdlength)
        ttl = 0 if ttl > 0x7FFFFFFF else ttl
        key = (owner, rdtype)
        if key not in grouped:
            grouped[key] = (ttl, [rdata])
            continue
        low, rdatas = grouped[key]
        if dns.rdatatype.is_singleton(kind):
            rdatas = [rdata]  # the TTL stays the lowest of all, as dnspython keeps it
        else:
            rdatas.append(rdata)
        grouped[key] = (min(low, ttl), rdatas)
    # Equal records (by dnspython's equality: the canonical wire form) once, the first kept.
    return {
        key: (ttl, list(dict.fromkeys(rdatas)) if len(rdatas) > 1 else rdatas)
        for key, (ttl, rdatas) in grouped.items()
    }


def _malformed(why: str) -> dns.exception.FormError:
    return dns.exception.FormError(why)  # type: ignore[no-untyped-call]


def _name_wire(name: dns.name.Name) -> bytes:
    """A name on the wire, uncompressed."""
    wire = name.to_wire()
    assert wire is not None
    return wire


def _skip_name(wire: bytes, at: int) -> int:
    """The offset just past the (possibly compressed) name at ``at``."""
    while True:
        if at >= len(wire):
            raise _malformed("a name runs past the end of the message")
        length = wire[at]
        if length == 0:
            return at + 1
        if length & 0xC0 == 0xC0:
            if at + 2 > len(wire):
                raise _malformed("a name runs past the end of the message")
            return at + 2
        if length & 0xC0:
            raise dns.name.BadLabelType
        at += 1 + length


def _skip_record(wire: bytes, at: int) -> tuple[int, int, int]:
    """(offset past the record at ``at``, its type, its class)."""
    at = _skip_name(wire, at)
    if at + _RR_FIXED.size > len(wire):
        raise _malformed("a record runs past the end of the message")
    rdtype, rdclass, _, rdlength = _RR_FIXED.unpack_from(wire, at)
    end = at + _RR_FIXED.size + rdlength
    if end > len(wire):
        raise _malformed("a record runs past the end of the message")
    return end, rdtype, rdclass
