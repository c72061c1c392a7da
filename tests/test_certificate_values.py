"""The certificate's value: a certificate that needs nothing reads exactly as desired (no
order), and each reason to renew shows as exactly the field it concerns (property tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.reconciler.render.certificate import KEY_MATCHES, desired_value, live_value
from sipctl.schemas.loader import load_spec_text

LABEL = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)


def spec(servers: list[str], renew_days: int, directory: str) -> object:
    listed = ", ".join(f"{{host: {s}.mysite.test, ipv4: [192.0.2.10]}}" for s in servers)
    text = (
        "version: 1\ndomain: mysite.test\ntransports: {udp: {port: 5060}, tls: {port: 5061}}\n"
        f"servers: [{listed}]\n"
        "dns: {provider: rfc2136, server: '127.0.0.1:53'}\n"
        "asterisk:\n  tls:\n    cert_file: /k/c.pem\n    key_file: /k/k.pem\n"
        f"    acme: {{directory: '{directory}', renew_days: {renew_days}}}\n"
    )
    return load_spec_text(text, source="s.yaml", base_dir=Path("/tmp")).spec


@settings(max_examples=examples(40), deadline=None)
@given(
    servers=st.lists(LABEL, max_size=4, unique=True),
    renew_days=st.integers(1, 365),
    days_left=st.integers(-400, 800),
    key_ok=st.booleans(),
    same_directory=st.booleans(),
)
def test_only_what_is_wrong_differs(
    servers: list[str], renew_days: int, days_left: int, key_ok: bool, same_directory: bool
) -> None:
    directory = "https://acme.example/dir"
    wanted = desired_value(spec(servers, renew_days, directory))  # type: ignore[arg-type]
    names = tuple(wanted["names"])
    live = live_value(
        names=names,
        issuer=wanted["issuer"] if same_directory else "ACME https://other.example/dir",
        not_after=datetime.now(UTC) + timedelta(days=days_left),
        days_left=days_left,
        renew_days=renew_days,
        key=KEY_MATCHES if key_ok else "does not match the certificate",
    )
    differing = {k for k in wanted if wanted[k] != live[k]}
    expected = set()
    if days_left < renew_days:
        expected.add("time_left")
    if not key_ok:
        expected.add("key")
    if not same_directory:
        expected.add("issuer")
    assert differing == expected
    if days_left < renew_days:
        assert str(abs(days_left)) in live["time_left"]


def test_a_renewal_reads_as_its_reason() -> None:
    from sipctl.reconciler.plan import Change
    from sipctl.reconciler.render.certificate import describe_certificate_change, time_left_text
    from sipctl.reconciler.resources import Address

    wanted = {
        "names": ["a.test"],
        "issuer": "ACME x",
        "time_left": time_left_text(30),
        "key": KEY_MATCHES,
    }
    live = {**wanted, "time_left": "9 day(s) left, until 2026-12-12 (renewal due)"}
    change = Change(Address("certificate", "certificate", "/k/c.pem"), "update", live, wanted)
    assert describe_certificate_change(change) == [
        "~ certificate renew: 9 day(s) left, until 2026-12-12 (renewal due)"
    ]
