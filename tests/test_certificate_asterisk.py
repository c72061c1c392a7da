"""The certificate layer on the real Asterisk 22: SIPS and WSS serve the renewed certificate
without a restart (PJSIP restarts a TLS transport on reload when its files changed in place;
``module reload http`` reloads the HTTPS server's).

pebble validates the DNS-01 challenges against the test BIND; sipctl manages the transports
(a TLS transport on a free port). The chroot sees the host's paths of its own files through
a link (see ``host_paths_inside``), so the spec's paths are valid on both sides.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.asterisk import AsteriskInstance, host_paths_inside
from fixtures.bind import BindServer, bind_env
from fixtures.common import free_port, run_sipctl
from fixtures.pebble import PebbleServer, self_signed

from sipctl.providers.certificate.pem import leaf_der, read_certificate, read_der_certificate
from sipctl.providers.certificate.served import fetch_served
from sipctl.reconciler.verify.run import run_verify
from sipctl.schemas.loader import load_spec

pytestmark = [pytest.mark.asterisk, pytest.mark.bind]


@pytest.fixture(scope="module")
def pbx(asterisk: AsteriskInstance) -> Iterator[AsteriskInstance]:
    host_paths_inside(asterisk)
    keys = asterisk.config_dir / "keys"
    keys.mkdir(exist_ok=True)
    # as Debian has it: Asterisk's own directory, so a new key is readable by its group
    subprocess.run(["chroot", str(asterisk.root), "chown", "asterisk:", "/etc/asterisk/keys"],
                   check=True)  # fmt: skip
    yield asterisk


@pytest.fixture
def zone(bind: BindServer) -> Iterator[str]:
    name = bind.new_zone()
    yield name
    bind.delete_zone(name)


def sipctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_sipctl(*args, env=env, timeout=180)


def test_sips_and_wss_serve_the_renewed_certificate_without_a_restart(
    bind: BindServer, zone: str, pebble: PebbleServer, pbx: AsteriskInstance, tmp_path: Path
) -> None:
    sip_port, tls_port = free_port(), free_port()
    cert_file = pbx.config_dir / "keys" / "asterisk.pem"
    key_file = pbx.config_dir / "keys" / "asterisk.key"
    page_dir = tmp_path / "www"
    page_dir.mkdir()

    def spec(renew_days: int) -> str:
        pbx.use()
        return (
            f"version: 1\ndomain: {zone}\n"
            f"transports: {{udp: {{port: {sip_port}}}, tcp: {{port: {sip_port}}}, "
            f"tls: {{port: {tls_port}}}, wss: {{port: {pbx.wss_port}}}}}\n"
            f"servers: [{{host: pbx.{zone}, ipv4: [127.0.0.1]}}]\n"
            "users: {director: 105}\n"
            f"webrtc: {{page: {{names: [director]}}, publish: 'local:{page_dir}'}}\n"
            f"dns:\n  provider: rfc2136\n  server: '{bind.server}'\n"
            f"  tsig: {{name: {bind.key_name}, secret_env: SIPCTL_TSIG_SECRET}}\n"
            f"asterisk:\n  config_dir: {pbx.config_dir}\n"
            "  manage_transports: true\n"
            f"  tls:\n    cert_file: {cert_file}\n    key_file: {key_file}\n"
            f"    acme: {{directory: '{pebble.directory}', renew_days: {renew_days}, "
            f"ca_file: '{pebble.ca_file}'}}\n"
        )

    path = tmp_path / "sipctl.yaml"
    path.write_text(spec(5))
    env = bind_env(bind)
    first = sipctl("apply", "-f", str(path), "--auto-approve", "--no-verify", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    # The certificate came first (phase before Asterisk), then the TLS transport started.
    assert f"nothing serves SIPS on 127.0.0.1 port {tls_port} yet" in first.stderr
    assert f"nothing serves WSS on 127.0.0.1 port {pbx.wss_port} yet" in first.stderr
    served = fetch_served("127.0.0.1", tls_port, zone)
    assert served.der == leaf_der(cert_file.read_bytes()), served.problem
    wss = fetch_served("127.0.0.1", pbx.wss_port, f"pbx.{zone}")
    assert wss.der == served.der, wss.problem
    pid = pbx.pid
    old_serial = read_der_certificate(served.der).serial

    path.write_text(spec(30))
    renewed = sipctl("apply", "-f", str(path), "--auto-approve", "--no-verify", env=env)
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    print(renewed.stdout, renewed.stderr, sep="\n")  # the test log
    assert "module reload res_pjsip.so" in renewed.stderr
    assert "module reload http" in renewed.stderr
    assert f"SIPS on 127.0.0.1 port {tls_port} serves the new certificate" in renewed.stderr
    assert f"WSS on 127.0.0.1 port {pbx.wss_port} serves the new certificate" in renewed.stderr
    now = fetch_served("127.0.0.1", tls_port, zone)
    assert now.der is not None and now.der == leaf_der(cert_file.read_bytes())
    assert fetch_served("127.0.0.1", pbx.wss_port, f"pbx.{zone}").der == now.der
    assert read_der_certificate(now.der).serial != old_serial
    assert read_certificate(cert_file.read_bytes()).serial != old_serial
    assert pbx.pid == pid and Path(f"/proc/{pid}").exists()  # no restart

    path.write_text(spec(5))  # pebble's certificates live 10 days: nothing due at 5
    again = sipctl("plan", "-f", str(path), "--detailed-exitcode", env=env)
    assert again.returncode == 0, again.stdout + again.stderr

    # drift: every layer (DNS, asterisk, certificate, the page) is recorded by the apply,
    # so right after it nothing drifted; a hand edit of each is named.
    recorded = sipctl("apply", "-f", str(path), "--auto-approve", "--no-verify", env=env)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    clean = sipctl("drift", "-f", str(path), env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "No drift." in clean.stdout and "drift cannot be told" not in clean.stdout
    assert "# certificate at" in clean.stdout and "# webrtc at" in clean.stdout
    page = next(page_dir.rglob("*.html"))
    page_text, pem = page.read_text(), cert_file.read_bytes()
    page.write_text(page_text.replace("</body>", "<script>/* by hand */</script></body>"))
    cert_file.write_bytes(self_signed([zone])[0])
    try:
        drifted = sipctl("drift", "-f", str(path), "--json", env=env)
    finally:
        page.write_text(page_text)
        cert_file.write_bytes(pem)
    assert drifted.returncode == 2, drifted.stdout + drifted.stderr
    report = json.loads(drifted.stdout)["domains"][0]["drift"]
    layers = {t["layer"]: [d["how"] for d in t["drift"]] for t in report["targets"]}
    assert layers["certificate"] == ["changed"] and layers["webrtc"] == ["changed"], layers
    assert layers["asterisk"] == [] and layers["dns"] == [], layers

    # verify: the served certificate is the file's and carries the names ...
    loaded = load_spec(path)
    report = run_verify(loaded, bind.server, 5.0, ssl_context=untrusting())
    assert [c for c in report.defect_codes() if c.startswith("certificate")] == [], report.to_text()
    # ... and a file Asterisk has not loaded is named, with the serials.
    renewed_pem = cert_file.read_bytes()
    by_hand, _key = self_signed([zone])
    cert_file.write_bytes(by_hand)
    try:
        stale = run_verify(loaded, bind.server, 5.0, ssl_context=untrusting())
    finally:
        cert_file.write_bytes(renewed_pem)
    codes = stale.defect_codes()
    assert codes.count("certificate-not-live") == 2, stale.to_text()  # SIPS and WSS
    assert "certificate-name-missing" not in codes  # the served one is still right
    message = next(d.message for d in stale.defects if d.code == "certificate-not-live")
    assert read_der_certificate(now.der).serial in message


def untrusting() -> ssl.SSLContext:
    """TLS without trust: the probes reach pebble's certificates; verify compares them."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
