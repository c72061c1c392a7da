"""sipctl fleet against Temporal's real dev server, a real BIND and two PBX hosts (``dir:``):
200 domains converge through two worker processes, one of which is killed with SIGKILL in
the middle and restarted; a hand edit is found by the drift sweep and repaired (or only
reported); a plan refused by the safety limit waits until approved; no secret reaches a
workflow's history.

The fleet commands end their process without the interpreter's teardown (see
``cli_fleet``), so they run here as processes of their own, never in-process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fixtures.bind import SECRET_ENV, BindServer, bind_env, dns_spec
from fixtures.state_dir import child_env
from fixtures.temporal import FleetWorker, TemporalDevServer

from sipctl.cli import run

pytestmark = [pytest.mark.bind, pytest.mark.slow]

DOMAINS = 200
CONFIG = """\
drift: {every: 1h, repair: %s}
apply: {heartbeat: 2s, attempts: 20, lock_ttl: 4s, lock_wait: 30s}
rate_limits: {"dns:rfc2136": 200}
"""


def host_spec(bind: BindServer, zone: str, root: Path) -> str:
    """A whole PBX of one company on a ``dir:`` host, its DNS on BIND."""
    return dns_spec(
        bind,
        zone,
        transports="{udp: {port: 5060}, tcp: {port: 5060}}",
        tail=(
            f"asterisk:\n  target: 'dir:{root}'\n  config_dir: /etc/asterisk\n"
            f"firewall:\n  target: 'dir:{root}'\n  backend: iptables\n  ssh_port: 22\n"
            "  persist: /etc/iptables.up\n"
            f"fail2ban:\n  target: 'dir:{root}'\n"
        ),
    )


def fleet(
    server: TemporalDevServer, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sipctl", "fleet", *args, "--address", server.address],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def statuses(server: TemporalDevServer, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    result = fleet(server, env, "status", "--json")
    assert result.returncode in (0, 1), result.stderr
    return {item["domain"]: item for item in json.loads(result.stdout)["domains"]}


def wait_for(
    what: str, check: Callable[[], bool], timeout: float, why: Callable[[], str] = lambda: ""
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    pytest.fail(f"{what} within {timeout} s; {why()}")


class Fleet:
    """A fleet of specs in one directory, two PBX hosts, and the workers serving them."""

    def __init__(self, server: TemporalDevServer, bind: BindServer, root: Path) -> None:
        self.server, self.bind, self.root = server, bind, root
        self.specs = root / "specs"
        self.specs.mkdir()
        self.env = {**bind_env(bind), "SIPCTL_LOCK_WHO": "fleet-test"}
        self.hosts = [root / "pbx-a", root / "pbx-b"]
        self.workers: list[FleetWorker] = []
        self.config = self.write_config(repair=False)

    def write_config(self, repair: bool, name: str = "fleet.yaml") -> Path:
        path = self.root / name
        path.write_text(CONFIG % ("true" if repair else "false"))
        return path

    def queues(self) -> list[str]:
        return [f"pbx:dir:{host.resolve()}" for host in self.hosts] + ["dns:rfc2136"]

    def worker(self, number: int) -> FleetWorker:
        log = self.root / f"worker-{number}.log"
        return FleetWorker(self.server, self.queues(), self.config, self.env, log).start()

    def sync(self, *paths: Path, config: Path | None = None) -> None:
        args = ["sync", "--config", str(config or self.config)]
        for path in paths or (self.specs,):
            args += ["-f", str(path)]
        result = fleet(self.server, self.env, *args)
        assert result.returncode == 0, result.stdout + result.stderr

    def synced(self, *domains: str) -> None:
        """Sync these domains' specs and wait until each has planned (and applied) them."""
        since = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.sync(*(self.specs / f"{domain}.yaml" for domain in domains))

        def done() -> bool:
            found = statuses(self.server, self.env)
            return all(
                found[d]["state"] == "converged" and found[d]["last_check"] > since for d in domains
            )

        wait_for(f"{', '.join(domains)} synced", done, 60, self.logs)

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            for log in sorted(self.root.glob("worker-*.log"))
        )


@pytest.fixture(scope="module")
def fleet_setup(
    temporal: TemporalDevServer, bind: BindServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    setup = Fleet(temporal, bind, tmp_path_factory.mktemp("fleet"))
    for number, host in enumerate(setup.hosts):
        host.mkdir()
        zone = bind.new_zone()
        (setup.specs / f"host-{number}.yaml").write_text(host_spec(bind, zone, host))
    for _ in range(DOMAINS - len(setup.hosts)):
        zone = bind.new_zone()
        (setup.specs / f"{zone}.yaml").write_text(dns_spec(bind, zone))
    setup.workers = [setup.worker(1), setup.worker(2)]
    yield setup
    for worker in setup.workers:
        worker.stop()


def test_200_domains_converge_through_two_workers_one_killed_mid_apply(
    fleet_setup: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = fleet_setup
    setup.sync()

    def converged() -> int:
        return sum(
            1 for s in statuses(setup.server, setup.env).values() if s["state"] == "converged"
        )

    # Kill one worker while the others are still being applied, as a machine dies.
    wait_for("some domains converged", lambda: converged() >= 30, 180, setup.logs)
    setup.workers[0].kill()
    time.sleep(3)
    setup.workers[0] = setup.worker(3)  # restarted

    found: dict[str, dict[str, Any]] = {}

    def all_converged() -> bool:
        nonlocal found
        found = statuses(setup.server, setup.env)
        return len(found) == DOMAINS and all(s["state"] == "converged" for s in found.values())

    wait_for(
        f"all {DOMAINS} domains converged",
        all_converged,
        400,
        lambda: f"{[s for s in found.values() if s['state'] != 'converged'][:3]}\n{setup.logs()}",
    )
    # Every record is there once and as the spec says: the CLI plans no change anywhere.
    for key, value in setup.env.items():
        monkeypatch.setenv(key, value)
    code = run(["plan", "-f", str(setup.specs), "--detailed-exitcode", "--parallel", "2"])
    assert code == 0
    # The workers' credentials never entered a workflow's history.
    histories = asyncio.run(_histories(setup.server, sorted(found)))
    assert histories
    assert setup.bind.secret not in histories
    assert SECRET_ENV in histories  # the spec names the variable: that is all it holds


async def _histories(server: TemporalDevServer, domains: list[str]) -> str:
    from temporalio.client import Client

    client = await Client.connect(server.address)
    texts = []
    for domain in domains:
        history = await client.get_workflow_handle(domain).fetch_history()
        raw = history.to_json()
        # Payloads are base64 in the history's JSON: read them as the cluster's operators could.
        decoded = [
            base64.b64decode(data).decode("utf-8", "replace")
            for data in re.findall(r'"data": "([A-Za-z0-9+/=]+)"', raw)
        ]
        texts.extend([raw, *decoded])
    return "\n".join(texts)


def _hand_edit(bind: BindServer, zone: str) -> None:
    bind.update(
        zone,
        delete=[("_sip._udp", "SRV")],
        add=[("_sip._udp", 3600, "SRV", "10 0 5060 intruder.example.net.")],
    )


def test_drift_sweep_repairs_a_hand_edit_or_reports_it(fleet_setup: Fleet) -> None:
    setup = fleet_setup
    repairing = setup.write_config(repair=True, name="repair.yaml")
    zones = sorted(p.stem for p in setup.specs.glob("z*.yaml"))[:2]
    repaired, reported = zones
    setup.synced(reported)
    setup.config, default = repairing, setup.config
    setup.synced(repaired)
    setup.config = default
    original = setup.bind.query(f"_sip._udp.{repaired}", "SRV")
    for zone in zones:
        _hand_edit(setup.bind, zone)
    result = fleet(setup.server, setup.env, "schedule", "--config", str(setup.config), "--now")
    assert result.returncode == 0, result.stderr

    def swept() -> bool:
        found = statuses(setup.server, setup.env)
        return (
            setup.bind.query(f"_sip._udp.{repaired}", "SRV") == original
            and found[reported]["state"] == "drifted"
        )

    wait_for("the sweep repaired one domain and reported the other", swept, 120, setup.logs)
    assert "intruder" in " ".join(setup.bind.query(f"_sip._udp.{reported}", "SRV"))


def test_a_refused_plan_waits_until_approved(fleet_setup: Fleet) -> None:
    setup = fleet_setup
    zone = sorted(p.stem for p in setup.specs.glob("z*.yaml"))[-1]
    # Applied as it is first (alone, the test would otherwise edit a spec never applied,
    # whose first apply has nothing to destroy and needs no approval).
    setup.synced(zone)
    spec = setup.specs / f"{zone}.yaml"
    spec.write_text(
        spec.read_text().replace(
            "transports: {udp: {port: 5060}, tcp: {port: 5060}, tls: {port: 5061}}",
            "transports: {udp: {port: 5060}}",
        )
    )
    setup.sync(spec)

    def waiting() -> bool:
        return statuses(setup.server, setup.env)[zone]["state"] == "waiting for approval"

    wait_for("the refused plan waits", waiting, 60, setup.logs)
    status = statuses(setup.server, setup.env)[zone]
    assert "limit" in " ".join(status["refusals"])
    assert setup.bind.query(f"_sips._tcp.{zone}", "SRV")  # nothing applied yet
    text = fleet(setup.server, setup.env, "status").stdout
    assert f"sipctl fleet approve {zone}" in text
    result = fleet(setup.server, setup.env, "approve", zone)
    assert result.returncode == 0, result.stderr
    wait_for(
        "the approved plan applied",
        lambda: statuses(setup.server, setup.env)[zone]["state"] == "converged",
        60,
        setup.logs,
    )
    assert setup.bind.query(f"_sips._tcp.{zone}", "SRV") == []


def test_status_json_matches_its_schema(fleet_setup: Fleet) -> None:
    from sipctl.schemas.outputs import output_text

    result = fleet(fleet_setup.server, fleet_setup.env, "status", "--json")
    schema = json.loads(output_text("fleet-status"))
    jsonschema.validate(json.loads(result.stdout), schema)


def test_fleet_commands_explain_a_missing_server_and_a_wrong_queue(tmp_path: Path) -> None:
    env = child_env({"PATH": "/usr/bin:/bin"})
    result = subprocess.run(
        [sys.executable, "-m", "sipctl", "fleet", "status", "--address", "127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot reach Temporal at 127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "sipctl", "fleet", "worker", "--queue", "pbx", "--address", "x:1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert "expected pbx:HOST" in result.stderr


def test_fleet_sync_refuses_specs_that_claim_one_host_layer_differently(tmp_path: Path) -> None:
    """Two companies' specs on one PBX with different users: 'sipctl plan -f DIR' refuses
    them (one host layer has one owner), but 'fleet sync -f DIR' started both workflows, each
    apply rewrote the other's dialplan, and 'fleet status' called both converged. sync checks
    the specs it is given against each other, as plan does, before it reaches Temporal."""
    specs = tmp_path / "specs"
    specs.mkdir()
    for domain, users in (("a.example", "{alex: 105}"), ("b.example", "{bob: 106}")):
        (specs / f"{domain}.yaml").write_text(
            f"version: 1\ndomain: {domain}\ntransports: {{udp: {{port: 5060}}}}\n"
            f"servers: [{{host: pbx.example.net, ipv4: [192.0.2.10]}}]\nusers: {users}\n"
            f"asterisk:\n  target: 'dir:{tmp_path / 'pbx'}'\n"
        )
    command = [sys.executable, "-m", "sipctl", "fleet", "sync", "-f", str(specs)]
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
    assert "one host layer has one owner" in result.stderr, result.stderr
    assert "b.example.yaml" in result.stderr, result.stderr
    assert "nothing was sent to the fleet" in result.stderr, result.stderr
    assert "cannot reach Temporal" not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_status_says_why_a_step_is_being_retried(
    temporal: TemporalDevServer, tmp_path: Path
) -> None:
    """A worker that cannot do a step (its DNS server refuses, its credential is missing)
    fails it, and Temporal retries it for up to 'attempts' tries: 'fleet status' showed the
    domain 'planning' with no reason all that time, the cause only in the worker's log. It
    shows the try and the last failure."""
    from fixtures.ports import release_ports, reserve_port

    closed = reserve_port()  # reserved and never listened on: every connection is refused
    spec = tmp_path / "retry.example.yaml"
    spec.write_text(
        "version: 1\ndomain: retry.example\ntransports: {udp: {port: 5060}}\n"
        "servers: [{host: pbx.retry.example, ipv4: [192.0.2.10]}]\nusers: {alex: 105}\n"
        f"dns:\n  provider: rfc2136\n  server: '127.0.0.1:{closed}'\n  timeout: 1\n"
        f"  tsig: {{name: k, algorithm: hmac-sha256, secret_env: {SECRET_ENV}}}\n"
    )
    config = tmp_path / "fleet.yaml"
    config.write_text("apply: {heartbeat: 2s, attempts: 20, lock_ttl: 4s, lock_wait: 5s}\n")
    env = child_env({"PATH": "/usr/bin:/bin", SECRET_ENV: base64.b64encode(b"x" * 32).decode()})
    log = tmp_path / "worker.log"
    worker = FleetWorker(temporal, ["dns:rfc2136"], config, env, log).start()
    try:
        result = fleet(temporal, env, "sync", "--config", str(config), "-f", str(spec))
        assert result.returncode == 0, result.stderr

        def retrying() -> bool:
            return "retrying" in statuses(temporal, env)["retry.example"]["reason"]

        wait_for("the retry shown", retrying, 60, log.read_text)
        found = statuses(temporal, env)["retry.example"]
        assert found["state"] == "planning", found
        assert re.search(r"retrying \(try \d+ of 20\): retry\.example: plan: ", found["reason"])
        assert f"127.0.0.1 port {closed}" in found["reason"], found
        table = fleet(temporal, env, "status", "--config", str(config)).stdout
        assert re.search(r"retry\.example +planning .*retrying \(try", table), table
    finally:
        asyncio.run(_terminate(temporal, "retry.example"))
        worker.stop()
        release_ports(closed)


async def _terminate(server: TemporalDevServer, domain: str) -> None:
    from temporalio.client import Client

    client = await Client.connect(server.address)
    await client.get_workflow_handle(domain).terminate("test over")


def test_status_without_any_worker_says_so_at_once(tmp_path: Path) -> None:
    """With no worker running, each domain's query waited 30 s for one, 50 at a time: ten
    minutes of 'fleet status' for a thousand domains, each then 'not answering'. Each
    domain's state is its memo, and one question to the server tells that no worker polls
    the workflows' queue: status says so, and fails (exit 1)."""
    server = TemporalDevServer(tmp_path)  # its own: the session's server has workers
    server.start()
    try:
        specs = tmp_path / "specs"
        specs.mkdir()
        for n in range(3):
            (specs / f"d{n}.yaml").write_text(
                f"version: 1\ndomain: d{n}.example\ntransports: {{udp: {{port: 5060}}}}\n"
                f"servers: [{{host: pbx.d{n}.example, ipv4: [192.0.2.10]}}]\n"
                "users: {alex: 105}\n"
            )
        env = child_env({"PATH": "/usr/bin:/bin"})
        result = fleet(server, env, "sync", "-f", str(specs))
        assert result.returncode == 0, result.stderr
        started = time.monotonic()
        result = fleet(server, env, "status")
        assert time.monotonic() - started < 20, "no query waited for a worker"
        # a cron job must notice a fleet nobody answers for (it exited 0)
        assert result.returncode == 1, result.stderr
        # each workflow has its memo from its start: pending, as the server knows it
        pending = re.findall(r"^d\d\.example +pending +no fleet apply yet$", result.stdout, re.M)
        assert len(pending) == 3, result.stdout
        last = result.stdout.splitlines()[-1]
        assert last.startswith("no worker has polled the fleet's workflow queue"), last
        assert "'sipctl fleet worker'" in last, result.stdout
    finally:
        server.stop()


def test_status_names_the_hosts_record_of_an_apply_the_fleet_did_not_make(
    temporal: TemporalDevServer, tmp_path: Path
) -> None:
    """A domain the CLI applied was shown 'converged ... never applied'. The fleet's plan
    reads the host's record of the last apply with the host's files (one round trip), and
    status says the fleet has not applied it, and when and by whom the host was."""
    root = tmp_path / "pbx"
    root.mkdir()
    spec = tmp_path / "cli.example.yaml"
    spec.write_text(
        "version: 1\ndomain: cli.example\ntransports: {udp: {port: 5060}}\n"
        "servers: [{host: pbx.cli.example, ipv4: [192.0.2.10]}]\nusers: {alex: 105}\n"
        f"asterisk:\n  target: 'dir:{root}'\n  config_dir: /etc/asterisk\n"
    )
    env = child_env({"PATH": "/usr/bin:/bin", "SIPCTL_LOCK_WHO": "cli-user@laptop"})
    applied = subprocess.run(
        [sys.executable, "-m", "sipctl", "apply", "-f", str(spec), "--auto-approve"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    config = tmp_path / "fleet.yaml"
    config.write_text("apply: {heartbeat: 2s, attempts: 3, lock_ttl: 4s, lock_wait: 5s}\n")
    queue = f"pbx:dir:{root.resolve()}"
    worker_env = {**env, "SIPCTL_LOCK_WHO": "fleet-worker"}
    log = tmp_path / "worker.log"
    worker = FleetWorker(temporal, [queue], config, worker_env, log).start()
    try:
        result = fleet(temporal, env, "sync", "--config", str(config), "-f", str(spec))
        assert result.returncode == 0, result.stderr
        wait_for(
            "cli.example planned",
            lambda: statuses(temporal, env)["cli.example"]["state"] == "converged",
            60,
            log.read_text,
        )
        found = statuses(temporal, env)["cli.example"]
        assert found["last_apply"] == "", "the fleet applied nothing"
        assert found["recorded_by"] == "cli-user@laptop", found
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", found["recorded_at"]), found
        table = fleet(temporal, env, "status").stdout
        line = next(t for t in table.splitlines() if t.startswith("cli.example "))
        assert "never applied" not in table
        shown = (
            f"no fleet apply yet (host's record: applied {found['recorded_at']} by cli-user@laptop)"
        )
        assert re.match(rf"cli\.example +converged +{re.escape(shown)}", line), line
    finally:
        asyncio.run(_terminate(temporal, "cli.example"))
        worker.stop()


def test_status_answers_from_the_memo_with_no_worker_running(tmp_path: Path) -> None:
    """'fleet status' asked each domain's workflow through a worker: while the workers were
    busy (200 domains starting) the first status took 30 s and showed domains 'not
    answering' whose state the server knew. Each workflow keeps its status in its memo, and
    status reads the memos from one list of the server's: with every worker stopped, it
    still shows the domain converged, at once. The history that wrote the memo replays."""
    from temporalio.client import Client
    from temporalio.worker import Replayer

    from sipctl.reconciler.fleet.workflows import DomainWorkflow

    server = TemporalDevServer(tmp_path)  # its own: the session's server has workers
    server.start()
    root = tmp_path / "pbx"
    root.mkdir()
    spec = tmp_path / "memo.example.yaml"
    spec.write_text(
        "version: 1\ndomain: memo.example\ntransports: {udp: {port: 5060}}\n"
        "servers: [{host: pbx.memo.example, ipv4: [192.0.2.10]}]\nusers: {alex: 105}\n"
        f"asterisk:\n  target: 'dir:{root}'\n  config_dir: /etc/asterisk\n"
    )
    config = tmp_path / "fleet.yaml"
    config.write_text("apply: {heartbeat: 2s, attempts: 3, lock_ttl: 4s, lock_wait: 5s}\n")
    env = child_env({"PATH": "/usr/bin:/bin", "SIPCTL_LOCK_WHO": "fleet-worker"})
    log = tmp_path / "worker.log"
    worker = FleetWorker(server, [f"pbx:dir:{root.resolve()}"], config, env, log).start()
    try:
        result = fleet(server, env, "sync", "--config", str(config), "-f", str(spec))
        assert result.returncode == 0, result.stderr
        wait_for(
            "memo.example applied",
            # the server's list may trail a workflow just started by a moment (under load,
            # the first status listed none): not there yet is not applied yet
            lambda: statuses(server, env).get("memo.example", {}).get("last_apply", "") != "",
            60,
            log.read_text,
        )
        worker.stop()
        started = time.monotonic()
        result = fleet(server, env, "status", "--json")
        took = time.monotonic() - started
        assert result.returncode == 0, result.stdout + result.stderr
        assert took < 20, f"status waited for a worker: {took:.1f} s"
        found = json.loads(result.stdout)["domains"]
        assert [(s["domain"], s["state"]) for s in found] == [("memo.example", "converged")]
        assert "to add" in found[0]["plan_summary"] and found[0]["last_apply"], found
        table = fleet(server, env, "status").stdout
        assert re.match(r"memo\.example +converged +last fleet apply 20", table), table

        async def replayed() -> tuple[str, Any]:
            client = await Client.connect(server.address)
            history = await client.get_workflow_handle("memo.example").fetch_history()
            return history.to_json(), await _replay(Replayer(workflows=[DomainWorkflow]), history)

        text, failure = asyncio.run(replayed())
        assert failure is None
        assert "EVENT_TYPE_MARKER_RECORDED" in text  # the patch: what an old run lacks
        assert "EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED" in text  # the memo's upserts
    finally:
        worker.stop()
        server.stop()


async def _replay(replayer: Any, history: Any) -> Any:
    return (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure


def test_a_workflow_of_the_sipctl_before_the_memo_replays() -> None:
    """Upserting the memo adds commands to a workflow's history: without its patch marker,
    a run started by the previous sipctl failed to replay on a worker of this one
    (nondeterminism: an upsert where its history has an activity). The history here was
    recorded by that sipctl: a spec synced and applied, then a second version applied."""
    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer

    from sipctl.reconciler.fleet.workflows import DomainWorkflow

    text = (
        Path(__file__).parent / "data" / "fleet" / "domain-history-before-memo.json"
    ).read_text()
    assert "EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED" not in text
    assert "EVENT_TYPE_MARKER_RECORDED" not in text
    history = WorkflowHistory.from_json("old.example", text)
    assert asyncio.run(_replay(Replayer(workflows=[DomainWorkflow]), history)) is None


def test_a_workflow_of_the_sipctl_before_hosting_units_replays() -> None:
    """A hosting unit's change carries files, its status customers (fields with defaults:
    a history without them reads as before), and the workflow sets the status's customers.
    The history here was recorded by the sipctl before them (memo and all): a spec synced
    and applied, then a second version applied; it replays on this one."""
    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer

    from sipctl.reconciler.fleet.workflows import DomainWorkflow

    text = (Path(__file__).parent / "data" / "fleet" / "domain-history-with-memo.json").read_text()
    assert "EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED" in text
    assert text.count("EVENT_TYPE_ACTIVITY_TASK_COMPLETED") == 4  # plan, apply; twice
    history = WorkflowHistory.from_json("memo.example", text)
    assert asyncio.run(_replay(Replayer(workflows=[DomainWorkflow]), history)) is None


def test_status_says_when_no_worker_runs_though_the_memos_answer() -> None:
    """The memos answer with no worker running, so every domain could be shown converged
    while nothing would plan or apply again: status says so below the domains, and in
    --json, and the command fails (exit 1, in cli_fleet) so a cron job notices."""
    from sipctl.reconciler.fleet.model import CONVERGED, DomainStatus
    from sipctl.reconciler.fleet.status_view import status_json, status_schema, status_table

    found = [DomainStatus("a.example", CONVERGED, last_apply="2026-12-07T05:00:00.000+00:00")]
    assert "no worker" not in status_table(found)
    table = status_table(found, workers=False)
    assert table.splitlines()[-1].startswith("no worker has polled the fleet's workflow queue")
    assert "'sipctl fleet worker'" in table
    document = status_json(found, workers=False)
    jsonschema.validate(document, status_schema())
    assert "nothing is planned or applied" in document["warning"]
    assert "warning" not in status_json(found)
