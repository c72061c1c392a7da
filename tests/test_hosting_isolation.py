"""A guest of one customer can never reach another customer's names, rooms or phones: a
property of the host's rendered dialplan, for any customers (names and extension numbers
shared or not), read back through the parser that reads the live file.

In a customer's guest context every step that leads anywhere (Goto, GotoIf, Dial) leads to
an extension of that same context, to that customer's own ``local_context`` or its own rooms
context, or to nothing the caller chose; the domains context sends each domain to its own
customer's context only; each customer's context declares exactly that customer's names;
and a customer's rooms context joins only that customer's conferences (the same room name
at two customers is two conferences).
"""

from __future__ import annotations

import re

from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.reconciler.asterisk_conf import normalize_dialplan
from sipctl.reconciler.render.asterisk import dialplan_text
from sipctl.reconciler.render.asterisk_hosting import DOMAINS_CONTEXT, customer_context
from sipctl.reconciler.render.asterisk_rooms import room_place
from sipctl.schemas.names import canonical_name
from sipctl.schemas.spec import Spec

NAMES = st.sampled_from(["director", "alex", "sales", "101", "105", "Office", "support"])
EXTENSIONS = st.sampled_from(["101", "105", "106", "200"])
_GOTO_RE = re.compile(r"Goto(?:If)?\((?:[^?]*\?)?(?P<target>[^)]*)\)")
_DIAL_RE = re.compile(r"Dial\((?P<targets>[^,)]*)")
_CONFBRIDGE_RE = re.compile(r"ConfBridge\((?P<bridge>[^,]*),(?P<profile>[^,]*),")
ROOMS = st.sampled_from(["meeting", "Board", "105", "seminar", "x" * 60])


@st.composite
def customers(draw: st.DrawFn) -> list[dict[str, object]]:
    count = draw(st.integers(min_value=1, max_value=4))
    found = []
    for n in range(count):
        users: dict[str, object] = {}
        for name in draw(st.lists(NAMES, min_size=1, max_size=4, unique_by=str.lower)):
            if draw(st.booleans()):
                users[name] = draw(EXTENSIONS)
            else:
                ring = draw(st.lists(EXTENSIONS, min_size=1, max_size=3, unique=True))
                users[name] = {"ring": ring, "timeout": 20}
        taken = {name.lower() for name in users}
        rooms = draw(st.lists(ROOMS, max_size=3, unique_by=str.lower))
        found.append(
            {
                "version": 1,
                # a long domain too: its names become digests, still each its own
                "domain": f"c{n}.example" if n != 2 else f"c{n}." + "d" * 60 + ".example",
                "host": "pbx1",
                "local_context": f"c{n}-phones",
                "users": users,
                "rooms": {name: {} for name in rooms if name.lower() not in taken},
            }
        )
    return found


def _host(data: list[dict[str, object]]) -> Spec:
    host = Spec.model_validate(
        {
            "version": 1,
            "domain": "pbx1.hoster.example",
            "hosting": {"name": "pbx1"},
            "asterisk": {"target": "dir:/nowhere"},
        }
    )
    return host.with_customers(tuple(Spec.model_validate(c) for c in data))


def _targets(step: str, context: str) -> list[tuple[str, str]]:
    """(context, extension) of every place a step leads to."""
    found: list[tuple[str, str]] = []
    for match in _GOTO_RE.finditer(step):
        parts = match["target"].split(":")[0].split(",")
        if len(parts) == 3:
            found.append((parts[0], parts[1]))
        elif len(parts) == 2:
            found.append((context, parts[0]))
    for match in _DIAL_RE.finditer(step):
        for target in match["targets"].split("&"):
            extension, _, where = target.removeprefix("Local/").partition("@")
            found.append((where or "<channel>", extension))
    return found


@settings(max_examples=examples(60), deadline=None)
@given(customers())
def test_a_customers_guests_reach_only_that_customers_names_and_phones(
    data: list[dict[str, object]],
) -> None:
    host = _host(data)
    value = normalize_dialplan(dialplan_text(host))
    for customer in host.customers:
        context = customer_context(customer.domain)
        own = {key.split(",", 1)[1] for key in value if key.startswith(context + ",")}
        place = room_place(customer.domain)
        declared = {canonical_name(name) for name in (*customer.users, *customer.rooms)}
        others = {
            canonical_name(name)
            for other in host.customers
            if other is not customer
            for name in (*other.users, *other.rooms)
        }
        # exactly its names (and sipctl's fixed extensions, patterns): none of the others'
        assert declared <= own
        assert not (others - declared) & own, (others - declared) & own
        for key, steps in value.items():
            if not key.startswith(context + ","):
                continue
            for step in steps:
                for where, extension in _targets(step, context):
                    assert where in (context, customer.local_context, place.context), (key, step)
                    if where == context:
                        assert extension in own, (key, step)
                    if where == place.context:
                        assert extension in {canonical_name(r) for r in customer.rooms}, step
        # its rooms context joins its own conferences only, each another than any other's
        bridges = {place.bridge(r): place.profile(r) for r in customer.rooms}
        for key, steps in value.items():
            if key.startswith(place.context + ","):
                for step in steps:
                    for match in _CONFBRIDGE_RE.finditer(step):
                        assert bridges[match["bridge"]] == match["profile"], step
        for other in host.customers:
            if other is not customer:
                theirs = room_place(other.domain)
                assert theirs.context != place.context
                assert not {theirs.bridge(r) for r in other.rooms} & set(bridges)
        assert all(len(name) <= 79 for name in (place.context, *bridges, *bridges.values()))
        # the domains context sends this domain (with and without the dot) here only
        for domain in (customer.domain, customer.domain + "."):
            steps = value[f"{DOMAINS_CONTEXT},{domain}"]
            assert [t[0] for s in steps for t in _targets(s, DOMAINS_CONTEXT)] == [context]
