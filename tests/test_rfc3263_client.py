"""A caller that knows only ``sip:director@<domain>`` finds the PBX through the records sipctl
published, as RFC 3263 says, and the director's phone rings.

sipctl's own ``verify`` resolves NAPTR -> SRV -> A/AAAA too, but it is ours; here the resolver
is a real SIP client's: Debian's baresip (libre), asked to use the test BIND. The PBX listens
on a high port and at a name that only sipctl's records give (``pbx.<zone>``): the caller can
reach it only by the NAPTR's service, the SRV's port and target, and the target's A. The call
is a stranger's (no account at the PBX), so it lands in the guest dialplan.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from asterisk_helpers import Phone, apply_spec, spec_data, write_spec
from fixtures.asterisk import AsteriskInstance
from fixtures.baresip import CONFIG
from fixtures.bind import SECRET_ENV, BindServer, bind_env
from fixtures.common import require, run_sipctl
from fixtures.waiting import wait_until

pytestmark = pytest.mark.asterisk


@pytest.fixture(params=[("udp", "tcp"), ("tcp",), ("udp",)], ids="+".join)
def published(
    request: pytest.FixtureRequest, asterisk: AsteriskInstance, bind: BindServer, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    """A zone on the test BIND holding only what sipctl published for a spec whose one
    server is ``pbx.<zone>`` at 127.0.0.1 (the PBX's transports: the param), and the PBX
    applied from the same spec."""
    zone = bind.new_zone(extra="")
    data = spec_data(asterisk)
    data["transports"] = {name: data["transports"][name] for name in request.param}
    data["domain"] = zone
    data["servers"] = [{"host": f"pbx.{zone}", "ipv4": ["127.0.0.1"], "priority": 10}]
    data["dns"] = {
        "provider": "rfc2136",
        "server": bind.server,
        "tsig": {"name": bind.key_name, "algorithm": bind.algorithm, "secret_env": SECRET_ENV},
    }
    spec = write_spec(tmp_path, data)
    applied = run_sipctl(
        "apply",
        "-f",
        str(spec),
        "--target",
        "dns",
        "--auto-approve",
        "--no-verify",
        env=bind_env(bind),
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    apply_spec(spec)
    try:
        yield zone, spec
    finally:
        bind.delete_zone(zone)


@contextlib.contextmanager
def baresip_dialing(bind: BindServer, target: str) -> Iterator[list[str]]:
    """baresip, with no account at the PBX, dials ``target`` at start, resolving with the test
    BIND; the lines it printed are there once the block ends (it is stopped by its pid)."""
    require(shutil.which("baresip") is not None, "baresip (Debian package baresip-core)")
    folder = Path(tempfile.mkdtemp(prefix="sipctl-baresip-"))
    lines: list[str] = []
    try:
        (folder / "config").write_text(CONFIG + f"dns_server\t\t{bind.server}\n")
        (folder / "accounts").write_text("<sip:stranger@127.0.0.1>;regint=0\n")
        proc = subprocess.Popen(
            ["baresip", "-v", "-f", str(folder), "-e", f"/dial {target}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            yield lines
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                out, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            lines.extend(out.decode(errors="replace").splitlines())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_stranger_dials_the_name_and_reaches_the_directors_phone(
    asterisk: AsteriskInstance, bind: BindServer, published: tuple[str, Path]
) -> None:
    zone, _ = published
    phone = Phone(asterisk.phone_port, answer=486)
    try:
        offset = asterisk.log_size()
        with baresip_dialing(bind, f"sip:director@{zone}") as lines:
            wait_until(lambda: bool(phone.invites), "the director's phone got the call")
    finally:
        phone.close()
    # baresip reached the PBX at the SRV's port (nothing listens on 5060 for it)
    said = "\n".join(lines)
    assert f"sip:director@{zone}" in said, said
    text = asterisk.wait_log(r"Good call IP=127\.0\.0\.1", offset)
    assert "Ext. director: Good call" in text, text
