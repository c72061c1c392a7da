"""Specs for the octoDNS tests: one through the PowerDNS plugin, one through Route53's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sipctl.cli import run

PDNS_KEY_ENV = "SIPCTL_TEST_PDNS_KEY"  # the PowerDNS API key reaches the plugin as env/NAME
_ONE_SERVER = "  - {{host: sip.{zone}, ipv4: [192.0.2.10], priority: 10}}\n"


def pdns_spec(
    zone: str,
    port: int,
    *,
    servers: str = "",
    ttl: int = 300,
    users: str = "",
    transports: str = "",
    plugin: str = "octodns_powerdns.PowerDnsProvider",
) -> str:
    servers = servers or _ONE_SERVER.format(zone=zone)
    return (
        f"version: 1\ndomain: {zone}\n{transports}servers:\n{servers}{users}"
        f"dns:\n  provider: octodns\n  ttl: {ttl}\n  octodns:\n    class: {plugin}\n"
        f"    host: 127.0.0.1\n    port: {port}\n    api_key: env/{PDNS_KEY_ENV}\n"
    )


def route53_spec(zone: str, servers: str = "", ttl: int = 300) -> str:
    servers = servers or _ONE_SERVER.format(zone=zone)
    return (
        f"version: 1\ndomain: {zone}\nservers:\n{servers}"
        f"dns:\n  provider: octodns\n  ttl: {ttl}\n"
        "  octodns:\n    class: octodns_route53.Route53Provider\n"
        "    access_key_id: env/SIPCTL_TEST_AWS_KEY_ID\n"
        "    secret_access_key: env/SIPCTL_TEST_AWS_SECRET\n"
    )


TEST_PLUGINS = ("octodns_test_plugins.PowerDnsSrvOnly", "octodns_test_plugins.PowerDnsPerRecord")


def allow_test_plugins(directory: Path, port: int) -> Path:
    """A runner profile that allows the tests' own plugin classes (tests/octodns_test_plugins,
    not an installed distribution: only a runner profile can allow them) and lets the
    PowerDNS key go to them at 127.0.0.1:``port``. Set SIPCTL_PROFILE to it."""
    path = directory / "runner-profile.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "octodns_classes": list(TEST_PLUGINS),
                "credentials": {
                    PDNS_KEY_ENV: {
                        "kind": "api_key",
                        "to": [f"127.0.0.1:{port}"],
                        "classes": list(TEST_PLUGINS),
                    }
                },
            }
        )
    )
    return path


def write(tmp_path: Path, text: str, name: str = "sipctl.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def sipctl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``sipctl ARGS`` in this process: its exit code and all it printed."""
    code = run(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err
