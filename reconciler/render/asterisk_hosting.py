"""The guest dialplan of a PBX host that serves many customer domains (``hosting``).

Measured on Asterisk 22 (tests/test_hosting_called_domain.py, docs/hosting.md):
``${SIPDOMAIN}`` is the request URI's host, in the caller's case, with a trailing dot when
the caller wrote one, and an address when the caller dialled one.

The host's guest endpoints land in its entry context (``asterisk.guest_context``). There:

- the name is folded to lower case, and a name with any character no name holds goes no
  further (``asterisk_lookup``): ``Goto(<ctx>,${EXTEN},1)`` would split at commas after the
  name is put in, and log the rest (``%0A`` included) as a bad label, a line of the
  caller's in the log fail2ban reads. The customer's guest context then finds the folded
  name among its exact names, so a declared name is reached in any case;
- the domain is folded to lower case and filtered to the characters of a host name, then
  looked up as an extension of the domains context: each customer domain is an exact
  extension there (twice: with and without a trailing dot) that passes the name on to that
  customer's own guest context; any other domain is a wrong call. (No ExecIf: app_exec is
  not always loaded.)

A customer's guest context is one company's guest context (``asterisk.render``'s steps):
its names (each once, in lower case: the entry context folded what was dialled), and
nothing else; its rooms are its own (``asterisk_rooms``'s
``RoomPlace``). Its users are reached through its own
``local_context`` (``Goto``; a ring group through Local channels), so 105 at one customer
and 105 at another are different phones. Its wrong calls are logged
``Wrong call IP=<addr> domain=<domain>``: one jail for every customer.

A caller may send any domain; it only selects among names that are public anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sipctl.reconciler.asterisk_conf import DialplanWriter
from sipctl.reconciler.render import asterisk_lookup, asterisk_names
from sipctl.reconciler.render.asterisk_rooms import guest_room_steps, room_place, rooms_dialplan
from sipctl.schemas.names import asterisk_name

if TYPE_CHECKING:
    from sipctl.schemas.spec import Asterisk, Spec

DOMAINS_CONTEXT = "sipctl-domains"
CUSTOMER_CONTEXT_PREFIX = asterisk_names.CUSTOMER_CONTEXT_PREFIX
# What the dialplan keeps of the called domain: host name characters only, so neither the
# Goto nor the log line can carry anything else.
DOMAIN_VARIABLE = "SIPCTL_DOMAIN"
LOGGED_DOMAIN = f"${{{DOMAIN_VARIABLE}}}"
# The dialled name in lower case, kept while the domain is looked up as an extension.
NAME_VARIABLE = asterisk_lookup.NAME_VARIABLE


def customer_context(domain: str) -> str:
    """A customer's guest context: ``sipctl-guest-<domain>``, or a digest of a long domain."""
    return asterisk_name(CUSTOMER_CONTEXT_PREFIX, domain.lower())


def domain_extension(domain: str) -> str:
    """The domains context's extension of ``domain`` (Asterisk ignores ``-`` in names)."""
    return domain.lower()


def entry_steps(wrong: str) -> list[str]:
    """The entry context's one pattern: fold the domain and the name (refused when it holds
    anything but a name's characters), go on."""
    variable = DOMAIN_VARIABLE
    return [
        f"Set({variable}=${{FILTER(0-9a-z.\\-,${{TOLOWER(${{SIPDOMAIN}})}})}})",
        *asterisk_lookup.folded_name_steps(wrong),
        f'GotoIf($["${{{variable}}}" = ""]?{wrong},1)',
        f"Goto({DOMAINS_CONTEXT},${{{variable}}},1)",
    ]


def customer_section(host: Asterisk, customer: Spec) -> Asterisk:
    """The host's guest settings as one customer's guest context uses them."""
    return host.model_copy(
        update={
            "guest_context": customer_context(customer.domain),
            "local_context": customer.local_context,
            "route": "goto",
        }
    )


def hosting_dialplan(spec: Spec, out: DialplanWriter) -> None:
    """The entry context, the domains context and every customer's guest context."""
    from sipctl.reconciler.render import asterisk as single

    host = spec.asterisk
    assert host is not None
    wrong = single.WRONG_NAME_EXTENSION
    out.comment(
        f"; Guest calls to the customers of {spec.domain}: routed by the called domain",
        "; (the request URI's host) to that customer's names, and nothing else.",
    )
    out.context(host.guest_context)
    # After our steps (h at every hangup) they end silently; dialled, they are wrong names.
    for name in single.ENDING_EXTENSIONS:
        out.extension(name, single.ending_steps(host))
    out.extension(wrong, single.reject_steps(host, with_domain=True))
    out.extension(single.CATCH_ALL_PATTERN, entry_steps(wrong))
    out.comment("; Each customer's domain, lower case, without and with a trailing dot.")
    out.context(DOMAINS_CONTEXT)
    # No h, i, t, T or e here: a caller who sends the domain "h" is a wrong call too (the
    # channel only passes through this context, it never hangs up in it).
    for customer in spec.customers:
        # The name holds a name's characters only (entry context): no comma, no label.
        steps = [f"Goto({customer_context(customer.domain)},${{{NAME_VARIABLE}}},1)"]
        out.extension(domain_extension(customer.domain), steps)
        out.extension(domain_extension(customer.domain) + ".", steps)
    out.extension(single.CATCH_ALL_PATTERN, [f"Goto({host.guest_context},{wrong},1)"])
    for customer in spec.customers:
        customer_dialplan(host, customer, out)
    rooms_dialplan(spec, single.caller_address_steps(host), out)


def customer_dialplan(host: Asterisk, customer: Spec, out: DialplanWriter) -> None:
    """One customer's guest context: one company's, reached through the domains context."""
    from sipctl.reconciler.render import asterisk as single

    section = customer_section(host, customer)
    out.comment(f"; Customer {customer.domain}: its phones are in {customer.local_context}.")
    out.context(section.guest_context)
    steps = single.users_steps(section)
    for name, target in customer.users.items():
        single.add_name(out, name, steps(target))
    place = room_place(customer.domain)
    for name in customer.rooms:
        single.add_name(out, name, guest_room_steps(name, place))
    out.extension(single.UNAVAILABLE_EXTENSION, single.unavailable_steps(section))
    if section.unknown_callers != "not-found":
        for name in single.ENDING_EXTENSIONS:
            out.extension(name, single.ending_steps(section))
        out.extension(single.WRONG_NAME_EXTENSION, single.reject_steps(section, with_domain=True))
        out.extension(single.CATCH_ALL_PATTERN, single.catch_all_steps())
