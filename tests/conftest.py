"""Shared test setup. Real servers are started by the fixture plugins in tests/fixtures/."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = [
    "fixtures.common",
    "fixtures.bind",
    "fixtures.sshd",
    "fixtures.netns",  # before asterisk, which imports it (else pytest cannot rewrite it)
    "fixtures.asterisk",
    "fixtures.pebble",
    "fixtures.powerdns",
    "fixtures.moto_route53",
]


@pytest.fixture(autouse=True, scope="session")
def _fast_specs_are_pydantic_twins() -> Iterator[None]:
    """Every spec a test loads in this process is also a case of tests/test_spec_fast.py:
    when the generated checker accepts it, pydantic must build an equal Spec."""
    from spec_twins import twin_of

    from sipctl.schemas import spec_fast

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(spec_fast, "check", twin_of)
        yield
