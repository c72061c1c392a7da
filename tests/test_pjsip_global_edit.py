"""pjsip.conf's [global] user_agent (asterisk.server_header), as properties against the real
parser: sipctl's value takes effect in the admin's first global section, no second global
section is ever written beside one, nothing else changes, and undoing gives back every byte."""

from __future__ import annotations

from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.errors import ProviderError
from sipctl.providers.asterisk.http_conf import has_marks, restore
from sipctl.providers.asterisk.pjsip_global import read_user_agent, set_user_agent
from sipctl.reconciler.asterisk_conf import parse_sections
from sipctl.reconciler.render.asterisk import carries_version

_line = st.one_of(
    st.sampled_from([
        "type=global", "type = global", "type=transport", "type=endpoint", "type=global ; x",
        "user_agent=Asterisk PBX 22.1.0", "user_agent = TestPBX ; the admin's", "user_agent=",
        "endpoint_identifier_order=ip,username,anonymous", "; a comment", "", "  ",
        "#include pjsip_sipctl.conf", "protocol=udp", "bind=0.0.0.0:5060",
    ]),
    st.sampled_from(["[global]", "[transport-udp]", "[101]", "[g](!)", "[global] ; the admin's"]),
    # block comments as Asterisk reads them (asterisk_conf.scan_lines): sipctl's line must
    # not land inside one, nor commenting out a line open or close one
    st.sampled_from([";--", "--;", ";---", ";-- x --;", "user_agent=Old ;--", "user_agent=Old --;",
                     "--; user_agent=Old", "x\r;y"]),
)  # fmt: skip
# Asterisk refuses a file with options before its first section head: files start with one.
_heads = st.sampled_from(["[global]", "[transport-udp]", "[global] ; the admin's"])
_files = st.builds(
    lambda head, lines: "\n".join([head, *lines]), _heads, st.lists(_line, max_size=16)
) | st.just("")
_endings = st.sampled_from(["", "\n"])
_values = st.sampled_from(["PBX", "TestPBX", "Example Phone System 1.0"])


def _globals(text: bytes) -> list[object]:
    return [
        s for s in parse_sections(text.decode()) if s.get("type") == "global" and "!" not in s.flags
    ]


def _without_user_agent(text: bytes) -> list[tuple[str, list[tuple[str, str]]]]:
    return [
        (s.name, [(k, v) for k, v in s.items if k != "user_agent"])
        for s in parse_sections(text.decode())
    ]


@settings(max_examples=examples(200), deadline=None)
@given(_files, _endings, _values)
def test_set_then_restore_is_the_admins_file(text: str, ending: str, value: str) -> None:
    admin = (text + ending).encode()
    try:
        edited = set_user_agent(admin, value)
    except ProviderError:
        return  # the next test says when
    assert restore(edited) == admin
    assert set_user_agent(edited, value) == edited  # idempotent
    assert restore(set_user_agent(edited, "Other")) == admin


@settings(max_examples=examples(200), deadline=None)
@given(_files, _endings, _values)
def test_the_value_takes_effect_in_the_one_global_section(
    text: str, ending: str, value: str
) -> None:
    admin = (text + ending).encode()
    try:
        edited = set_user_agent(admin, value)
    except ProviderError as exc:  # only where a block comment leaves no line Asterisk reads
        assert "a block comment (;-- --;) opens or closes on that line" in str(exc)
        return
    assert read_user_agent(edited) == value, edited.decode()
    first = _globals(edited)[0]
    assert first.get("user_agent") == value  # type: ignore[attr-defined]
    # never a second global section beside the admin's
    assert len(_globals(edited)) == max(1, len(_globals(admin)))
    # every other key of every section is the admin's (and sipctl's section, when the admin
    # had none, comes first: type and user_agent only)
    added = [] if _globals(admin) else [("global", [("type", "global")])]
    assert _without_user_agent(edited) == added + _without_user_agent(admin)


def test_the_admins_line_that_already_says_it_stays_untouched() -> None:
    admin = b"[global]\ntype=global\nuser_agent=PBX ; mine\n"
    assert set_user_agent(admin, "PBX") == admin
    assert not has_marks(admin)
    edited = set_user_agent(b"[global]\ntype=global\nuser_agent=Asterisk PBX 22.1.0\n", "PBX")
    assert edited == (
        b"[global]\nuser_agent=PBX ; sipctl\ntype=global\n"
        b";sipctl-was: user_agent=Asterisk PBX 22.1.0\n"
    )


def test_versions_are_told_apart() -> None:
    assert carries_version("Asterisk PBX 22.10.0") and carries_version("FPBX-16.0.40(21.4.1)")
    assert not carries_version("PBX") and not carries_version("TestPBX")
