"""The garbage collector's setting for a run over many domains (gitops/multi.py): pure, fast."""

from __future__ import annotations

import gc
import weakref

from sipctl.reconciler.gitops.multi import BATCH_GC_MIDDLE, BATCH_GC_THRESHOLD, collecting_rarely


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_a_run_collects_rarely_and_leaves_the_collector_as_it_found_it() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with collecting_rarely():
        assert gc.get_threshold()[:2] == (BATCH_GC_THRESHOLD, BATCH_GC_MIDDLE)
        with collecting_rarely():  # nested: the outermost one restores
            pass
        assert gc.get_threshold()[0] == BATCH_GC_THRESHOLD
        kept = _Node()
        dropped = weakref.ref(_Node())
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen
    # What the run made is not scanned when it ends, but nothing of it is lost for good:
    # the garbage among it goes at a full collection.
    gc.collect()
    assert dropped() is None
    assert kept.me is kept
