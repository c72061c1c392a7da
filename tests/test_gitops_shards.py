"""``--shard I/N``: four CI jobs at once over one directory of 40 specs, against the real BIND
and two PBX hosts (``dir:`` roots). Each domain is applied by exactly one job, a host's
domains stay in one job, and a second round of the four jobs changes nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.bind import SECRET_ENV, BindServer, dns_spec

from sipctl.errors import SpecError
from sipctl.reconciler.gitops.multi import Domain
from sipctl.reconciler.gitops.shards import parse_shard, shard_key, take_shard

pytestmark = [pytest.mark.bind, pytest.mark.slow]

SHARDS = 4
FIREWALL = "firewall: {{target: 'dir:../{host}', backend: iptables, persist: /etc/iptables.up}}\n"


@pytest.fixture
def fleet(bind: BindServer, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """40 specs: 10 with their firewall on host a, 10 on host b, 20 DNS-only."""
    specs = tmp_path / "specs"
    specs.mkdir()
    hosts: dict[str, str] = {}
    for n in range(40):
        zone = bind.new_zone(f"shard{n:02d}-{os.getpid()}.test")
        host = "a" if n < 10 else "b" if n < 20 else ""
        tail = FIREWALL.format(host=f"host-{host}") if host else ""
        (specs / f"s{n:02d}.yaml").write_text(dns_spec(bind, zone, tail=tail))
        hosts[zone] = host
    return specs, hosts


def run_shards(specs: Path, secret: str) -> list[str]:
    """The four jobs at once, as a CI matrix runs them; their outputs."""
    env = {**os.environ, SECRET_ENV: secret}
    jobs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sipctl",
                "apply",
                "-f",
                str(specs),
                "--shard",
                f"{i}/{SHARDS}",
                "--auto-approve",
                "--no-verify",
                "--lock-timeout",
                "60s",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for i in range(1, SHARDS + 1)
    ]
    outputs = []
    for job in jobs:
        out, _ = job.communicate(timeout=240)
        assert job.returncode == 0, out[-3000:]
        outputs.append(out)
    return outputs


def results(output: str) -> dict[str, str]:
    """domain -> status, from a job's summary table."""
    return dict(re.findall(r"^(shard\d\d-\d+\.test)\s+\S+\s+(applied|no changes)\b", output, re.M))


def test_four_jobs_apply_every_domain_once_and_then_nothing(
    bind: BindServer, fleet: tuple[Path, dict[str, str]]
) -> None:
    specs, hosts = fleet
    first = [results(out) for out in run_shards(specs, bind.secret)]
    applied = [domain for job in first for domain, status in job.items() if status == "applied"]
    assert sorted(applied) == sorted(hosts), "every domain applied, and only once"
    for host in ("a", "b"):
        jobs = {i for i, job in enumerate(first) for d in job if hosts[d] == host}
        assert len(jobs) == 1, f"host {host}'s domains were split over jobs {jobs}"
    for zone in hosts:
        assert bind.query(f"_sip._udp.{zone}", "SRV"), f"{zone} has no SRV"

    second = [results(out) for out in run_shards(specs, bind.secret)]
    statuses = [status for job in second for status in job.values()]
    assert len(statuses) == 40 and set(statuses) == {"no changes"}


def test_a_shard_is_stable_and_names_its_form() -> None:
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "2", "a/b", "2/0"):
        with pytest.raises(SpecError, match="I/N"):
            parse_shard(bad)
    domains = [Domain(Path(f"s{n}.yaml")) for n in range(100)]
    shares = [take_shard(domains, f"{i}/4") for i in range(1, 5)]
    assert sorted(d.path.name for share in shares for d in share) == sorted(
        d.path.name for d in domains
    )
    assert all(shares), "100 specs over 4 shares leave none empty"
    assert shard_key(domains[0]) == "spec:s0.yaml"
