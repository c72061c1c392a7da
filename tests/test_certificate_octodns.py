"""ACME DNS-01 through the octodns provider: pebble validates against a real PowerDNS whose
zone sipctl writes only through octodns_powerdns (the same ChallengeWriter interface)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fixtures.pebble import running_pebble
from fixtures.powerdns import PowerDnsServer
from octodns_specs import PDNS_KEY_ENV as KEY_ENV

from sipctl.providers.certificate.pem import key_matches, read_certificate

CERT = "/etc/asterisk/keys/asterisk.pem"
KEY = "/etc/asterisk/keys/asterisk.key"


def test_obtain_through_octodns_and_powerdns(
    powerdns: PowerDnsServer, powerdns_zone: str, tmp_path: Path
) -> None:
    zone = powerdns_zone
    pebble = running_pebble(powerdns.nameserver)
    try:
        root = tmp_path / "pbx"
        spec = tmp_path / "sipctl.yaml"
        spec.write_text(
            f"version: 1\ndomain: {zone}\n"
            "transports: {udp: {port: 5060}, tls: {port: 5061}}\n"
            f"servers: [{{host: sip.{zone}, ipv4: [192.0.2.10]}}]\n"
            "dns:\n  provider: octodns\n  ttl: 300\n"
            "  octodns:\n    class: octodns_powerdns.PowerDnsProvider\n"
            f"    host: 127.0.0.1\n    port: {powerdns.api_port}\n    api_key: env/{KEY_ENV}\n"
            f"asterisk:\n  target: dir:{root}\n  tls:\n    cert_file: {CERT}\n"
            f"    key_file: {KEY}\n"
            f"    acme: {{directory: '{pebble.directory}', ca_file: '{pebble.ca_file}'}}\n"
        )
        env = {**os.environ, KEY_ENV: powerdns.api_key, "NO_COLOR": "1"}
        result = subprocess.run(
            [sys.executable, "-m", "sipctl", "apply", "-f", str(spec), "--auto-approve",
             "--no-verify"],
            capture_output=True, text=True, env=env, timeout=180, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        cert = read_certificate((root / CERT.lstrip("/")).read_bytes())
        assert sorted(cert.names) == sorted([zone, f"sip.{zone}"])
        assert key_matches((root / KEY.lstrip("/")).read_bytes(), cert)
        left = [key for key in powerdns.rrsets(zone) if key[0].startswith("_acme-challenge.")]
        assert left == []
        assert powerdns.api_key not in result.stdout + result.stderr
    finally:
        pebble.stop()
