"""Audit's judgement of a host, pure: the host's rendered dialplan, read into the data the
live read gives (``dialplan show``'s contexts), has no path from one customer to another's
names, rooms or phones, for any customers (``test_hosting_isolation``'s); one include,
jump or Local channel of one customer into another's contexts is a finding naming the
path; which phones a name rings is told from its phones' context, or not at all."""

from __future__ import annotations

from fixtures.properties import examples
from hypothesis import given, settings
from test_hosting_isolation import _host, customers

from sipctl.reconciler.asterisk_conf import parse_dialplan
from sipctl.reconciler.audit.dialplan import Context, Extension, Include, Step
from sipctl.reconciler.audit.hosting import (
    Hosted,
    cross_customer_findings,
    cross_pairs,
    foreign_names,
    phone_endpoints,
)
from sipctl.reconciler.render.asterisk import dialplan_text
from sipctl.reconciler.render.asterisk_hosting import customer_context
from sipctl.schemas.spec import Spec


def _contexts(text: str) -> dict[str, Context]:
    """The contexts of a dialplan file, as ``parse_dialplan_show`` gives the live ones."""
    contexts: dict[str, Context] = {}
    for step in parse_dialplan(text):
        context = contexts.setdefault(step.context, Context(step.context, "pbx_config"))
        extension = context.extensions.setdefault(step.exten, Extension(step.exten))
        number = len(extension.steps) + 1
        extension.steps.append(Step(number, step.app, step.args, f"x.conf:{step.line}"))
    return contexts


def _phones(host: Spec) -> dict[str, Context]:
    """Each customer's phones' context, as an admin writes it: each extension dials one
    endpoint of its own name."""
    found: dict[str, Context] = {}
    for customer in host.customers:
        assert customer.local_context is not None
        context = Context(customer.local_context, "pbx_config")
        for name in customer.users:
            target = customer.users[name]
            for ext in (target,) if isinstance(target, str) else target.extensions():
                step = Step(1, "Dial", f"PJSIP/{ext},20", "extensions.conf:1")
                context.extensions[ext] = Extension(ext, [step])
        found[context.name] = context
    return found


@settings(max_examples=examples(60), deadline=None)
@given(customers())
def test_the_rendered_host_has_no_path_between_customers(data: list[dict[str, object]]) -> None:
    host = _host(data)
    contexts = {**_contexts(dialplan_text(host)), **_phones(host)}
    assert cross_customer_findings(host, host.customers, contexts) == []
    if len(host.customers) < 2:
        return
    first, second = host.customers[0], host.customers[1]
    # one include of the second customer's guest context into the first's: a path
    contexts[customer_context(first.domain)].includes.append(
        Include(customer_context(second.domain), "pbx_config")
    )
    found = cross_customer_findings(host, [first], contexts)
    assert found and all(f.severity == "high" for f in found)
    assert any(
        f"calling {first.domain} reaches {second.domain}'s names" in f.title for f in found
    ), [f.title for f in found]


def test_a_local_channel_into_another_customers_phones_is_a_path() -> None:
    host = _host(
        [
            {"version": 1, "domain": d, "host": "pbx1", "local_context": f"{d[0]}-phones",
             "users": {"director": "105"}}
            for d in ("a.example", "b.example")
        ]
    )  # fmt: skip
    contexts = {**_contexts(dialplan_text(host)), **_phones(host)}
    guest = contexts[customer_context("a.example")]
    guest.extensions["director"].steps.append(
        Step(9, "Dial", "Local/105@b-phones,20", "pbx_config")
    )
    [finding] = cross_customer_findings(host, host.customers, contexts)
    assert finding.code == "cross-customer"
    assert "b.example's phones (its local_context): context b-phones" in finding.title
    assert finding.where == f"{customer_context('a.example')} -> b-phones"


def test_which_phones_a_name_rings_is_told_or_not_at_all() -> None:
    dial = Step(1, "Dial", "PJSIP/105&Local/106@other,20", "x")
    phones = Context("p", "pbx_config", {"105": Extension("105", [dial])})
    other = Context("other", "pbx_config")
    other.extensions["106"] = Extension("106", [Step(1, "Dial", "PJSIP/106desk", "x")])
    contexts = {"p": phones, "other": other}
    assert phone_endpoints("105", "p", contexts) == {"105", "106desk"}
    assert phone_endpoints("107", "p", contexts) == set()  # no such extension: no phone
    for step in (
        Step(1, "Dial", "PJSIP/${EXTEN}", "x"),  # a variable
        Step(1, "Dial", "SIP/105", "x"),  # another technology
        Step(1, "Goto", "elsewhere,105,1", "x"),  # a jump
    ):
        phones.extensions["105"] = Extension("105", [step])
        assert phone_endpoints("105", "p", contexts) is None, step
    phones.extensions["_1XX"] = Extension("_1XX", [dial])  # a pattern may match 107
    assert phone_endpoints("107", "p", contexts) is None
    assert phone_endpoints("105", "missing", contexts) is None


def test_names_called_across_are_the_other_customers_own() -> None:
    host = _host(
        [
            {"version": 1, "domain": "a.example", "host": "pbx1", "local_context": "a-p",
             "users": {"director": "105", "alex": "106"}},
            {"version": 1, "domain": "b.example", "host": "pbx1", "local_context": "b-p",
             "users": {"Director": "105", "support": "101"}},
        ]
    )  # fmt: skip
    a, b = host.customers
    assert foreign_names(a, b) == ["support"]  # Director is a's director in another case
    assert foreign_names(b, a) == ["alex"]
    hosted = Hosted(host, (b,), None, None)  # type: ignore[arg-type]
    assert [(x.domain, y.domain) for x, y in cross_pairs(hosted)] == [
        ("b.example", "a.example"),
        ("a.example", "b.example"),
    ]
