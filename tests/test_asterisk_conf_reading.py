"""sipctl reads and edits the admin's Asterisk files as Asterisk 22 reads them (property tests
through Asterisk's own config reader, on rtp.conf: ``rtp show settings`` tells what it read).

Hostile or odd live files are the point: block comments (``;-- --;``, nested, unclosed, a
stray ``--;``, ``;---`` which opens none), ``\\;``, a ``\\r`` or ``\\x1c`` inside a line (one
line to Asterisk, two to ``str.splitlines``), a name or key in upper case, a second
``[general]``. sipctl counted an ``#include`` inside a block comment as there (its guests'
endpoint was never loaded while plan said "No changes") and set ``rtpstart`` inside one
(Asterisk kept its own 5000-31000 while the firewall opened 10000-20000, and every plan
planned the change again).
"""

from __future__ import annotations

import re

import pytest
from fixtures.asterisk import AsteriskInstance
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.providers.asterisk.edit import count_includes, read_rtp, set_include, set_rtp

pytestmark = pytest.mark.asterisk

CONFIG_DIR = "/etc/asterisk"
CHILD = "sipctl_probe.conf"
# res_rtp_asterisk's defaults and limits (rtp_reload)
DEFAULT = (5000, 31000)
BASELINE = "[general]\nrtpstart=4000\nrtpend=4500\n"  # between examples: a file left unread shows

# Pieces of lines: comments of every kind, line ends Python sees and Asterisk does not.
NOISE = st.sampled_from(
    [";--", "--;", ";---", ";", "\\;", " ", "\t", "\r", "\x1c", "x", "a=b", "; note", "\n"]
)
HEADS = st.sampled_from(["[general]", "[GENERAL]", "[other]", "[general](!)"])


def _number(low: int) -> st.SearchStrategy[str]:
    return st.integers(low, low + 9999).map(str) | st.integers(low, low + 9999).map(
        lambda n: f"{n}abc"
    )


KEYS = st.tuples(st.sampled_from(["rtpstart", "RTPSTART", " rtpstart "]), _number(10000)).map(
    "=".join
) | st.tuples(st.sampled_from(["rtpend", "RtpEnd"]), _number(20000)).map(" = ".join)
PIECE = NOISE | HEADS | KEYS
# Every file starts in a section: a line before any is an error that leaves the old values.
FILES = st.lists(PIECE, max_size=14).map(lambda pieces: "[other]\n" + "\n".join(pieces) + "\n")


def asterisk_reads(pbx: AsteriskInstance, text: str, child: str | None = None) -> tuple[int, int]:
    """The RTP range Asterisk reads from ``text`` as rtp.conf (and ``child`` beside it)."""
    if child is not None:
        pbx.write_admin_file(CHILD, child)
    pbx.write_admin_file("rtp.conf", BASELINE)
    pbx.rx("module reload res_rtp_asterisk.so")
    pbx.write_admin_file("rtp.conf", text)
    pbx.rx("module reload res_rtp_asterisk.so")
    shown = pbx.rx("rtp show settings")
    start = re.search(r"Port start:\s*(\d+)", shown)
    end = re.search(r"Port end:\s*(\d+)", shown)
    assert start is not None and end is not None, shown
    return int(start.group(1)), int(end.group(1))


def in_effect(read: tuple[int | None, int | None]) -> tuple[int, int]:
    """What Asterisk makes of the values sipctl read: a missing one is its default."""
    start = DEFAULT[0] if read[0] is None else read[0]
    end = DEFAULT[1] if read[1] is None else read[1]
    start += start % 2  # RTP takes even ports: an odd start is rounded up
    return (start, end) if start < end else DEFAULT


_SETTINGS = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_SETTINGS
@given(FILES)
def test_rtp_range_is_read_as_asterisk_reads_it(asterisk: AsteriskInstance, text: str) -> None:
    assert in_effect(read_rtp(text.encode())) == asterisk_reads(asterisk, text)


@_SETTINGS
@given(FILES)
def test_rtp_range_set_is_the_range_asterisk_reads(asterisk: AsteriskInstance, text: str) -> None:
    edited = set_rtp(text.encode(), 12344, 23456)
    assert read_rtp(edited) == (12344, 23456)
    assert asterisk_reads(asterisk, edited.decode()) == (12344, 23456)
    assert set_rtp(edited, 12344, 23456) == edited  # a second apply changes no byte


INCLUDES = st.sampled_from(
    [f"#include {CHILD}", f"#INCLUDE {CHILD}", f'#tryinclude "{CHILD}"', f"# include {CHILD}",
     f"#include {CONFIG_DIR}/{CHILD}", f"#include <{CHILD}>", f";#include {CHILD}"]
)  # fmt: skip
PARENTS = st.lists(NOISE | INCLUDES | st.just("[other]"), max_size=12).map(
    lambda pieces: "[other]\n" + "\n".join(pieces) + "\n"
)
CHILD_TEXT = "[general]\nrtpstart=14000\nrtpend=24000\n"


@_SETTINGS
@given(PARENTS)
def test_include_is_counted_as_asterisk_reads_it(asterisk: AsteriskInstance, text: str) -> None:
    included = asterisk_reads(asterisk, text, CHILD_TEXT) == (14000, 24000)
    assert (count_includes(text.encode(), CHILD, CONFIG_DIR) > 0) == included
    present = set_include(text.encode(), CHILD, CONFIG_DIR, present=True)
    assert count_includes(present, CHILD, CONFIG_DIR) == 1
    assert asterisk_reads(asterisk, present.decode()) == (14000, 24000)
    absent = set_include(text.encode(), CHILD, CONFIG_DIR, present=False)
    assert count_includes(absent, CHILD, CONFIG_DIR) == 0
    assert asterisk_reads(asterisk, absent.decode()) == DEFAULT
