"""Many zones on one real BIND in one plan: a domain whose read fails (a refused query, a key
the server does not know, a wrong secret, a zone the server does not serve, a server that
never answers) fails alone, with its own reason, and the domains read before and after it
on the same worker read exactly as they would alone; one worker or two plan the same."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.bind import SECRET_ENV, BindServer, bind_env, dns_spec

from sipctl.cli import run

GOOD = 8


@pytest.fixture
def silent_port() -> Iterator[int]:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        yield silent.getsockname()[1]


def _broken_specs(
    bind: BindServer, silent_port: int, zones: list[str]
) -> dict[str, tuple[str, str]]:
    """Spec text of each kind of failing read (each its own domain), and words its error
    must hold. The zones it adds to ``bind`` are appended to ``zones``."""

    def spec(zone: str) -> str:
        return dns_spec(bind, zone)

    def new_zone() -> str:
        zones.append(bind.new_zone())
        return zones[-1]

    outside = "x.not-served.test"
    not_served = spec(outside).replace(
        "provider: rfc2136", "provider: rfc2136\n  zone: not-served.test"
    )
    silent = spec("silent.test").replace(bind.server, f"127.0.0.1:{silent_port}")
    return {
        "refused": (not_served, "refused to answer"),
        "unknown-key": (
            spec(new_zone()).replace(f"name: {bind.key_name}", "name: nobody-knows"),
            "BADKEY",
        ),
        "wrong-secret": (
            spec(new_zone()).replace(f"secret_env: {SECRET_ENV}", "secret_env: OTHER"),
            "BADSIG",
        ),
        "no-zone": (spec(f"sub.{new_zone()}"), "does not serve that zone"),
        "silent": (silent.replace("timeout: 3", "timeout: 0.5"), "did not answer"),
    }


def _plan(specs: Path, parallel: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run(["plan", "-f", str(specs), "--json", "--parallel", parallel])
    out, err = capsys.readouterr()
    assert out, err
    data = json.loads(out)
    for domain in data["domains"]:
        if domain["plan"] is not None:
            del domain["plan"]["created_at"]
    return code, json.dumps(data, sort_keys=True)


def test_a_failing_read_fails_only_its_own_domain(
    bind: BindServer,
    tmp_path: Path,
    silent_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(SECRET_ENV, bind_env(bind)[SECRET_ENV])
    monkeypatch.setenv("OTHER", bind.read_secret)
    specs = tmp_path / "specs"
    specs.mkdir()
    zones = [bind.new_zone() for _ in range(GOOD)]
    for n, zone in enumerate(zones):
        (specs / f"d{2 * n:02d}.yaml").write_text(dns_spec(bind, zone))
    assert run(["apply", "-f", str(specs), "--auto-approve", "--no-verify"]) == 0
    capsys.readouterr()
    # the failing ones between the good ones, so that each worker reads good after bad
    broken = _broken_specs(bind, silent_port, zones)
    for n, (kind, (text, _)) in enumerate(broken.items()):
        (specs / f"d{2 * n + 1:02d}-{kind}.yaml").write_text(text)

    code, serial = _plan(specs, "1", capsys)
    assert code == 1
    assert _plan(specs, "2", capsys) == (code, serial), "two workers planned otherwise"
    domains = {Path(d["spec"]).name: d for d in json.loads(serial)["domains"]}
    for n in range(GOOD):
        assert domains[f"d{2 * n:02d}.yaml"]["status"] == "no changes"
    for n, (kind, (_, words)) in enumerate(broken.items()):
        failed = domains[f"d{2 * n + 1:02d}-{kind}.yaml"]
        assert failed["status"] == "error" and words in failed["error"], (kind, failed)
    assert bind.read_secret not in serial and bind.secret not in serial
    for zone in zones:
        bind.delete_zone(zone)
