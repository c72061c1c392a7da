"""Locks against the real BIND: one apply at a time, held locks named, dead locks handled."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fixtures.bind import BindServer, bind_env, dns_spec

from sipctl.cli import run
from sipctl.errors import LockHeldError
from sipctl.providers.base import RunContext
from sipctl.providers.bookkeeping import local_state_dir, record_name
from sipctl.providers.dns.lock import DnsLock
from sipctl.providers.dns.rfc2136 import Rfc2136Provider
from sipctl.providers.transport.host_lock import FileLock
from sipctl.reconciler.gitops.locking import Holder, LockSet, new_holder
from sipctl.reconciler.gitops.public_records import detail_path
from sipctl.schemas.loader import load_spec

SIPCTL = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "sipctl")
LOCK_ID = re.compile(r"lock ID ([0-9a-f]{16})")


def _spec(bind: BindServer, zone: str, tmp_path: Path) -> Path:
    path = tmp_path / "sipctl.yaml"
    path.write_text(dns_spec(bind, zone))
    return path


class WaitingApply:
    """``sipctl apply`` on a terminal, stopped at its confirmation prompt (holding the lock)."""

    def __init__(self, spec: Path, env: dict[str, str], *extra: str) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            [SIPCTL, "apply", "-f", str(spec), "--no-verify", *extra],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=spec.parent,
        )
        os.close(slave)
        self.output = b""
        deadline = time.monotonic() + 20
        assert self.process.stdout is not None
        while b"Enter a value" not in self.output:
            assert time.monotonic() < deadline, f"no prompt; got {self.output!r}"
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 65536)
                assert chunk, f"apply ended early: {self.output!r} {self.process.stderr!r}"
                self.output += chunk

    def answer(self, text: str) -> tuple[int, str, str]:
        os.write(self.master, text.encode() + b"\n")
        out, err = self.process.communicate(timeout=30)
        os.close(self.master)
        return self.process.returncode, (self.output + out).decode(), err.decode()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.communicate(timeout=10)
        os.close(self.master)


def _sipctl(spec: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SIPCTL, *args, "-f", str(spec)],
        env=env,
        cwd=spec.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def zone(bind: BindServer) -> Iterator[str]:
    name = bind.new_zone()
    yield name
    bind.delete_zone(name)


def test_a_second_apply_exits_3_naming_the_holder_and_the_zone_ends_as_specified(
    bind: BindServer, zone: str, tmp_path: Path
) -> None:
    spec = _spec(bind, zone, tmp_path)
    env_a = {**bind_env(bind), "SIPCTL_LOCK_WHO": "runner-a@ci"}
    env_b = {**bind_env(bind), "SIPCTL_LOCK_WHO": "runner-b@ci"}
    first = WaitingApply(spec, env_a)  # planned, locked, waiting for "yes"
    assert bind.query(f"_sipctl-lock.{zone}", "TXT"), "the lock record exists while held"
    serial = bind.serial(zone)

    second = _sipctl(spec, env_b, "apply", "--auto-approve", "--no-verify")
    assert second.returncode == 3, second.stderr
    assert "locked by runner-a@ci since" in second.stderr
    assert "sipctl force-unlock" in second.stderr
    assert bind.serial(zone) == serial, "the refused apply changed nothing"

    code, out, err = first.answer("yes")
    assert code == 0, err
    assert "Apply complete! 10 added" in out
    assert bind.query(f"_sipctl-lock.{zone}", "TXT") == [], "released at the end"
    again = _sipctl(spec, env_b, "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


def test_the_lock_record_names_no_one_and_another_machine_gets_the_lock_id(
    bind: BindServer, zone: str, tmp_path: Path
) -> None:
    """TXT _sipctl-lock is public: it holds the lock ID and times, never user@host; who took
    it stays in the taking machine's bookkeeping. A second runner with bookkeeping of its
    own (another machine) is told the lock ID and where to look; one on this machine is
    told who."""
    spec = _spec(bind, zone, tmp_path)
    env_a = {**bind_env(bind), "SIPCTL_LOCK_WHO": "runner-a@ci"}
    elsewhere = {**bind_env(bind), "SIPCTL_STATE_DIR": str(tmp_path / "other-machine")}
    first = WaitingApply(spec, env_a)
    [record] = bind.query(f"_sipctl-lock.{zone}", "TXT")
    for private in ("runner-a", "who=", socket.gethostname(), "root@"):
        assert private not in record, record
    found = re.search(r"id=([0-9a-f]{16}) since=\S+ expires=\S+ plan=[0-9a-f]{12}", record)
    assert found is not None, record
    lock_id = found.group(1)
    where = detail_path(f"DNS lock _sipctl-lock.{zone}. on {bind.server}", "lock")
    assert json.loads(where.read_text())["who"] == "runner-a@ci"

    other = _sipctl(spec, elsewhere, "apply", "--auto-approve", "--no-verify")
    assert other.returncode == 3, other.stderr
    assert f"locked by the run with lock ID {lock_id} since" in other.stderr, other.stderr
    assert "runner-a" not in other.stderr
    assert f"force-unlock {lock_id}" in other.stderr and where.name in other.stderr
    here = _sipctl(spec, bind_env(bind), "apply", "--auto-approve", "--no-verify")
    assert here.returncode == 3 and "locked by runner-a@ci since" in here.stderr, here.stderr

    code, _, err = first.answer("yes")
    assert code == 0, err
    assert bind.query(f"_sipctl-lock.{zone}", "TXT") == []


def test_racing_applies_change_the_zone_once(bind: BindServer, zone: str, tmp_path: Path) -> None:
    spec = _spec(bind, zone, tmp_path)
    env = bind_env(bind)
    args = [SIPCTL, "apply", "-f", str(spec), "--auto-approve", "--no-verify"]
    procs = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    applied = [r for r in results if "Apply complete!" in r[1]]
    assert len(applied) == 1, results
    loser = next(r for r in results if r is not applied[0])
    # the loser found the lock held, or (if it came later) found its plan stale or empty
    assert loser[0] == 3 or "No changes" in loser[1], loser
    if loser[0] == 3:
        assert "locked by" in loser[2] or "stale" in loser[2], loser[2]
    assert _sipctl(spec, env, "plan", "--detailed-exitcode").returncode == 0
    assert bind.query(f"_sipctl-lock.{zone}", "TXT") == []


def test_a_killed_apply_leaves_a_lock_removed_only_by_its_own_id(
    bind: BindServer, zone: str, tmp_path: Path
) -> None:
    spec = _spec(bind, zone, tmp_path)
    env = {**bind_env(bind), "SIPCTL_LOCK_WHO": "doomed@ci"}
    doomed = WaitingApply(spec, env)
    doomed.kill()
    assert bind.query(f"_sipctl-lock.{zone}", "TXT"), "SIGKILL leaves the DNS lock behind"

    held = _sipctl(spec, bind_env(bind), "apply", "--auto-approve", "--no-verify")
    assert held.returncode == 3 and "locked by doomed@ci" in held.stderr
    found = LOCK_ID.search(held.stderr)
    assert found is not None
    lock_id = found.group(1)

    wrong = _sipctl(spec, bind_env(bind), "force-unlock", "0123456789abcdef")
    assert wrong.returncode == 1 and "no lock of this spec has ID" in wrong.stderr
    assert bind.query(f"_sipctl-lock.{zone}", "TXT"), "a wrong ID removes nothing"
    assert _sipctl(spec, bind_env(bind), "force-unlock", "not-an-id").returncode == 1

    right = _sipctl(spec, bind_env(bind), "force-unlock", lock_id)
    assert right.returncode == 0, right.stderr
    assert f"removed the lock of the run with lock ID {lock_id}" in right.stdout
    assert "; doomed@ci had taken it" in right.stdout  # on this machine, which took it
    assert bind.query(f"_sipctl-lock.{zone}", "TXT") == []
    done = _sipctl(spec, bind_env(bind), "apply", "--auto-approve", "--no-verify")
    assert done.returncode == 0, done.stderr


def test_an_expired_lock_of_a_killed_apply_is_taken_over(
    bind: BindServer, zone: str, tmp_path: Path
) -> None:
    spec = _spec(bind, zone, tmp_path)
    env = {**bind_env(bind), "SIPCTL_LOCK_WHO": "doomed@ci"}
    doomed = WaitingApply(spec, env, "--lock-ttl", "1s")
    doomed.kill()
    time.sleep(1.2)
    after = _sipctl(spec, bind_env(bind), "apply", "--auto-approve", "--no-verify")
    assert after.returncode == 0, after.stderr
    assert "Took over the expired lock" in after.stderr and "doomed@ci" in after.stderr, (
        after.stderr
    )
    assert bind.query(f"_sipctl-lock.{zone}", "TXT") == []


def test_lock_timeout_waits_for_the_holder(bind: BindServer, zone: str, tmp_path: Path) -> None:
    spec = _spec(bind, zone, tmp_path)
    loaded = load_spec(spec)
    ctx = RunContext(base_dir=tmp_path, env=bind_env(bind))
    other = new_holder("-", timedelta(minutes=5), {"SIPCTL_LOCK_WHO": "other@ci"})
    site = DnsLock(Rfc2136Provider(loaded, ctx))
    assert site.acquire(other) is None
    mine = new_holder("-", timedelta(minutes=5), {"SIPCTL_LOCK_WHO": "me@ci"})
    assert site.acquire(mine) == other, "a held lock names its holder"

    started = time.monotonic()
    with (
        pytest.raises(LockHeldError, match="locked by other@ci"),
        LockSet([DnsLock(Rfc2136Provider(loaded, ctx))], mine, timeout=0.6),
    ):
        pass
    assert time.monotonic() - started >= 0.5

    lines: list[str] = []
    site.release(other)
    with LockSet([DnsLock(Rfc2136Provider(loaded, ctx))], mine, timeout=5, say=lines.append):
        assert site.holder() == mine.opaque()  # the public record names no one
    assert site.holder() is None
    # releasing a lock that is not ours deletes nothing
    assert site.acquire(other) is None
    assert site.release(mine) is not None
    assert site.holder() == other
    site.release(other)


def test_file_locks_exclude_each_other_and_end_with_their_holder(tmp_path: Path) -> None:
    path = tmp_path / "etc" / ".sipctl.lock"
    a, b = FileLock(path, "k", "lock a"), FileLock(path, "k", "lock b")
    now = datetime.now(UTC).replace(microsecond=0)
    holder_a = Holder("a" * 16, "a@host", now, now + timedelta(minutes=1))
    holder_b = Holder("b" * 16, "b@host", now, now + timedelta(minutes=1))
    assert a.acquire(holder_a) is None
    assert b.acquire(holder_b) == holder_a
    assert b.holder() == holder_a
    with pytest.raises(Exception, match="live process"):
        b.force_unlock(holder_a.id)
    a.release(holder_a)
    assert b.holder() is None
    assert b.acquire(holder_b) is None
    b.release(holder_b)


def test_zonefile_apply_takes_a_flock_in_sipctls_own_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zone = tmp_path / "example.org.zone"
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        "version: 1\ndomain: example.org\nservers: [{host: pbx.example.org, ipv4: [192.0.2.5]}]\n"
        f"dns: {{provider: zonefile, file: {zone.name}, create_file: true}}\n"
    )
    where = local_state_dir() / record_name(str(zone), ".lock")
    lock = FileLock(where, "k", "held by the test")
    now = datetime.now(UTC).replace(microsecond=0)
    assert lock.acquire(Holder("c" * 16, "test@here", now, now + timedelta(minutes=1))) is None
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 3
    assert not zone.exists()
    err = capsys.readouterr().err
    assert "locked by test@here" in err
    # a flock's holder is alive (a dead run's flock is gone): no force-unlock advice
    assert "force-unlock" not in err.replace("force-unlock cannot", "")
    assert "ends with that run's process" in err
    lock.release(Holder("c" * 16, "test@here", now, now))
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
    assert zone.exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_cancelled_apply_releases_its_lock(
    bind: BindServer, zone: str, tmp_path: Path, sig: signal.Signals
) -> None:
    spec = _spec(bind, zone, tmp_path)
    waiting = WaitingApply(spec, bind_env(bind))
    assert bind.query(f"_sipctl-lock.{zone}", "TXT")
    waiting.process.send_signal(sig)  # a CI job cancelled, or Ctrl-C
    _out, err = waiting.process.communicate(timeout=30)
    os.close(waiting.master)
    # Ctrl-C ends sipctl with exit 130 (cli_boundary; the shell's code for an interrupt)
    assert waiting.process.returncode in (1, 130), err
    assert bind.query(f"_sipctl-lock.{zone}", "TXT") == [], "released on the way out"
    assert bind.query(f"_sip._udp.{zone}", "SRV") == [], "nothing was applied"


class _KilledInFlight(DnsLock):
    """A run killed once its lock request is sent: the server took the lock, the run ended
    before it saw the answer (SIGKILL runs no handler, so nothing after the send happens)."""

    def acquire(self, me: Holder) -> Holder | None:
        super().acquire(me)
        raise KeyboardInterrupt("killed with the lock request in flight")


def test_a_run_killed_with_its_lock_request_in_flight_is_named_and_a_stranger_is_told_so(
    bind: BindServer, zone: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock's detail is written before the request: the next run here names the killed
    run, not an older one this machine's file named. A lock no run here recorded is said to
    be another machine's, with the ID this machine's file does name."""
    loaded = load_spec(_spec(bind, zone, tmp_path))
    ctx = RunContext(base_dir=tmp_path, env=bind_env(bind))
    earlier = new_holder("-", timedelta(minutes=5), {"SIPCTL_LOCK_WHO": "earlier@ci"})
    with LockSet([DnsLock(Rfc2136Provider(loaded, ctx))], earlier):
        pass  # an older run of this machine, its lock released
    doomed = new_holder("-", timedelta(minutes=5), {"SIPCTL_LOCK_WHO": "doomed@ci"})
    with pytest.raises(KeyboardInterrupt):
        LockSet([_KilledInFlight(Rfc2136Provider(loaded, ctx))], doomed).__enter__()
    site = DnsLock(Rfc2136Provider(loaded, ctx))
    assert site.holder() == doomed.opaque(), "the server took the killed run's lock"

    waiting = new_holder("-", timedelta(minutes=5), {"SIPCTL_LOCK_WHO": "next@ci"})
    with pytest.raises(LockHeldError) as held, LockSet([site], waiting):
        pass
    assert f"locked by doomed@ci since {doomed.since:%Y-%m-%dT%H:%M:%SZ}" in held.value.message
    assert f"lock ID {doomed.id}" in held.value.message and "earlier@ci" not in str(held.value)
    site.force_unlock(doomed.id)

    # Taken on another machine (its own bookkeeping): this machine's file names other IDs.
    monkeypatch.setenv("SIPCTL_STATE_DIR", str(tmp_path / "other-machine"))
    stranger = new_holder("-", timedelta(minutes=5), {"SIPCTL_LOCK_WHO": "stranger@ci"})
    with LockSet([DnsLock(Rfc2136Provider(loaded, ctx))], stranger):
        monkeypatch.undo()
        with pytest.raises(LockHeldError) as other, LockSet([site], waiting):
            pass
    hint = other.value.hint or ""
    assert f"locked by the run with lock ID {stranger.id}" in other.value.message
    assert "stranger@ci" not in other.value.message + hint
    assert f"names other lock IDs (the latest {waiting.id}), not {stranger.id}" in hint, hint
    assert "another machine took it" in hint
    assert site.holder() is None


def _keep_lock_detail(where: str, number: int, start: object) -> None:
    from sipctl.reconciler.gitops.public_records import keep_detail

    start.wait()  # type: ignore[attr-defined]
    keep_detail(where, "lock", f"{number:016x}", {"who": f"run-{number}@ci"}, earlier=7)


def test_runs_of_one_machine_taking_locks_at_once_each_keep_their_lock_detail() -> None:
    """Each run writes its lock's detail before the request, keeping the earlier ones: two
    runs at once both read, then both write, and one's detail was lost (the next run could
    not name it). The read and write are one step under a lock of the directory."""
    import multiprocessing

    from sipctl.reconciler.gitops.public_records import detail_ids, read_detail

    where = f"DNS lock _sipctl-lock.race-{os.getpid()}.example. on 127.0.0.1:53"
    forked = multiprocessing.get_context("fork")
    start = forked.Barrier(6)
    runs = [forked.Process(target=_keep_lock_detail, args=(where, n, start)) for n in range(6)]
    for process in runs:
        process.start()
    for process in runs:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert sorted(detail_ids(where, "lock")) == [f"{n:016x}" for n in range(6)]
    assert read_detail(where, "lock", f"{3:016x}")["who"] == "run-3@ci"
