"""The host lock over SSH: a remote flock held on the pooled connection (real sshd)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fixtures.sshd import SshServer
from fixtures.waiting import wait_until

from sipctl.errors import SipctlError
from sipctl.providers.base import RunContext
from sipctl.providers.transport.host_lock import SshFlock
from sipctl.reconciler.gitops.locking import Holder
from sipctl.schemas.spec import Ssh


def _holder(name: str) -> Holder:
    now = datetime.now(UTC).replace(microsecond=0)
    return Holder(name[0] * 16, f"{name}@ci", now, now + timedelta(minutes=5))


def _lock(ssh_server: SshServer, tmp_path: Path) -> tuple[RunContext, SshFlock]:
    ctx = RunContext(base_dir=tmp_path)
    options = Ssh(**ssh_server.ssh_spec())
    transport = ctx.transports.get(ssh_server.target, options)
    return ctx, SshFlock(transport, str(tmp_path / "etc" / "asterisk" / ".sipctl.lock"))


def test_the_remote_flock_excludes_others_and_ends_with_its_connection(
    ssh_server: SshServer, tmp_path: Path
) -> None:
    ctx_a, lock_a = _lock(ssh_server, tmp_path)
    ctx_b, lock_b = _lock(ssh_server, tmp_path)
    a, b = _holder("a"), _holder("b")
    try:
        assert lock_a.acquire(a) is None
        assert (
            (tmp_path / "etc" / "asterisk" / ".sipctl.lock")
            .read_text()
            .startswith("sipctl-lock=1 id=aaaa")
        )
        assert lock_b.acquire(b) == a, "the holder is named"
        assert lock_b.holder() == a
        with pytest.raises(SipctlError, match="live process"):
            lock_b.force_unlock(a.id)
        lock_a.release(a)
        assert lock_b.holder() is None
        assert lock_b.acquire(b) is None

        # a run that dies loses its SSH session, and with it the lock
        ctx_b.close()
        ctx_c, lock_c = _lock(ssh_server, tmp_path)
        # sshd ends the session's processes, a while later on a loaded machine
        wait_until(lambda: lock_c.holder() is None, "the dead run's lock gone", interval=0.1)
        assert lock_c.acquire(a) is None
        lock_c.release(a)
        ctx_c.close()
    finally:
        ctx_a.close()
        ctx_b.close()
