"""The fleet configuration file (``fleet.yaml``): where Temporal is, the queues' rate limits,
the drift sweep and the timeouts. It is the admin's, like the runner profile: no spec can
change it.

    address: 127.0.0.1:7233
    namespace: default
    drift: {every: 1h, repair: false}
    rate_limits: {"dns:route53": 4}      # activities per second on the queue, all workers
    apply: {heartbeat: 30s, attempts: 5, lock_ttl: 2m, lock_wait: 3m}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sipctl.errors import SpecError
from sipctl.reconciler.fleet.model import Settings
from sipctl.schemas.admin_files import parse_admin_file
from sipctl.schemas.numbers import Wait

_Seconds = Annotated[float, Wait()]  # from MIN_WAIT to a week, as every wait


def _seconds(value: object) -> object:
    if isinstance(value, str):
        from sipctl.reconciler.gitops.locking import parse_duration

        try:
            return parse_duration(value, "duration")
        except SpecError as exc:
            raise ValueError(str(exc)) from None
    return value


class DriftSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    every: _Seconds = 3600.0
    repair: bool = False

    _every = field_validator("every", mode="before")(_seconds)


class ApplySection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    heartbeat: _Seconds = 30.0
    attempts: Annotated[int, Field(ge=1, le=100)] = 5
    lock_ttl: _Seconds = 120.0
    lock_wait: _Seconds = 180.0

    _durations = field_validator("heartbeat", "lock_ttl", "lock_wait", mode="before")(_seconds)


class FleetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    drift: DriftSection = DriftSection()
    apply: ApplySection = ApplySection()
    rate_limits: dict[str, Annotated[float, Field(gt=0)]] = {}

    def settings(self) -> Settings:
        return Settings(
            repair=self.drift.repair,
            heartbeat_seconds=self.apply.heartbeat,
            attempts=self.apply.attempts,
            lock_wait_seconds=self.apply.lock_wait,
            lock_ttl_seconds=self.apply.lock_ttl,
        )


def load_config(path: Path | None) -> FleetConfig:
    """The configuration at ``path``; the defaults when None."""
    if path is None:
        return FleetConfig()
    from sipctl.schemas.admin_files import read_admin_file

    text = read_admin_file(path, "fleet configuration", str(path))
    return parse_admin_file(
        text,
        str(path),
        FleetConfig,
        what="the fleet configuration is a mapping (address: HOST:PORT, namespace: ...)",
        hint="its keys: sipctl docs fleet, The configuration",
        may_be_empty=True,
    )
