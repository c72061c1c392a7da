"""The rfc2136 reader's own query writer and answer reader (providers/dns/wire.py) read exactly
what dnspython's whole-message decoder reads, and refuse what it refuses.

The reference is the code sipctl used before: ``dns.message.from_wire`` with the key and the
request's MAC, then the answer section's rrsets by owner and type. Compared on answers the
real BIND gives (the seed's records, missing names, other zones, the read-only key, a key the
server does not know) and on generated signed answers (Hypothesis: records in every section,
duplicates, names in other case, huge TTLs, EDNS, other classes), tampered with byte by byte.
The first message of a zone transfer, read by ``QueryCodec.transfer`` (only the records asked
for decoded), is held the same way to dnspython's decoding of the whole message, each record
apart (``from_wire(..., xfr=True, one_rr_per_rrset=True)``).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.renderer
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import pytest
from fixtures.bind import BindServer, bind_env, dns_spec
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.providers.dns.owned import LiveRrset
from sipctl.providers.dns.wire import Answer, QueryCodec, Transfer

KEY = dns.tsig.Key("k.example.", "c2lwY3RsLXRlc3Qtc2VjcmV0LXNpcGN0bC10ZXN0LXM=", "hmac-sha256")

Outcome = tuple[str, object]


def _read(answer: Answer) -> object:
    """What the provider takes from an answer: rcode, flags and each rrset as it reads it."""
    rrsets = {
        (name.to_text().lower(), rdtype): LiveRrset.from_rdatas(*rrset)
        for (name, rdtype), rrset in answer.rrsets.items()
    }
    return (int(answer.rcode), answer.flags, sorted(rrsets.items()))


def _outcome(decode: Callable[[], Answer]) -> Outcome:
    try:
        return ("read", _read(decode()))
    except (dns.exception.DNSException, ValueError) as exc:
        return ("refused", type(exc).__name__)


def _both(codec: QueryCodec, wire: bytes, mac: bytes) -> tuple[Outcome, Outcome]:
    fast = _outcome(lambda: codec.answer(wire, mac))
    whole = _outcome(
        lambda: Answer.of(dns.message.from_wire(wire, keyring=codec.key, request_mac=mac))
    )
    return fast, whole


def test_a_query_is_signed_as_dnspython_checks_it() -> None:
    codec = QueryCodec(KEY)
    wire, mac = codec.query(0x1234, "_sip._udp.Example.COM.", "SRV")
    request = dns.message.from_wire(wire, keyring={KEY.name: KEY})  # verifies the MAC
    assert request.id == 0x1234 and request.had_tsig and request.mac == mac
    assert not request.flags & dns.flags.RD
    (question,) = request.question
    assert question.name == dns.name.from_text("_sip._udp.example.com.")
    assert question.rdtype == dns.rdatatype.SRV and question.rdclass == dns.rdataclass.IN
    unsigned, no_mac = QueryCodec(None).query(7, "example.com.", "NAPTR")
    assert no_mac == b"" and not dns.message.from_wire(unsigned).had_tsig


# --- generated answers ----------------------------------------------------------------------

_OWNERS = ["z.example.", "Z.Example.", "_sip._udp.z.example.", "asterisk.z.example.", "o.test."]
_RECORDS = [
    ("A", "192.0.2.1"),
    ("A", "192.0.2.2"),
    ("AAAA", "2001:db8::1"),
    ("SRV", "10 0 5060 asterisk.z.example."),
    ("SRV", "10 0 5060 ASTERISK.z.example."),  # equal to the one above, other text
    ("SRV", "20 5 5061 b.z.example."),
    ("NAPTR", '10 10 "s" "SIP+D2U" "" _sip._udp.z.example.'),
    ("NAPTR", '10 10 "S" "sip+d2u" "" _sip._udp.z.example.'),
    ("NAPTR", '100 10 "u" "E2U+email" "!^.*$!mailto:info@example.org!" .'),
    ("TXT", '"sipctl-registry=1" "host=asterisk.z.example."'),
    ("SOA", "ns1.z.example. hostmaster.z.example. 1 3600 600 86400 300"),
    ("SOA", "ns1.z.example. hostmaster.z.example. 2 3600 600 86400 300"),
    ("CNAME", "asterisk.z.example."),
    ("NS", "ns1.z.example."),
    ("MX", "10 mail.z.example."),
]
_record = st.tuples(
    st.sampled_from([1, 1, 1, 2, 3]),  # section: answers most often
    st.sampled_from(_OWNERS),
    st.sampled_from(_RECORDS),
    st.one_of(st.integers(0, 86400), st.integers(0, 2**32 - 1)),
    st.sampled_from([dns.rdataclass.IN] * 6 + [dns.rdataclass.CH]),
)


def _signed_answer(
    request_mac: bytes,
    qid: int,
    records: list[tuple[int, str, tuple[str, str], int, dns.rdataclass.RdataClass]],
    rcode: dns.rcode.Rcode,
    authoritative: bool,
    edns: bool,
    key: dns.tsig.Key | None,
    tsig_error: int = 0,
) -> bytes:
    """An answer as a server writes it, one record per rrset (so duplicates stay)."""
    flags = dns.flags.QR | (dns.flags.AA if authoritative else 0)
    renderer = dns.renderer.Renderer(qid, int(flags) | (int(rcode) & 0xF))
    renderer.add_question(dns.name.from_text("z.example."), dns.rdatatype.NAPTR)
    for section, owner, (rdtype, text), ttl, rdclass in sorted(records, key=lambda r: r[0]):
        kind = dns.rdatatype.from_text(rdtype)
        rdclass = rdclass if kind == dns.rdatatype.TXT else dns.rdataclass.IN
        rrset = dns.rrset.RRset(dns.name.from_text(owner), rdclass, kind)
        rrset.add(dns.rdata.from_text(rdclass, kind, text), ttl)
        renderer.add_rrset(section, rrset)
    if edns:
        renderer.add_edns(0, (int(rcode) >> 4) << 24, 1232)
    renderer.write_header()
    if key is not None:  # after the header, as dnspython signs: the MAC covers the counts
        renderer.add_tsig(key.name, key, 300, qid, tsig_error, b"", request_mac, key.algorithm)
    return renderer.get_wire()


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(_record, max_size=12),
    rcode=st.sampled_from([dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.REFUSED]),
    authoritative=st.booleans(),
    edns=st.sampled_from([False, False, False, True]),
    signed=st.sampled_from([True, True, True, False]),
    tsig_error=st.sampled_from([0] * 8 + [16, 17, 18, 20, 22]),  # BADSIG, BADKEY, ...
    tamper=st.one_of(st.none(), st.tuples(st.integers(0, 10_000), st.integers(1, 255))),
)
def test_generated_answers_read_as_dnspython_reads_them(
    records: list[tuple[int, str, tuple[str, str], int, dns.rdataclass.RdataClass]],
    rcode: dns.rcode.Rcode,
    authoritative: bool,
    edns: bool,
    signed: bool,
    tsig_error: int,
    tamper: tuple[int, int] | None,
) -> None:
    codec = QueryCodec(KEY if signed else None)
    _, mac = codec.query(99, "z.example.", "NAPTR")
    key = KEY if signed else None
    wire = _signed_answer(mac, 99, records, rcode, authoritative, edns, key, tsig_error)
    if tamper is not None and signed:  # unsigned, a flipped byte may land in unread records
        at, flip = tamper
        data = bytearray(wire)
        data[at % len(data)] ^= flip
        wire = bytes(data)
    fast, whole = _both(codec, wire, mac)
    if tamper is None:
        assert fast == whole and (fast[0] == "read") == (tsig_error == 0 or not signed)
    else:  # both refuse it (the first broken thing each notices may differ) or read alike
        assert fast[0] == whole[0] and (fast[0] == "refused" or fast == whole)


def _transfer_outcome(decode: Callable[[], Transfer]) -> Outcome:
    """What the provider takes from a transfer's first message: rcode, flags, the types in
    order and the rrset at every owner and type it may ask for."""
    try:
        transfer = decode()
        kinds = {dns.rdatatype.from_text(rdtype) for rdtype, _ in _RECORDS}
        rrsets = {}
        for owner in _OWNERS:
            for kind in sorted(kinds):
                found = transfer.rrset(dns.name.from_text(owner), kind)
                if found is not None:
                    rrsets[(owner.lower(), int(kind))] = LiveRrset.from_rdatas(*found)
        read = (int(transfer.rcode), transfer.flags, transfer.types, sorted(rrsets.items()))
        return ("read", read)
    except (dns.exception.DNSException, ValueError) as exc:
        return ("refused", type(exc).__name__)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(_record, max_size=12),
    rcode=st.sampled_from([dns.rcode.NOERROR, dns.rcode.REFUSED, dns.rcode.NOTAUTH]),
    edns=st.sampled_from([False, False, False, True]),
    signed=st.sampled_from([True, True, True, False]),
    tsig_error=st.sampled_from([0] * 8 + [16, 17, 18]),
    tamper=st.one_of(st.none(), st.tuples(st.integers(0, 10_000), st.integers(1, 255))),
)
def test_generated_transfer_messages_read_as_dnspython_reads_them(
    records: list[tuple[int, str, tuple[str, str], int, dns.rdataclass.RdataClass]],
    rcode: dns.rcode.Rcode,
    edns: bool,
    signed: bool,
    tsig_error: int,
    tamper: tuple[int, int] | None,
) -> None:
    codec = QueryCodec(KEY if signed else None)
    _, mac = codec.query(7, "z.example.", "AXFR")
    key = KEY if signed else None
    wire = _signed_answer(mac, 7, records, rcode, True, edns, key, tsig_error)
    if tamper is not None and signed:
        at, flip = tamper
        data = bytearray(wire)
        data[at % len(data)] ^= flip
        wire = bytes(data)
    fast = _transfer_outcome(lambda: codec.transfer(wire, mac))
    whole = _transfer_outcome(
        lambda: Transfer.of(
            dns.message.from_wire(
                wire, keyring=codec.key, request_mac=mac, xfr=True, one_rr_per_rrset=True
            )
        )
    )
    if tamper is None:
        assert fast == whole and (fast[0] == "read") == (tsig_error == 0 or not signed)
    else:
        assert fast[0] == whole[0] and (fast[0] == "refused" or fast == whole)


def test_a_signed_answer_to_an_unsigned_query_and_the_reverse_are_refused() -> None:
    signed, unsigned = QueryCodec(KEY), QueryCodec(None)
    _, mac = signed.query(5, "z.example.", "NAPTR")
    records = [(1, "z.example.", _RECORDS[6], 60, dns.rdataclass.IN)]
    answer = _signed_answer(mac, 5, records, dns.rcode.NOERROR, True, False, KEY)
    bare = _signed_answer(mac, 5, records, dns.rcode.NOERROR, True, False, None)
    other_key = dns.tsig.Key("other.", KEY.secret, KEY.algorithm)
    foreign = _signed_answer(mac, 5, records, dns.rcode.NOERROR, True, False, other_key)
    for codec, wire in ((unsigned, answer), (signed, bare), (signed, foreign)):
        fast, whole = _both(codec, wire, mac if codec is signed else b"")
        assert fast[0] == "refused" and fast == whole
    late = _signed_answer(b"another request", 5, records, dns.rcode.NOERROR, True, False, KEY)
    assert _both(signed, late, mac)[0] == ("refused", "BadSignature")


# --- the real BIND -------------------------------------------------------------------------


def _exchange(bind: BindServer, wire: bytes) -> bytes:
    with socket.create_connection((bind.host, bind.port), timeout=5) as sock:
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
            chunk = sock.recv(65535)
            assert chunk, "BIND closed the connection"
            data += chunk
    return data[2:]


def test_real_bind_answers_read_as_dnspython_reads_them(
    bind: BindServer, bind_zone: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIPCTL_TSIG_SECRET", bind_env(bind)["SIPCTL_TSIG_SECRET"])
    spec = tmp_path / "spec.yaml"
    spec.write_text(dns_spec(bind, bind_zone))
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
    read_key = dns.tsig.Key(bind.read_key_name, bind.read_secret, bind.algorithm)
    unknown = dns.tsig.Key("nobody-knows", bind.secret, bind.algorithm)
    wrong_secret = dns.tsig.Key(bind.key_name, bind.read_secret, bind.algorithm)
    write_key = bind.keyring[dns.name.from_text(bind.key_name)]
    questions = [
        (bind_zone, "SOA"),
        (bind_zone, "NAPTR"),
        (bind_zone, "MX"),
        (bind_zone, "NS"),
        (f"_sip._udp.{bind_zone}", "SRV"),
        (f"_sips._ws.{bind_zone}", "SRV"),
        (f"_sipctl.{bind_zone}", "TXT"),
        (f"asterisk.{bind_zone}", "A"),
        (f"asterisk.{bind_zone}", "AAAA"),
        (f"nowhere.{bind_zone}", "A"),
        ("not-served.invalid", "SOA"),
    ]
    seen = set()
    for key in (write_key, read_key, None, unknown, wrong_secret):
        codec = QueryCodec(key)
        for qid, (owner, rdtype) in enumerate(questions):
            wire, mac = codec.query(qid, owner + ".", rdtype)
            fast, whole = _both(codec, _exchange(bind, wire), mac)
            assert fast == whole, (key, owner, rdtype)
            seen.add(fast[0] if fast[0] == "refused" else "read")
            if key is write_key and owner == bind_zone and rdtype == "NAPTR":
                assert fast[0] == "read" and "SIP+D2U" in str(fast[1])
    assert seen == {"read", "refused"}


def test_a_real_transfer_reads_as_dnspython_and_knows_its_soa_undecoded(
    bind: BindServer, bind_zone: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What is read of the owned names of a real BIND transfer is dnspython's reading of the
    whole message, and that the zone's SOA is there is known without decoding it (a plan
    uses nothing else)."""
    monkeypatch.setenv("SIPCTL_TSIG_SECRET", bind_env(bind)["SIPCTL_TSIG_SECRET"])
    spec = tmp_path / "spec.yaml"
    spec.write_text(dns_spec(bind, bind_zone))
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
    codec = QueryCodec(bind.keyring[dns.name.from_text(bind.key_name)])
    data, mac = codec.query(1, bind_zone + ".", "AXFR")
    wire = _exchange(bind, data)
    asked = [
        dns.name.from_text(f"{prefix}{bind_zone}")
        for prefix in ("", "_sip._udp.", "_sip._tcp.", "_sips._tcp.", "_sipctl.", "asterisk.")
    ]
    transfer = codec.transfer(wire, mac)
    # the SOA is there (the server serves the zone): known without decoding a record
    data_decoded = []
    rdata_from_wire = dns.rdata.from_wire
    monkeypatch.setattr(dns.rdata, "from_wire", lambda *a: data_decoded.append(a))
    assert transfer.holds(asked[0], dns.rdatatype.SOA) and not data_decoded
    monkeypatch.setattr(dns.rdata, "from_wire", rdata_from_wire)
    kinds = [dns.rdatatype.from_text(t) for t in ("SOA", "NAPTR", "SRV", "TXT", "A", "AAAA")]
    fast = {(o, k): transfer.rrset(o, k) for o in asked for k in kinds}
    message = dns.message.from_wire(
        wire, keyring=codec.key, request_mac=mac, xfr=True, one_rr_per_rrset=True
    )
    whole = Transfer.of(message)
    assert fast == {(o, k): whole.rrset(o, k) for o in asked for k in kinds}
    assert any(r.name.labels[0] == b"mail" for r in message.answer), "the seed's other names"
