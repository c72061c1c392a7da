"""verify's per-name verdicts, from ``pjsip show endpoint`` answers as Asterisk 22 prints them."""

from __future__ import annotations

from sipctl.providers.asterisk.cli import RxAnswer
from sipctl.providers.asterisk.phones import parse_endpoint
from sipctl.providers.asterisk.rooms import LiveRooms, RoomFacts, parse_confbridge_list
from sipctl.reconciler.verify.names import (
    contact_target,
    name_states,
    phone_state,
    render_names,
    room_state,
)

# Measured on Asterisk 22.10 (the parameter list shortened)
DESK = """
 Endpoint:  105                                                  Not in use    0 of inf
     InAuth:  105-auth/105
        Aor:  105desk                                            1
      Contact:  105desk/sip:105@127.0.0.1:54733            144c5ee943 NonQual        -nan


 ParameterName                      : ParameterValue
 =====================================================
 aors                               : 105desk
 context                            : default
"""
NOBODY = """
 Endpoint:  101                                                  Unavailable   0 of inf
     InAuth:  101-auth/101
        Aor:  101                                                1


 ParameterName                      : ParameterValue
 aors                               : 101
"""


def test_endpoints_are_read_with_their_aors_and_contacts() -> None:
    desk = parse_endpoint("105", RxAnswer("pjsip show endpoint 105", 0, DESK))
    assert desk is not None and desk.exists and desk.aors == ("105desk",)
    assert desk.state == "Not in use"
    assert [(c.aor, c.uri, c.status) for c in desk.contacts] == [
        ("105desk", "sip:105@127.0.0.1:54733", "NonQual")
    ]
    nobody = parse_endpoint("101", RxAnswer("pjsip show endpoint 101", 0, NOBODY))
    assert nobody is not None and nobody.exists and not nobody.contacts
    missing = RxAnswer("pjsip show endpoint 107", 0, "Unable to find object 107.\n")
    assert parse_endpoint("107", missing) == parse_endpoint("107", missing)
    assert not parse_endpoint("107", missing).exists  # type: ignore[union-attr]
    assert parse_endpoint("105", RxAnswer("x", 1, "Unable to connect to remote asterisk")) is None


def test_contact_targets() -> None:
    assert contact_target("sip:105@127.0.0.1:54733") is not None
    assert contact_target("sip:105@192.0.2.7;transport=tcp") == contact_target(
        "sip:105@192.0.2.7:5060;transport=TCP"
    )
    target = contact_target("sips:105@[2001:db8::7]")
    assert target is not None and (target.address, target.port, target.transport) == (
        "2001:db8::7", 5061, "tls"
    )  # fmt: skip


def test_a_name_rings_is_unavailable_or_wrong() -> None:
    desk = parse_endpoint("105", RxAnswer("", 0, DESK))
    nobody = parse_endpoint("101", RxAnswer("", 0, NOBODY))
    missing = parse_endpoint("107", RxAnswer("", 0, "Unable to find object 107."))
    answered = {"sip:105@127.0.0.1:54733": True}
    phones = {
        "105": phone_state("105", desk, answered),
        "101": phone_state("101", nobody, answered),
        "107": phone_state("107", missing, answered),
    }
    assert phones["105"].state == "rings" and "answers OPTIONS" in phones["105"].why
    assert phones["101"].why == "not registered (no contact)"
    assert phones["107"].why == "no endpoint 107 on the PBX"
    assert phone_state("105", desk, {}).state == "unavailable"  # its contact did not answer
    states = {
        s.name: s
        for s in name_states(
            {"director": ["105"], "alex": ["101"], "team": ["101", "107"], "x": ["105"]},
            frozenset({"team"}),
            {"lobby": ("lobby", 50)},
            phones,
            {"x": "404 Not Found"},
            LiveRooms(True, {}),
        )
    }
    assert states["director"].state == "rings" and states["alex"].state == "unavailable"
    assert states["team"].state == "unavailable" and len(states["team"].phones) == 2
    assert states["x"].state == "wrong" and states["lobby"].state == "open"
    assert states["lobby"].members == 0


# Measured on Asterisk 22.10: two callers in seminar, the admin locked team
CONFBRIDGE_LIST = """Conference Bridge Name           Users  Marked Locked Muted
================================ ====== ====== ====== =====
seminar                               2      0 No     No
team                                  1      0 Yes    No
"""


def test_rooms_say_how_many_are_in_them() -> None:
    live = LiveRooms(True, parse_confbridge_list(CONFBRIDGE_LIST))
    assert live.rooms == {
        "seminar": RoomFacts("seminar", 2, False), "team": RoomFacts("team", 1, True)
    }  # fmt: skip
    assert parse_confbridge_list("No such command 'confbridge list'") == {}
    seminar = room_state("seminar", "seminar", 50, None, live)
    assert (seminar.state, seminar.members) == ("open", 2)
    assert render_names([seminar.to_json()])[1].startswith("  seminar (room): open, 2 in the room:")
    assert room_state("Seminar", "seminar", 2, None, live).state == "full"
    assert room_state("team", "team", 9, None, live).state == "locked"
    lobby = room_state("lobby", "lobby", 9, None, live)
    assert (lobby.state, lobby.members) == ("open", 0)  # nobody there: not listed
    unread = room_state("lobby", "lobby", 9, None, LiveRooms(True, None))
    assert (unread.state, unread.members) == ("open", None)
    assert "could not be read" in unread.why
    stopped = room_state("lobby", "lobby", 9, None, LiveRooms(False, None))
    assert stopped.state == "unavailable"
    assert room_state("lobby", "lobby", 9, "404 Not Found", live).state == "wrong"
    # the per-name lines of extensions carry no member count
    assert "members" not in name_states({"a": ["1"]}, frozenset(), {}, {}, {}, None)[0].to_json()
