"""What a host records of its customers' DNS bindings, and what a plan rebuilds from it.

A departed customer's records are removed through the binding the host recorded when it
was applied: that binding, loaded back through the spec's own loader, must be the customer's
``dns`` section exactly (provider, zone, server, the name of its credential, every option),
whatever the section holds. And the record holds names of credentials, never a secret.
Through octoDNS (a real PowerDNS behind its plugin) the removal works as over RFC 2136
(tests/test_hosting_dns.py) and with a zone file (tests/test_hosting_spec.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.reconciler.departures import customers_entry
from sipctl.schemas.loader import load_spec_text

# A DNS label (a TSIG key name, a profile entry): no hyphen at either end.
_NAME = st.from_regex(r"[a-z](?:[a-z0-9-]{0,9}[a-z0-9])?", fullmatch=True)
_ENV = st.from_regex(r"[A-Z][A-Z0-9_]{0,15}", fullmatch=True)
_OPTIONS: dict[str, st.SearchStrategy[Any]] = {
    "zone": st.sampled_from(["a.b.example", "b.example"]),
    "ttl": st.integers(1, 2**31 - 1),
    "naptr": st.booleans(),
    "timeout": st.floats(0.01, 300, allow_nan=False),
}


def _rfc2136() -> st.SearchStrategy[dict[str, Any]]:
    server = st.builds(
        lambda host, port: f"{host}:{port or 53}" if port or host[0] == "[" else host,
        st.sampled_from(["127.0.0.1", "ns1.example", "[2001:db8::1]", "dns.hoster.example"]),
        st.one_of(st.none(), st.integers(1, 65535)),
    )
    source = st.one_of(
        _ENV.map(lambda name: {"secret_env": name}),
        st.sampled_from(["keys/a.key", "/etc/sipctl/tsig.key"]).map(
            lambda path: {"secret_file": path}
        ),
    )
    tsig = st.builds(
        lambda name, algorithm, source: {"name": name, "algorithm": algorithm, **source},
        _NAME,
        st.sampled_from(["hmac-sha256", "hmac-sha512", "hmac-sha1"]),
        source,
    )
    return st.fixed_dictionaries(
        {"provider": st.just("rfc2136"), "server": server},
        optional={**_OPTIONS, "tsig": tsig},
    )


def _zonefile() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"provider": st.just("zonefile"), "file": st.sampled_from(["a.zone", "/srv/a.zone"])},
        optional={**_OPTIONS, "create_file": st.booleans(), "reload": _NAME},
    )


def _octodns() -> st.SearchStrategy[dict[str, Any]]:
    config = st.builds(
        lambda env, extra: {"class": "octodns_route53.Route53Provider", **env, **extra},
        st.dictionaries(
            st.sampled_from(["access_key_id", "secret_access_key", "api_key"]),
            _ENV.map(lambda name: f"env/{name}"),
            max_size=2,
        ),
        st.dictionaries(
            st.sampled_from(["host", "port", "scheme", "max_changes"]),
            st.one_of(st.integers(1, 1000), st.sampled_from(["https", "api.example"])),
            max_size=2,
        ).filter(lambda extra: not isinstance(extra.get("host"), int)),  # host: 1 is 0.0.0.1
    )
    return st.fixed_dictionaries(
        {"provider": st.just("octodns"), "octodns": config}, optional=_OPTIONS
    )


def _customer(dns: dict[str, Any] | None) -> str:
    data = {"version": 1, "domain": "a.b.example", "host": "pbx1", "local_context": "a-phones"}
    return json.dumps({**data, "users": {"director": 105}, "dns": dns})


class _Host:
    """A stand-in for a host spec: only its customers are recorded."""

    def __init__(self, *customers: Any) -> None:
        self.customers = customers


@settings(max_examples=examples(150), deadline=None)
@given(st.one_of(_rfc2136(), _zonefile(), _octodns()))
def test_a_recorded_binding_loads_back_as_the_customers_dns_section(dns: dict[str, Any]) -> None:
    customer = load_spec_text(_customer(dns)).spec
    assert customer.dns is not None
    entry = customers_entry(_Host(customer))["a.b.example"]  # type: ignore[arg-type]
    recorded = json.loads(json.dumps(entry))  # as the host's record keeps it
    text = json.dumps({"version": 1, "domain": "a.b.example", "dns": recorded["dns"]})
    assert load_spec_text(text).spec.dns == customer.dns


def test_a_customer_whose_dns_is_not_sipctls_records_nothing_to_remove() -> None:
    zone = {"provider": "zonefile", "file": "a.zone"}
    for dns, recorded in ((zone, zone), ({**zone, "ensure": "absent"}, None), (None, None)):
        customer = load_spec_text(_customer(dns)).spec
        entry = customers_entry(_Host(customer))["a.b.example"]  # type: ignore[arg-type]
        assert entry == {"dns": recorded, "servers": []}, dns


@pytest.mark.powerdns
def test_a_departed_customers_records_go_through_octodns_too(
    powerdns: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Customers whose records a real PowerDNS holds through octoDNS's plugin (an API key
    from the environment): one file deleted, its records and sipctl's record of its last
    apply go, the other zone keeps every rrset."""
    from octodns_specs import PDNS_KEY_ENV, pdns_spec

    from sipctl.cli import run

    monkeypatch.setenv(PDNS_KEY_ENV, powerdns.api_key)
    monkeypatch.chdir(tmp_path)
    gone, kept = powerdns.new_zone(), powerdns.new_zone()
    (tmp_path / "pbx1.yaml").write_text(
        "version: 1\ndomain: pbx1.hoster.example\nhosting: {name: pbx1}\n"
        "servers: [{host: sip.hoster.example, priority: 10}]\n"
        "asterisk: {target: 'dir:state/pbx1'}\n"
    )
    for zone in (gone, kept):
        text = pdns_spec(zone, powerdns.api_port).replace(
            f"domain: {zone}\n", f"domain: {zone}\nhost: pbx1\nlocal_context: {zone[:8]}-phones\n"
        )
        text = text[: text.index("servers:")] + text[text.index("dns:") :]
        (tmp_path / f"{zone}.yaml").write_text(text + "users: {director: 105}\n")
    assert run(["apply", "-f", str(tmp_path), "--auto-approve"]) == 0
    before_gone, before_kept = powerdns.rrsets(gone), powerdns.rrsets(kept)
    assert (f"_sipctl-state.{gone}.", "TXT") in before_gone
    (tmp_path / f"{gone}.yaml").unlink()
    assert run(["apply", "-f", str(tmp_path / "pbx1.yaml"), "--auto-approve", "--force"]) == 0
    after = powerdns.rrsets(gone)
    ours = {k for k in before_gone if k[0].startswith(("_sip", "_sipctl")) or k[1] == "SRV"}
    assert not ours & set(after), after
    naptr = after.get((f"{gone}.", "NAPTR"), (0, []))[1]
    assert not [r for r in naptr if "SIP" in r.upper()], naptr
    assert {k: v for k, v in powerdns.rrsets(kept).items() if k[1] != "SOA"} == {
        k: v for k, v in before_kept.items() if k[1] != "SOA"
    }
    assert run(["plan", "-f", str(tmp_path), "--detailed-exitcode"]) == 0
