"""The in-place zone editor, as a property: for generated hand-made layouts and generated
edits of owned rrsets, the edited text means exactly the intended records (dnspython parses
it back), and every line that holds no edited rrset is still there, byte for byte, in order
(one that inherited a removed line's owner gets that owner written in front of it)."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataset
import dns.zone
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.providers.dns.zone_edit import RrsetEdit, edit_zone

ORIGIN = dns.name.from_text("mysite.test.")
HEAD = (
    "; kept by hand\n$TTL 1h\n@ IN SOA ns1 hostmaster ( 2024010101 ; serial\n"
    "  3600 600 86400 300 )\n@ IN NS ns1\n"
)

# admin lines that are not ours, in many layouts (blank owners, comments, $ORIGIN, TTLs)
THEIRS = [
    "        IN  NS  ns1\n",
    "ns1     IN  A   127.0.0.1 ; the name server\n",
    "mail 300 IN A 192.0.2.25\n",
    "        IN  MX  10 mail\n",
    "; a comment line\n",
    "\n",
    'www IN TXT "a;b" "c(d)"\n',
    "$ORIGIN sub.mysite.test.\nprinter IN A 192.0.2.9\n$ORIGIN mysite.test.\n",
    '@ IN NAPTR 100 10 "u" "E2U+email" "!^.*$!mailto:i@example.org!" .\n',
]
# ours, as an admin (or an older sipctl) may have written them
OURS = [
    "_sip._udp IN SRV 10 0 5060 pbx\n",
    "_sip._udp.mysite.test. 600 IN SRV 20 0 5060 pbx2.mysite.test.\n",
    "pbx IN A 203.0.113.10\n",
    "pbx\tIN\tAAAA\t2001:db8::10\n",
    '_sipctl IN TXT "sipctl-registry=1"\n',
]
OWNED = {
    ("_sip._udp.mysite.test.", "SRV"): [
        "10 0 5060 pbx.mysite.test.",
        "30 0 5060 pbx3.mysite.test.",
    ],
    ("pbx.mysite.test.", "A"): ["203.0.113.10", "203.0.113.11"],
    ("pbx.mysite.test.", "AAAA"): ["2001:db8::10"],
    ("_sipctl.mysite.test.", "TXT"): ['"sipctl-registry=1"', '"host=pbx.mysite.test."'],
    ("_sips._tcp.mysite.test.", "SRV"): ["10 0 5061 pbx.mysite.test."],
}


@st.composite
def layouts(draw: st.DrawFn) -> str:
    lines = draw(st.lists(st.sampled_from(THEIRS + OURS), min_size=1, max_size=14))
    return HEAD + "".join(lines)


@st.composite
def edits(draw: st.DrawFn) -> list[RrsetEdit]:
    chosen = draw(st.lists(st.sampled_from(sorted(OWNED)), unique=True, max_size=len(OWNED)))
    out = []
    for owner, rdtype in chosen:
        records = draw(st.lists(st.sampled_from(OWNED[(owner, rdtype)]), unique=True))
        ttl = draw(st.sampled_from([3600, 600]))
        rdatas = tuple(
            dns.rdata.from_text("IN", rdtype, r, origin=ORIGIN, relativize=False) for r in records
        )
        out.append(RrsetEdit(owner, rdtype, ttl, rdatas, ttl_changed=True))
    return out


def _records(zone: dns.zone.Zone) -> set[tuple[str, str, int, str]]:
    return {
        (str(name), str(rds.rdtype), rds.ttl, rd.to_text(relativize=False))
        for name, node in zone.nodes.items()
        for rds in node.rdatasets
        for rd in rds
    }


@settings(max_examples=examples(150), deadline=None)
@given(text=layouts(), wanted=edits())
def test_edits_mean_what_was_intended_and_keep_every_other_line(
    text: str, wanted: list[RrsetEdit]
) -> None:
    zone = dns.zone.from_text(text, origin=ORIGIN, relativize=False)
    for edit in wanted:
        if edit.rdatas:
            zone.replace_rdataset(
                edit.owner, dns.rdataset.from_rdata_list(edit.ttl, list(edit.rdatas))
            )
        else:
            zone.delete_rdataset(edit.owner, edit.rdtype)
    soa = zone.get_rdataset(ORIGIN, "SOA")
    assert soa is not None
    zone.replace_rdataset(ORIGIN, dns.rdataset.from_rdata(soa.ttl, soa[0].replace(serial=7)))
    new = edit_zone(text, ORIGIN, wanted, 7)
    assert _records(dns.zone.from_text(new, origin=ORIGIN, relativize=False)) == _records(zone)
    theirs = [line for line in text.splitlines() if line in "".join(THEIRS).splitlines()]
    kept = iter(new.splitlines())
    # a line that inherited the owner of a removed line gets that owner written before it
    assert all(
        any(other == line or (line[:1] in " \t" and other.endswith(line)) for other in kept)
        for line in theirs
    ), "a line was lost"
