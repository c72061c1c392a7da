"""The mark of files written and not loaded yet (``providers/load_mark.py``), as a plan reads it.

Live data is data: whatever the mark file on a host holds, a plan reads it without an
error, says that an apply was stopped, and plans again only resources it read. A mark an
apply wrote names exactly the resources of its changes. The apply and the plan after a
SIGKILL are proven against Asterisk and fail2ban in test_asterisk_interrupted_apply.py and
test_fail2ban_jail.py.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sipctl.providers.load_mark import LoadMark
from sipctl.reconciler.diff import diff
from sipctl.reconciler.plan import Change
from sipctl.reconciler.resources import Address, LiveState, Resource

MARK = LoadMark("asterisk", "/etc/asterisk", "Asterisk", "asterisk -rx 'core reload'")
NAMES = st.sampled_from(["extensions_sipctl.conf", "pjsip_sipctl.conf", "pjsip.conf", "rtp.conf"])


def _live(names: set[str]) -> LiveState:
    live = LiveState()
    live.fingerprint_extra = {}
    for name in names:
        live.resources[Address("asterisk", "file", name)] = f"[{name}]"
    return live


@given(raw=st.binary(max_size=200), present=st.sets(NAMES))
def test_any_mark_is_read_without_error_and_said(raw: bytes, present: set[str]) -> None:
    live = _live(present)
    MARK.read(raw, live, "local:/etc/asterisk")
    assert live.unloaded <= set(live.resources)
    assert len(live.notes) == 1
    assert "was stopped before Asterisk loaded them" in live.notes[0]


@given(written=st.sets(NAMES, min_size=1), present=st.sets(NAMES))
def test_a_mark_written_plans_exactly_its_files_again(written: set[str], present: set[str]) -> None:
    changes = [
        Change(Address("asterisk", "file", name), "update", before=None, after=None)
        for name in sorted(written)
    ]
    mark = MARK.before(changes, None)
    assert mark.path.startswith("/var/lib/sipctl/") and mark.mode == 0o600
    live = _live(present)
    MARK.read(mark.content, live, "local:/etc/asterisk")
    assert {a.name for a in live.unloaded} == written & present
    desired = [Resource(address, value) for address, value in live.resources.items()]
    planned = diff(desired, live)
    assert {c.address.name for c in planned} == written & present
    assert all(c.action == "update" for c in planned)
    if not written & present:
        assert "core reload" in live.notes[0], "nothing to plan: the admin is told what to run"


def test_no_mark_no_note() -> None:
    live = _live({"pjsip.conf"})
    MARK.read(None, live, "local:/etc/asterisk")
    assert live.notes == [] and live.unloaded == set()
