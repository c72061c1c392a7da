"""http.conf edits, as properties: sipctl's keys take effect in the first [general] as
Asterisk reads it, and undoing them gives back the admin's file byte for byte."""

from __future__ import annotations

from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.errors import ProviderError
from sipctl.providers.asterisk.http_conf import (
    MARK,
    WAS,
    has_marks,
    read_http,
    restore,
    set_http,
)
from sipctl.reconciler.asterisk_conf import line_contents, physical_lines
from sipctl.reconciler.render.asterisk import HTTP_ANY_VALUE, HTTP_KEYS

WANTED = {
    "enabled": "yes",
    "bindaddr": "127.0.0.1",
    "tlsenable": "yes",
    "tlsbindaddr": "0.0.0.0:8089",
    "tlscertfile": "/etc/asterisk/keys/asterisk.pem",
    "tlsprivatekey": "/etc/asterisk/keys/asterisk.key",
}

_keys = st.sampled_from([*HTTP_KEYS, "servername", "bindport", "prefix", "sessionlimit"])
_values = st.sampled_from(["yes", "no", "0.0.0.0:8443", "127.0.0.1", "/x.pem", "8088", ""])
_line = st.one_of(
    st.builds(lambda k, v, sp: f"{k}{sp}={sp}{v}", _keys, _values, st.sampled_from(["", " "])),
    st.builds(lambda k, v, c: f"{k}={v} ;{c}", _keys, _values, st.sampled_from(["", " note"])),
    st.sampled_from(["[general]", "[other]", "; a comment", "", "  ", "[post_mappings]",
                     "uploads => /upload", "#include http_extra.conf", "[GENERAL]", "[general](!)"]),
    # block comments as Asterisk reads them (asterisk_conf.scan_lines): sipctl's line must
    # not land inside one, nor commenting out a line open or close one
    st.sampled_from([";--", "--;", ";---", ";-- note --;", "TLSENABLE=no", "note\r;x"]),
    st.builds(lambda k, v, m: f"{k}={v} {m}", _keys, _values, st.sampled_from([";--", "--;"])),
    st.builds(lambda k, v: f"--; {k}={v}", _keys, _values),
)  # fmt: skip
# Asterisk refuses a file with options before its first section head: files start with one.
_heads = st.sampled_from(["[general]", "[other]", "[general] ; the admin's"])
_files = st.builds(
    lambda head, lines: "\n".join([head, *lines]), _heads, st.lists(_line, max_size=14)
) | st.just("")
_endings = st.sampled_from(["", "\n"])


@settings(max_examples=examples(150), deadline=None)
@given(_files, _endings)
def test_set_then_restore_is_the_admins_file(text: str, ending: str) -> None:
    admin = (text + ending).encode()
    try:
        edited = set_http(admin, WANTED, HTTP_ANY_VALUE)
    except ProviderError:
        return  # test_wanted_values_take_effect_in_the_first_general says when
    assert restore(edited) == admin
    # every admin line sipctl did not comment out is read by Asterisk as before: no edit
    # opened, closed or moved a block comment
    before = line_contents(physical_lines(admin.decode()))
    lines = physical_lines(edited.decode())
    index = 0
    for line, read in zip(lines, line_contents(lines), strict=True):
        if line.rstrip("\n").rstrip().endswith(MARK):
            continue  # sipctl's own
        if not line.startswith(WAS):
            assert read == before[index], (line, edited.decode())
        index += 1
    # idempotent: applying again changes no byte
    assert set_http(edited, WANTED, HTTP_ANY_VALUE) == edited


@settings(max_examples=examples(150), deadline=None)
@given(_files, _endings)
def test_wanted_values_take_effect_in_the_first_general(text: str, ending: str) -> None:
    try:
        edited = set_http((text + ending).encode(), WANTED, HTTP_ANY_VALUE)
    except ProviderError as exc:  # only where a block comment leaves no line Asterisk reads
        assert "a block comment (;-- --;) opens or closes on that line" in str(exc)
        return
    found = read_http(edited, HTTP_KEYS)
    for key, value in WANTED.items():
        if key in HTTP_ANY_VALUE:
            assert found[key] is not None
        else:
            assert found[key] == value, (key, edited.decode())


def test_a_file_sipctl_never_touched_has_no_marks() -> None:
    assert not has_marks(b"[general]\nenabled=yes ; sipctl is great, says the admin\n")
