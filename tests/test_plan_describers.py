"""Every layer's changes read in the spec's words, never as a bare address.

A table test over ``LAYERS`` (a new layer without a describer fails it), a property test
over generated specs (every resource every layer renders gets its own words, created or
removed), the certificate's renewal reasons, and fail2ban's changes through a real plan of a
``dir:`` target, with the file lines only under -v and in Markdown's <details>.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.reconciler.describe import describe_change
from sipctl.reconciler.layers import LAYERS, Layer
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render.certificate import describe_certificate_change
from sipctl.reconciler.resources import Address
from sipctl.schemas.loader import load_spec_text


def _lines(layer: Layer, change: Change) -> list[str]:
    whole = layer.change_describer()
    return whole(change) if whole else describe_change(layer.describer(), change)


def _generic(change: Change) -> str:
    sign = {"create": "+", "update": "~", "delete": "-"}[change.action]
    a = change.address
    return f"{sign} {a.layer} {a.kind} {a.name}"


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.name for layer in LAYERS])
def test_every_layer_has_a_describer(layer: Layer) -> None:
    assert layer.describe_path or layer.describe_change_path, (
        f"layer {layer.name} has no describer: its plans would show bare addresses"
    )
    assert layer.describer() is not None or layer.change_describer() is not None


def _spec(draw: st.DrawFn) -> dict[str, Any]:
    users: dict[str, Any] = {"director": 105}
    for i, name in enumerate(
        draw(st.lists(st.sampled_from(["sales", "desk", "ops"]), unique=True))
    ):
        ring = draw(st.lists(st.integers(200, 299), min_size=1, max_size=3, unique=True))
        users[name] = {"ring": ring, "fallback": 101 + i} if draw(st.booleans()) else ring[0]
    rooms = {
        r: {"max_members": 20}
        for r in draw(st.lists(st.sampled_from(["seminar", "board"]), unique=True))
    }
    wss = draw(st.booleans())
    transports: dict[str, Any] = {"udp": {"port": 5060}, "tls": {"port": 5061}}
    if wss:
        transports["wss"] = {"port": 8089}
    tls: dict[str, Any] = {
        "cert_file": "/etc/asterisk/keys/c.pem",
        "key_file": "/etc/asterisk/keys/k.pem",
    }
    if draw(st.booleans()):
        tls["acme"] = {"directory": "https://acme-v02.api.letsencrypt.org/directory"}
    spec: dict[str, Any] = {
        "version": 1,
        "domain": "mysite.ru",
        "transports": transports,
        "servers": [{"host": "asterisk.mysite.ru", "ipv4": ["203.0.113.10"]}],
        "users": users,
        "rooms": rooms,
        "dns": {"provider": "zonefile", "file": "mysite.ru.zone"},
        "asterisk": {
            "target": "dir:pbx",
            "channel": draw(st.sampled_from(["pjsip", "sip"])) if not wss else "pjsip",
            "tls": tls,
        },
        "firewall": {
            "target": "dir:pbx",
            "backend": draw(st.sampled_from(["iptables", "nftables"])),
        },
        "fail2ban": {
            "target": "dir:pbx",
            "ignoreip": draw(
                st.lists(st.sampled_from(["10.0.0.0/8", "192.0.2.0/24"]), unique=True)
            ),
            "sshd": draw(st.booleans()),
        },
    }
    if wss:
        spec["webrtc"] = {"publish": "dir:pbx:/var/www/call"}
    return spec


@settings(max_examples=examples(25), deadline=None)
@given(st.data())
def test_every_rendered_resource_is_told_in_the_spec_s_words(data: st.DataObject) -> None:
    spec = load_spec_text(yaml.safe_dump(_spec(data.draw)), base_dir=Path("/nonexistent")).spec
    told = set()
    for layer in LAYERS:
        if not layer.managed(spec):
            continue
        for resource in layer.render(spec):
            for change in (
                Change(resource.address, "create", None, resource.value),
                Change(resource.address, "delete", resource.value, None),
            ):
                lines = _lines(layer, change)
                assert lines, change.address
                assert _generic(change) not in lines, f"{layer.name}: no words for {lines}"
                sign = lines[0][0]
                assert all(line[0] == sign for line in lines)
            told.add(layer.name)
    assert {"dns", "asterisk", "firewall", "fail2ban"} <= told


WANTED = {
    "names": ["asterisk.mysite.ru", "mysite.ru"],
    "issuer": "ACME https://acme-v02.api.letsencrypt.org/directory",
    "time_left": "30 days or more",
    "key": "matches the certificate",
}
CERT = Address("certificate", "certificate", "/etc/asterisk/keys/c.pem")


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        (
            None,
            [
                "+ certificate asterisk.mysite.ru, mysite.ru "
                "(ACME acme-v02.api.letsencrypt.org, renewed below 30 days left)"
            ],
        ),
        (
            {"time_left": "12 day(s) left, until 2026-12-14 (renewal due)"},
            ["~ certificate renew: 12 day(s) left, until 2026-12-14 (renewal due)"],
        ),
        (
            {"time_left": "expired 3 day(s) ago (2026-11-29)"},
            ["~ certificate renew: expired 3 day(s) ago (2026-11-29)"],
        ),
        (
            {"names": ["mysite.ru"], "key": "does not match the certificate"},
            [
                "~ certificate names + asterisk.mysite.ru",
                "~ certificate renew: the key does not match the certificate",
            ],
        ),
        (
            {"issuer": "not from ACME: Example CA"},
            [
                "~ certificate renew: issued by not from ACME: Example CA, "
                "not ACME acme-v02.api.letsencrypt.org"
            ],
        ),
    ],
)
def test_a_certificate_change_reads_as_its_reason(
    live: dict[str, Any] | None, expected: list[str]
) -> None:
    if live is None:
        change = Change(CERT, "create", None, WANTED)
    else:
        change = Change(CERT, "update", {**WANTED, **live}, WANTED)
    assert describe_certificate_change(change) == expected


SPEC = """\
version: 1
domain: mysite.ru
servers: [{host: asterisk.mysite.ru, ipv4: [203.0.113.10]}]
users: {director: 105}
fail2ban:
  target: dir:pbx
  ignoreip: [IGNORED]
  maxretry: RETRIES
"""


def test_fail2ban_changes_through_a_real_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(SPEC.replace("IGNORED", "10.0.0.0/8").replace("RETRIES", "5"))
    assert run(["plan", "-f", str(spec), "--no-color"]) == 0
    out = capsys.readouterr().out
    assert "+ fail2ban jail sipctl-asterisk → maxretry 5, findtime 10m, bantime 1h" in out
    assert "+ fail2ban jail sipctl-asterisk ignoreip 10.0.0.0/8" in out
    assert "+ fail2ban filter sipctl-asterisk → 4 failure pattern(s)" in out
    assert "fail2ban file" not in out and "failregex" not in out
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
    capsys.readouterr()

    spec.write_text(SPEC.replace("IGNORED", "10.0.0.0/8, 192.0.2.0/24").replace("RETRIES", "3"))
    assert run(["plan", "-f", str(spec), "--no-color"]) == 0
    out = capsys.readouterr().out
    assert "  ~ fail2ban jail sipctl-asterisk maxretry 5 → 3\n" in out
    assert "  + fail2ban jail sipctl-asterisk ignoreip 192.0.2.0/24\n" in out
    assert "ignoreip =" not in out, "the file lines only with -v"
    assert run(["plan", "-f", str(spec), "--no-color", "-v"]) == 0
    detailed = capsys.readouterr().out
    assert (
        "maxretry = 3" in detailed and "~ fail2ban jail sipctl-asterisk maxretry 5 → 3" in detailed
    )
    assert run(["plan", "-f", str(spec), "--markdown"]) == 0
    md = capsys.readouterr().out
    summary, details = md.split("<details>", 1)
    assert "~ fail2ban jail sipctl-asterisk maxretry 5 → 3" in summary
    assert "maxretry = 3" in details and "maxretry = 3" not in summary


def test_target_help_names_every_layer(capsys: pytest.CaptureFixture[str]) -> None:
    run(["plan", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    listed = text.split("Only this layer (", 1)[1].split(")", 1)[0]
    assert listed.split(", ") == [layer.name for layer in LAYERS]
