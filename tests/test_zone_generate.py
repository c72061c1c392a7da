"""A zone file's $GENERATE lines are counted as dnspython's reader generates them, and a
zone that generates more than sipctl reads is refused before dnspython builds it (one
40-byte line made fifty million records: the plan job ran for hours)."""

from __future__ import annotations

import time
from pathlib import Path

import dns.zone
from fixtures.common import sipctl_in_process
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.providers.dns.zone_generate import MAX_GENERATED, check_generated

ZONE = "mysite.test"
HEAD = f"$ORIGIN {ZONE}.\n$TTL 3600\n@ SOA ns1 hostmaster 1 3600 600 86400 3600\n@ NS ns1\n"
BASE_RECORDS = 2  # SOA, NS


def _records(text: str) -> int:
    zone = dns.zone.from_text(text, origin=ZONE, relativize=False)
    return sum(len(rdataset) for _, rdataset in zone.iterate_rdatasets())


# $GENERATE lines as a zone file may write them: any case, spacing, comments around them.
RANGES = st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(1, 7)).filter(
    lambda r: r[0] <= r[1]
)
LINES = st.lists(
    st.tuples(
        RANGES,
        st.sampled_from(["$GENERATE", "$generate", "$Generate"]),
        st.sampled_from([" ", "\t", "  "]),
        st.booleans(),
        st.sampled_from(["", " ; a comment", "\n; a comment line"]),
    ),
    max_size=5,
)


@settings(max_examples=examples(200), deadline=None)
@given(LINES)
def test_generated_records_are_counted_as_dnspython_makes_them(
    lines: list[tuple[tuple[int, int, int], str, str, bool, str]],
) -> None:
    text = HEAD
    for number, ((start, stop, step), word, space, stepped, after) in enumerate(lines):
        rng = f"{start}-{stop}/{step}" if stepped else f"{start}-{stop}"
        # each line its own owner names: records of two lines never merge into one
        text += f"{word}{space}{rng}{space}g{number}-$ A 192.0.2.1{after}\n"
    made = _records(text) - BASE_RECORDS
    assert check_generated(text, "zone") == made


def test_a_zone_that_generates_too_many_records_is_refused_at_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / f"{ZONE}.zone").write_text(
        HEAD + f"$GENERATE 1-{MAX_GENERATED} a$ A 192.0.2.1\n$GENERATE 1-50000000 b$ A 192.0.2.1\n"
    )
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        f"version: 1\ndomain: {ZONE}\nservers: [{{host: pbx.{ZONE}, ipv4: [203.0.113.10]}}]\n"
        f"dns: {{provider: zonefile, file: state/{ZONE}.zone}}\n"
    )
    began = time.monotonic()
    result = sipctl_in_process("plan", "-f", str(spec))
    assert time.monotonic() - began < 10
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{ZONE}.zone:6: the zone's $GENERATE lines make more than 65,536 records" in (
        " ".join(result.stderr.split())
    )
    assert "Traceback" not in result.stderr
