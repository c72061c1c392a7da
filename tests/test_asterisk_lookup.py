"""The any-case lookup of a dialled name (reconciler/render/asterisk_lookup.py), pure parts.

The real Asterisk 22 runs the steps in tests/test_fail2ban_asterisk.py (hostile names over
SIP: only a declared name in another case rings, everything else is one fixed "Wrong call"
line). Here: the Python model of those steps, and the one rule they are made from.

Measured on 22 with a probe dialplan (``Verbose`` of each function of the dialled name):
``FILTER(0-9a-z._+*~,${TOLOWER(${EXTEN})})`` of ``Boss,1`` is ``boss1`` (FILTER's string is
everything after its first comma), of ``a,b,c`` ``abc``, of ``Bo)ss`` and ``Bo(ss`` ``boss``,
of ``${EXTEN}`` ``exten`` (a value put in is never read as a variable again), of ``Bоss``
(Cyrillic о) ``bss``; ``TOLOWER`` leaves every byte above 127 alone; ``LEN`` counts bytes
of the whole value, commas included (``Boss,1``: 6). So FILTER alone would make ``Boss,1``
the name ``boss1``: only the comparison of the two lengths makes it a wrong call.
"""

from __future__ import annotations

import re

from fixtures.user_names import accepted_user_name
from hypothesis import given
from hypothesis import strategies as st

from sipctl.reconciler.asterisk_conf import parse_dialplan
from sipctl.reconciler.render.asterisk import dialplan_text
from sipctl.reconciler.render.asterisk_lookup import (
    NAME_FILTER,
    _expand,
    folded_name,
    lookup_steps,
    lookup_target,
)
from sipctl.schemas.loader import load_spec_text


def test_the_filter_keeps_exactly_a_names_characters_in_lower_case() -> None:
    kept = _expand(NAME_FILTER)
    for code in range(256):
        char = chr(code)
        # "a" + char: a name of two characters, never a special one
        accepted = accepted_user_name("a" + char)
        assert accepted == (char.lower() in kept and char.isascii()), repr(char)
    # FILTER warns about a range that wraps, quoting the dialled string: none may
    ranges = re.findall(r"(.)-(.)", NAME_FILTER)
    assert ranges and all(low < high for low, high in ranges)


names = st.from_regex(r"[A-Za-z0-9+][A-Za-z0-9._+*~]{0,20}", fullmatch=True).filter(
    accepted_user_name
)


@given(name=names, cases=st.lists(st.booleans(), min_size=21, max_size=21))
def test_a_declared_name_is_found_in_every_case(name: str, cases: list[bool]) -> None:
    dialled = "".join(c.upper() if up else c.lower() for c, up in zip(name, cases, strict=False))
    assert folded_name(dialled.encode()) == name.lower().encode()


@given(
    dialled=st.binary(max_size=100)
    | st.builds(lambda a, b: a + b, names.map(str.encode), st.binary(max_size=4))
)
def test_what_the_lookup_keeps_is_the_dialled_name_folded_or_nothing(dialled: bytes) -> None:
    """A dropped character never makes another name: the folded name is the whole dialled
    name in lower case, of a name's characters only, or the call is a wrong call."""
    found = folded_name(dialled)
    if found is None:
        assert any(chr(b).lower() not in _expand(NAME_FILTER) for b in dialled)
    else:
        assert found == dialled.lower()
        assert all(chr(b) in _expand(NAME_FILTER) for b in found)


def test_lookalikes_are_wrong_calls() -> None:
    for dialled in (b"Dir-ector", b"Director,1", b"director ", b"Director(1)", b"${Director}",
                    b"DIRECTOR%2C1", b"Direc\xd1\x82or", b"Director|1", b"Director?x:y"):  # fmt: skip
        assert folded_name(dialled) is None, dialled
    assert folded_name(b"DiReCtOr") == b"director"
    # the catch-all jumps only when there was something to fold: never to itself
    assert lookup_target(b"DiReCtOr") == b"director"
    assert lookup_target(b"director") is None and lookup_target(b"H") == b"h"


@given(dialled=st.binary(max_size=40))
def test_the_catch_all_comes_back_at_most_once(dialled: bytes) -> None:
    target = lookup_target(dialled)
    if target is not None:
        assert target != dialled and lookup_target(target) is None


def _spec(text: str) -> str:
    return dialplan_text(load_spec_text(text).spec)


def test_the_dialled_name_is_read_only_whole_by_tolower_and_len() -> None:
    """Every step of a rendered guest dialplan reads ${EXTEN} only whole: as the one
    argument of TOLOWER or LEN, or as FILTER's string (everything after its first comma).
    No step's argument list holds it."""
    one = _spec("version: 1\ndomain: a.example\nusers: {Director: 105, '101': 101}\n"
                "rooms: {Seminar: {}}\nasterisk: {target: local}\n")  # fmt: skip
    steps = parse_dialplan(one)
    catch_all = [f"{s.app}({s.args})" for s in steps if s.exten == "_-."]
    assert catch_all == lookup_steps("sipctl#wrong-name")
    for step in steps:
        text = f"{step.app}({step.args})"
        rest = text
        for whole in ("${TOLOWER(${EXTEN})}", "${LEN(${EXTEN})}", f"{NAME_FILTER},${{EXTEN}})"):
            rest = rest.replace(whole, "")
        assert "EXTEN" not in rest, text
    # no pattern but the catch-all in the guest context (the rooms context keeps its
    # patterns: the internal phones reach a room in any case through it)
    guest = {s.exten for s in steps if s.context == "guest-call"}
    assert [e for e in guest if e.startswith("_")] == ["_-."]
