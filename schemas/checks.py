"""Cross-layer checks of a spec (placeholder until the verify work lands)."""

from __future__ import annotations

from collections.abc import Mapping

from sipctl.reconciler.resources import LiveState
from sipctl.schemas.loader import LoadedSpec
from sipctl.schemas.spec import Spec


def cross_checks(loaded: LoadedSpec) -> list[str]:
    return []


def live_cross_checks(spec: Spec, states: Mapping[str, LiveState]) -> list[str]:
    return []
