"""Every name sipctl writes for Asterisk fits the 79 characters Asterisk keeps.

Asterisk 22 cuts a config section's name, a context, an extension and a dialled user part at
79 characters, and ConfBridge refuses a longer conference (schemas/names.py says where).
Names made from a spec's value go through one rule (``names.asterisk_name``: as written when
they fit, a digest when not); names Asterisk must find as written are refused by validation.
Proven here over the real spec model and renderer. Pure and fast: no Asterisk.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.reconciler.render.asterisk import desired_files, identify_section
from sipctl.reconciler.render.asterisk_hosting import customer_context
from sipctl.reconciler.render.asterisk_rooms import room_place
from sipctl.schemas.names import MAX_ASTERISK_NAME, asterisk_name
from sipctl.schemas.spec import Spec

_SECTION_RE = re.compile(r"^\[([^\]]+)\]", re.M)
_EXTEN_RE = re.compile(r"^exten\s*=>\s*([^,]+),", re.M)
_CONFBRIDGE_RE = re.compile(r"ConfBridge\(([^,]+),([^,]+),([^)]+)\)")
_GOTO_RE = re.compile(r"Goto\(([^,${}]+),[^,]+,1\)")

# Names a caller dials: digits alone up to the limit, with letters up to 63 (the any-case
# pattern must fit Asterisk's 255 characters).
_digits = st.from_regex(rf"[1-9][0-9]{{0,{MAX_ASTERISK_NAME - 1}}}", fullmatch=True)
_lettered = st.from_regex(r"[a-z][a-z0-9]{0,62}", fullmatch=True)
_long_digits = st.integers(60, MAX_ASTERISK_NAME).map(lambda n: "9" * n)
room_names = st.one_of(_digits, _lettered, _long_digits)
contexts = st.from_regex(rf"[a-z][a-z0-9_]{{0,{MAX_ASTERISK_NAME - 1}}}", fullmatch=True)
_label = st.from_regex(r"[a-z][a-z0-9]{0,20}", fullmatch=True)
domains = st.lists(_label, min_size=1, max_size=10).map(lambda ls: ".".join([*ls, "example"]))


def _rendered_names(files: dict[str, str]) -> list[str]:
    """Every section, extension, context and conference name in sipctl's Asterisk files."""
    found: list[str] = []
    for text in files.values():
        found += [name.split("(")[0] for name in _SECTION_RE.findall(text)]
        found += _EXTEN_RE.findall(text)
        for bridge, bridge_profile, user_profile in _CONFBRIDGE_RE.findall(text):
            found += [bridge, bridge_profile, user_profile]
        found += _GOTO_RE.findall(text)
    return found


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    rooms = draw(st.lists(room_names, min_size=1, max_size=4, unique_by=str.lower))
    domain = draw(st.sampled_from(["mysite.example", "a" * 40 + ".example"]))
    data: dict[str, Any] = {
        "version": 1,
        "domain": domain,
        "servers": [{"host": f"pbx.{domain}", "ipv4": ["192.0.2.7"]}],
        "users": {name: "105" for name in draw(st.lists(room_names, max_size=2))},
        "rooms": {name: {"max_members": 5} for name in rooms},
        "asterisk": {
            "guest_context": draw(contexts),
            "local_context": draw(contexts),
            "video": draw(st.booleans()),
        },
    }
    for user in list(data["users"]):
        if user.lower() in {r.lower() for r in rooms}:
            del data["users"][user]
    try:
        return Spec.model_validate(data)
    except ValueError:
        from hypothesis import reject

        reject()


@settings(
    max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)
@given(specs())
def test_every_rendered_name_of_a_spec_fits_and_every_room_has_its_own(spec: Spec) -> None:
    files = desired_files(spec)
    names = _rendered_names(files)
    assert names
    # an any-case pattern (_[dD]...) is kept to 255 characters (schemas/names.py)
    too_long = [n for n in names if len(n) > (255 if n.startswith("_") else MAX_ASTERISK_NAME)]
    assert not too_long, too_long
    place = room_place(None)
    bridges = {place.bridge(name) for name in spec.rooms}
    profiles = {place.profile(name) for name in spec.rooms}
    assert len(bridges) == len(profiles) == len(spec.rooms)
    for name in spec.rooms:
        assert f"[{place.profile(name)}]" in files["confbridge_sipctl.conf"]


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.tuples(domains, room_names), min_size=2, max_size=6, unique=True))
def test_a_hosts_names_fit_and_two_customers_rooms_are_never_one(
    rooms: list[tuple[str, str]],
) -> None:
    contexts_of = {customer_context(d) for d, _ in rooms} | {
        room_place(d).context for d, _ in rooms
    }
    places = [(room_place(d).bridge(r), room_place(d).profile(r)) for d, r in rooms]
    for name in [*contexts_of, *(n for pair in places for n in pair)]:
        assert len(name) <= MAX_ASTERISK_NAME, name
    assert len({b for b, _ in places}) == len({p for _, p in places}) == len(set(rooms))
    distinct_domains = {d for d, _ in rooms}
    assert len({customer_context(d) for d in distinct_domains}) == len(distinct_domains)
    assert len({room_place(d).context for d in distinct_domains}) == len(distinct_domains)
    identifies = {identify_section(d) for d in distinct_domains}
    assert len(identifies) == len(distinct_domains)
    assert all(len(name) <= MAX_ASTERISK_NAME for name in identifies)


@given(st.text(alphabet="ab-_.@0", max_size=120), st.text(alphabet="ab-_.@0", max_size=120))
def test_the_rule_keeps_a_name_that_fits_and_tells_two_keys_apart(a: str, b: str) -> None:
    for key in (a, b):
        made = asterisk_name("sipctl-x-", key)
        assert len(made) <= MAX_ASTERISK_NAME
        if len("sipctl-x-" + key) <= MAX_ASTERISK_NAME:
            assert made == "sipctl-x-" + key
    if a != b:
        assert asterisk_name("sipctl-x-", a) != asterisk_name("sipctl-x-", b)


def test_a_room_of_the_longest_name_gets_a_profile_asterisk_keeps() -> None:
    room = "9" * MAX_ASTERISK_NAME
    spec = Spec.model_validate(
        {"version": 1, "domain": "mysite.example", "rooms": {room: {}}, "asterisk": {}}
    )
    profile = room_place(None).profile(room)
    assert len(profile) <= MAX_ASTERISK_NAME and profile.startswith("sipctl-room-")
    assert (
        f"ConfBridge({room},{profile},sipctl-member)"
        in desired_files(spec)["extensions_sipctl.conf"]
    )
    # a room whose profile fits is named as it always was
    assert room_place(None).profile("seminar") == "sipctl-room-seminar"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"rooms": {"9" * 80: {}}}, "at most 79 characters"),
        ({"users": {"9" * 80: "105"}}, "at most 79 characters"),
        ({"asterisk": {"guest_context": "g" * 80}}, "(at most 79)"),
    ],
)
def test_a_name_asterisk_would_cut_is_refused_with_its_limit(
    data: dict[str, Any], words: str
) -> None:
    spec: dict[str, Any] = {"version": 1, "domain": "mysite.example", "asterisk": {}, **data}
    spec["asterisk"] = {**spec["asterisk"]}
    with pytest.raises(ValueError, match=re.escape(words)):
        Spec.model_validate(spec)


def test_a_long_domain_with_wss_is_accepted() -> None:
    """The browsers' endpoint has a fixed name (sipctl-browsers), found by the page's From
    host: a long domain no longer needs to fit into it."""
    domain = "a" * 55 + ".example"
    spec = {"version": 1, "domain": domain, "transports": {"udp": {}, "wss": {}}, "asterisk": {}}
    assert Spec.model_validate(spec).domain == domain
