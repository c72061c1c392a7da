"""sipctl fleet over a hosting directory, against Temporal's real dev server and a real BIND:
the repository's example hoster (host pbx1 with alpha and beta, host pbx2 with gamma, on
``dir:`` PBXs, their zone files beside them, all by relative paths) and a third customer of
pbx1 whose records are on BIND. Each host file with its customers is one workflow
(``hosting:`` and the host's domain); it converges to exactly what ``sipctl plan -f DIR``
then finds nothing to change in, follows a changed customer file, and plans a departed
customer's removal, which waits for ``fleet approve``. No secret reaches a history.

The fleet commands run as processes of their own (see test_fleet.py).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fixtures.bind import BindServer, bind_env
from fixtures.hosting import bind_customer, copy_example, rfc2136_customer
from fixtures.state_dir import child_env
from fixtures.temporal import FleetWorker, TemporalDevServer
from test_fleet import _histories, fleet, statuses, wait_for

pytestmark = [pytest.mark.bind, pytest.mark.slow]

CONFIG = "apply: {heartbeat: 2s, attempts: 3, lock_ttl: 4s, lock_wait: 10s}\n"
PBX1 = "hosting:pbx1.hoster.example"
PBX2 = "hosting:pbx2.hoster.example"


class Hoster:
    """The example hoster's directory, a worker serving its queues, and the fleet's calls."""

    def __init__(self, server: TemporalDevServer, bind: BindServer, root: Path) -> None:
        self.server, self.bind, self.root = server, bind, root
        self.dir = copy_example(root / "hoster")
        self.zone = bind.new_zone()
        host_file = self.dir / "pbx1.yaml"
        bind_customer(host_file, self.zone, "delta-phones")
        (self.dir / f"{self.zone}.yaml").write_text(
            rfc2136_customer(bind, self.zone, "delta-phones")
        )
        self.env = {**child_env(bind_env(bind)), "SIPCTL_LOCK_WHO": "fleet-hosting"}
        self.config = root / "fleet.yaml"
        self.config.write_text(CONFIG)
        self.log = root / "worker.log"
        state = self.dir / "state"
        queues = [f"pbx:dir:{(state / h).resolve()}" for h in ("pbx1", "pbx2")]
        self.worker = FleetWorker(
            server, [*queues, "dns:zonefile", "dns:rfc2136"], self.config, self.env, self.log
        ).start()

    def fleet(self, *args: str) -> subprocess.CompletedProcess[str]:
        return fleet(self.server, self.env, *args)

    def sync(self, *paths: Path) -> str:
        """Sync ``paths`` (default: the directory); the time before it, to wait on."""
        since = datetime.now(UTC).isoformat(timespec="milliseconds")
        args = ["sync", "--config", str(self.config)]
        for path in paths or (self.dir,):
            args += ["-f", str(path)]
        result = self.fleet(*args)
        assert result.returncode == 0, result.stdout + result.stderr
        return since

    def state(self, unit: str) -> dict[str, Any]:
        return statuses(self.server, self.env)[unit]

    def converged(self, since: str, *units: str) -> None:
        def done() -> bool:
            found = statuses(self.server, self.env)
            return all(
                u in found and found[u]["state"] == "converged" and found[u]["last_check"] > since
                for u in units
            )

        wait_for(f"{', '.join(units)} converged", done, 90, self.why)

    def why(self) -> str:
        found = statuses(self.server, self.env)
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        return json.dumps(found, indent=1) + "\n" + tail

    def cli_plan(self) -> subprocess.CompletedProcess[str]:
        """'sipctl plan -f DIR --detailed-exitcode' of the hoster's directory (exit 0: what
        the fleet applied is what the CLI would)."""
        return subprocess.run(
            [sys.executable, "-m", "sipctl", "plan", "-f", str(self.dir), "--detailed-exitcode"],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
            cwd=self.root,
        )


@pytest.fixture(scope="module")
def hoster(bind: BindServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hoster]:
    # a server of its own: the session's counts test_fleet.py's domains, which these
    # units would join
    server = TemporalDevServer(tmp_path_factory.mktemp("temporal"))
    server.start()
    try:
        setup = Hoster(server, bind, tmp_path_factory.mktemp("fleet-hosting"))
        try:
            yield setup
        finally:
            setup.worker.stop()
            bind.delete_zone(setup.zone)
    finally:
        server.stop()


def test_a_hosting_directory_is_one_workflow_per_host_and_converges_as_the_cli_would(
    hoster: Hoster,
) -> None:
    result = hoster.fleet("sync", "--config", str(hoster.config), "-f", str(hoster.dir))
    assert result.returncode == 0, result.stdout + result.stderr
    since = datetime.min.replace(tzinfo=UTC).isoformat()
    assert f"{PBX1}: spec " in result.stdout and "(3 customer(s))" in result.stdout
    assert f"{PBX2}: spec " in result.stdout and "(1 customer(s))" in result.stdout
    assert "Synced 0 domain(s), 2 hosting unit(s)" in result.stderr
    hoster.converged(since, PBX1, PBX2)
    found = hoster.state(PBX1)
    assert found["customers"] == sorted(["alpha.example", "beta.example", hoster.zone])
    assert found["source"] == str(hoster.dir.resolve())
    # one step per queue, its files in order: the host's first, then its customers' records
    pbx1 = f"pbx:dir:{(hoster.dir / 'state' / 'pbx1').resolve()}"
    assert found["queues"] == [pbx1, "dns:zonefile", "dns:rfc2136"], found
    # relative paths are the sender's directory's: the zone files and PBXs are there
    state = hoster.dir / "state"
    assert "_sip._udp" in (state / "alpha.example.zone").read_text()
    assert (state / "gamma.example.zone").exists()
    assert hoster.bind.query(f"_sip._udp.{hoster.zone}", "SRV")
    dialplan = "".join(p.read_text() for p in (state / "pbx1").rglob("*.conf"))
    assert "alphaexample" in dialplan.replace(".", "").replace("-", "")
    # the CLI finds nothing to change: the fleet applied the directory as 'apply -f DIR'
    planned = hoster.cli_plan()
    assert planned.returncode == 0, planned.stdout + planned.stderr
    table = hoster.fleet("status").stdout
    line = next(line for line in table.splitlines() if line.startswith(PBX1))
    assert "converged" in line and "3 customer(s): alpha.example, beta.example" in line, table
    document = json.loads(hoster.fleet("status", "--json").stdout)
    from sipctl.schemas.outputs import output_text

    jsonschema.validate(document, json.loads(output_text("fleet-status")))


def test_a_changed_customer_file_is_applied_and_a_departed_one_waits_for_approval(
    hoster: Hoster,
) -> None:
    since = hoster.sync()
    hoster.converged(since, PBX1, PBX2)
    pbx1 = f"pbx:dir:{(hoster.dir / 'state' / 'pbx1').resolve()}"
    beta = hoster.dir / "beta.example.yaml"
    beta.write_text(beta.read_text().replace("  support: 110\n", "  support: 110\n  desk: 111\n"))
    since = hoster.sync()
    hoster.converged(since, PBX1)
    assert hoster.cli_plan().returncode == 0
    # a new name is the host's dialplan's (its file's plan); the customers' records stay
    summary = hoster.state(PBX1)["plan_summary"]
    assert f"{pbx1}: pbx1.yaml: Plan: 1 to add" in summary, summary
    assert "dns:zonefile: Plan: 0 to add, 0 to change, 0 to destroy. (2 file(s))" in summary
    dialplan = "".join(p.read_text() for p in (hoster.dir / "state" / "pbx1").rglob("*.conf"))
    assert "desk" in dialplan

    zone_file = hoster.dir / "state" / "alpha.example.zone"
    assert "NAPTR" in zone_file.read_text()
    (hoster.dir / "alpha.example.yaml").unlink()
    hoster.sync()

    def waiting() -> bool:
        return hoster.state(PBX1)["state"] == "waiting for approval"

    wait_for("the departure waits for approval", waiting, 90, hoster.why)
    found = hoster.state(PBX1)
    assert "limit" in " ".join(found["refusals"]), found
    assert all(r.startswith("pbx1.yaml: ") for r in found["refusals"]), found
    assert "alpha.example" not in found["customers"]
    assert "NAPTR" in zone_file.read_text()  # nothing removed before the approval
    assert f"sipctl fleet approve {PBX1}" in hoster.fleet("status").stdout
    since = datetime.now(UTC).isoformat(timespec="milliseconds")
    result = hoster.fleet("approve", PBX1)
    assert result.returncode == 0, result.stderr
    wait_for(
        "the approved departure applied",
        lambda: (
            hoster.state(PBX1)["state"] == "converged" and hoster.state(PBX1)["last_apply"] > since
        ),
        90,
        hoster.why,
    )
    assert "NAPTR" not in zone_file.read_text()
    dialplan = "".join(p.read_text() for p in (hoster.dir / "state" / "pbx1").rglob("*.conf"))
    assert "alphaexample" not in dialplan.replace(".", "").replace("-", "")
    assert hoster.cli_plan().returncode == 0

    # the workers' TSIG secret never entered a history (delta's records were written with it)
    text = asyncio.run(_histories(hoster.server, [PBX1, PBX2]))
    assert hoster.bind.secret not in text
    copies = re.findall(r".{60}sipctl-fleet-\d.{60}", text)
    assert not copies, copies  # the plans and messages name the sender's files


@pytest.mark.parametrize("part", ["pbx1.yaml", "alpha.example.yaml"])
def test_fleet_sync_refuses_part_of_a_hosting_directory(tmp_path: Path, part: str) -> None:
    """A host's file synced without its customers would plan the removal of every one of
    them; a customer's file without its host has no servers to point at: refused before
    sync reaches Temporal, naming the files left out and the command that syncs them."""
    directory = copy_example(tmp_path / "hoster")
    command = [sys.executable, "-m", "sipctl", "fleet", "sync", "-f", str(directory / part)]
    result = subprocess.run(
        [*command, "--address", "127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env({"PATH": "/usr/bin:/bin"}),
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    assert "the fleet reconciles a hosting directory whole" in result.stderr, result.stderr
    assert f"sipctl fleet sync -f {directory.resolve()}" in result.stderr, result.stderr
    assert "cannot reach Temporal" not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
