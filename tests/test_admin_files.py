"""The admin's files (host profile, runner profile, fleet configuration) answer a mistake
as a spec does: one line with the file and the line or key, a misspelt key with the one
meant. They are read by one function (schemas/admin_files.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from sipctl.cli import run
from sipctl.errors import SpecError
from sipctl.reconciler.fleet.config import FleetConfig, load_config
from sipctl.schemas.profiles import HostProfile, RunnerProfile, parse_profile


def _fleet(text: str, tmp_path: Path) -> FleetConfig:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return load_config(path)


def _problems(error: SpecError) -> list[str]:
    return list(error.problems or [str(error)])


def test_a_misspelt_key_of_the_fleet_configuration_names_the_one_meant(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        _fleet("adress: temporal:7233\napply: {heartbaet: 30s}\n", tmp_path)
    problems = _problems(info.value)
    assert any("adress: unknown key 'adress'; did you mean 'address'?" in p for p in problems)
    assert any(
        "apply.heartbaet: unknown key 'heartbaet'; did you mean 'heartbeat'?" in p for p in problems
    )


def test_broken_yaml_in_the_fleet_configuration_is_one_line_with_its_place(
    tmp_path: Path,
) -> None:
    with pytest.raises(SpecError) as info:
        _fleet("address: [\n", tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'fleet.yaml'}:2:1: not valid YAML: ")
    assert "\n" not in message


def test_a_second_document_in_an_admin_file_is_named_as_in_a_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"fleet.yaml:2:1: not valid YAML: the file holds one"):
        _fleet("address: a\n---\naddress: b\n", tmp_path)


def test_a_fleet_configuration_of_comments_only_is_every_default(tmp_path: Path) -> None:
    assert _fleet("# nothing yet\n", tmp_path) == FleetConfig()


def _fleet_text(text: str) -> FleetConfig:
    from sipctl.schemas.admin_files import parse_admin_file

    return parse_admin_file(text, "fleet.yaml", FleetConfig, what="a mapping", hint="h")


READERS = {
    "host": lambda text: parse_profile(text, "host.yaml", HostProfile),
    "runner": lambda text: parse_profile(text, "runner.yaml", RunnerProfile),
    "fleet": _fleet_text,
}
SOURCES = {"host": "host.yaml", "runner": "runner.yaml", "fleet": "fleet.yaml"}


@settings(max_examples=examples(150), deadline=None)
@given(
    which=st.sampled_from(sorted(READERS)),
    text=st.one_of(
        st.text(max_size=200),
        st.lists(
            st.sampled_from(
                [
                    "version: 1\n",
                    "address: x:1\n",
                    "asterisk: {default: [a]}\n",
                    "credentials: {}\n",
                    "credentials: [a]\n",
                    "probe_targets: x\n",
                    "asterisk: {default: 5}\n",
                    "apply: {attempts: 'x'}\n",
                    "drift: [\n",
                    "  - a\n",
                    "\tb: 1\n",
                    "nmespace: n\n",
                    "c: &a [*a]\n",
                    '"x\n',
                ]
            ),
            max_size=6,
        ).map("".join),
    ),
)
def test_every_mistake_in_an_admin_file_is_lines_that_name_the_file(which: str, text: str) -> None:
    try:
        READERS[which](text)
    except SpecError as error:
        for problem in _problems(error):
            assert problem.startswith(SOURCES[which]), problem
            assert "\n" not in problem, problem
            assert "Extra inputs are not permitted" not in problem
            # a spec's words (validation_message), never pydantic's
            assert "Input should" not in problem and "Value error" not in problem, problem


@pytest.mark.parametrize("model", [HostProfile, RunnerProfile, FleetConfig])
def test_every_top_level_key_misspelt_is_answered_with_it(model: type[BaseModel]) -> None:
    from sipctl.schemas.admin_files import parse_admin_file

    for key, info in model.model_fields.items():
        name = info.alias or key
        typo = name[:1] + name[2:]  # the second letter left out
        with pytest.raises(SpecError) as raised:
            parse_admin_file(f"{typo}: 1\n", "f.yaml", model, what="m", hint="h")
        assert f"did you mean '{name}'?" in "\n".join(_problems(raised.value)), (model, name)


@pytest.mark.parametrize("named", ["/dev/zero", "huge"])
def test_an_admin_file_named_by_mistake_is_refused_not_read_whole(
    named: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SIPCTL_PROFILE=/dev/zero was read until the kernel killed sipctl (exit 137); the
    runner profile and the fleet configuration are read no further than 1 MiB."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "huge").write_bytes(b"# " + b"x" * (1 << 20) + b"\n")
    (tmp_path / "sipctl.yaml").write_text(
        "version: 1\ndomain: mysite.ru\nservers: [{host: pbx.mysite.ru, ipv4: [192.0.2.1]}]\n"
        "dns: {provider: zonefile, file: z.zone, create_file: true}\n"
    )
    monkeypatch.setenv("SIPCTL_PROFILE", named)
    assert run(["plan", "-f", "sipctl.yaml"]) == 1
    err = capsys.readouterr().err
    # a device (or a FIFO) is no file at all; a regular file is read no further than 1 MiB
    why = (
        "cannot read the runner profile: not a regular file"
        if named == "/dev/zero"
        else (f"the runner profile huge is {(1 << 20) + 3:,} bytes, more than the 1 MiB")
    )
    assert f"SIPCTL_PROFILE={named}: {why}" in err, err
    match = "not a regular file" if named == "/dev/zero" else "more than the 1 MiB"
    with pytest.raises(SpecError, match=f"the fleet configuration.*{match}|{match}"):
        load_config(Path(named))
