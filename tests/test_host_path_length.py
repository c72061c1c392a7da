"""A path on a host that the spec accepts is one the host's file system can open.

Linux refuses a path part of more than 255 bytes (NAME_MAX) and a path of more than 4095
(PATH_MAX); every path a spec names on a host goes through ``values.check_abs_path``, which
refuses them at the key's line. It did not: ``asterisk.config_dir: /etc/<300 letters>``
passed validate and plan, and apply stopped part-way with "the asterisk provider failed
unexpectedly (OSError: File name too long) ... please report this bug". Proven here by
applying through a ``dir:`` target, the real local file system. No root, no server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.cli import run

_parts = st.lists(
    st.sampled_from([1, 200, 255, 256, 300]).map(lambda n: "d" * n), min_size=1, max_size=3
)


def _spec(directory: Path, config_dir: str) -> Path:
    path = directory / "sipctl.yaml"
    path.write_text(
        "version: 1\ndomain: mysite.example\ntransports:\n  udp: {port: 5060}\n"
        "servers:\n  - {host: pbx.mysite.example, ipv4: [192.0.2.7]}\n"
        "users:\n  director: 105\n"
        f"asterisk:\n  target: dir:{directory / 'pbx'}\n  config_dir: {config_dir}\n"
    )
    return path


@settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(parts=_parts)
def test_an_accepted_host_path_is_written_and_a_refused_one_is_named(
    parts: list[str],
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = tmp_path_factory.mktemp("spec")
    monkeypatch.setenv("SIPCTL_STATE_DIR", str(directory / "state"))
    config_dir = "/" + "/".join(parts)
    code = run(["apply", "-f", str(_spec(directory, config_dir)), "--auto-approve"])
    out = capsys.readouterr()
    said = out.out + out.err
    assert "unexpected" not in said and "report" not in said, said
    if max(len(p) for p in parts) > 255:
        assert code == 1
        assert "sipctl.yaml:11:3: asterisk.config_dir" in said and "at most 255" in said
    else:
        assert code == 0, said
        written = directory / "pbx" / config_dir.lstrip("/") / "extensions_sipctl.conf"
        assert written.is_file()


def test_a_path_longer_than_a_host_takes_is_refused_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_dir = "/" + "/".join(["d" * 200] * 21)  # every part fits; 4221 characters
    assert run(["validate", "-f", str(_spec(tmp_path, config_dir))]) == 1
    said = capsys.readouterr().err
    assert "asterisk.config_dir" in said and "4095 in all" in said
