"""A hoster's DNS credential that the runner profile binds to no zones is said once per run.

Customer files of a hosting directory cannot write into each other's zones only when the
runner profile ties the key to their zones (``zones``). Without that (or without a runner
profile) a run that uses the key for customers says so once per credential, naming it and
the YAML to add; never once per customer, never for a one-company spec, and not at all
once the key lists zones. The run itself is not changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from fixtures.bind import SECRET_ENV, BindServer
from fixtures.hosting import rfc2136_customer
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.cli import run

WARNING = "is bound to no zones"
KEY = f"dns: {{server: '127.0.0.1:53', tsig: {{name: k, secret_env: {SECRET_ENV}}}}}\n"


def _host(directory: Path, name: str = "pbx1") -> None:
    (directory / f"{name}.yaml").write_text(
        f"version: 1\ndomain: {name}.hoster.example\nhosting: {{name: {name}}}\n"
        "transports: {udp: {port: 5060}, tcp: {port: 5060}}\n"
        "servers: [{host: sip.hoster.example, priority: 10}]\n"
        f"asterisk: {{target: 'dir:{directory}/{name}'}}\n"
    )


def _customer(directory: Path, name: str, host: str = "pbx1") -> None:
    (directory / f"{name}.yaml").write_text(
        f"version: 1\ndomain: {name}.example\nhost: {host}\nlocal_context: {name}-phones\n"
        "users: {director: 105}\n" + KEY
    )


@pytest.fixture
def hoster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two hosts, three customers, all on one TSIG key; no runner profile, CI not set."""
    monkeypatch.delenv("SIPCTL_PROFILE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    directory = tmp_path / "hoster"
    directory.mkdir()
    _host(directory)
    _host(directory, "pbx2")
    for name, host in (("alpha", "pbx1"), ("beta", "pbx1"), ("gamma", "pbx2")):
        _customer(directory, name, host)
    monkeypatch.chdir(directory)
    return directory


def _profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: dict[str, object]) -> None:
    path = tmp_path / "runner.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "credentials": {SECRET_ENV: key}}))
    monkeypatch.setenv("SIPCTL_PROFILE", str(path))


def test_validate_of_a_directory_says_it_once_per_key(
    hoster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["validate", "-f", "."]) == 0
    shown = capsys.readouterr()
    assert shown.err.count(WARNING) == 1, shown.err
    assert f"{SECRET_ENV}, the DNS credential of 3 hosting customer zone(s)" in shown.err
    assert "there is no runner profile (SIPCTL_PROFILE), so credentials are not checked" in (
        shown.err
    )
    assert "change the records of any zone this credential may update" in shown.err
    pasted = shown.err.split("List the customers' zones in the runner profile:\n", 1)[1]
    block = yaml.safe_load(pasted.split("\n  or '*.<parent>'", 1)[0])
    assert block == {
        "credentials": {SECRET_ENV: {"zones": ["alpha.example", "beta.example", "gamma.example"]}}
    }
    assert "a wildcard does not keep the customers below it apart" in shown.err
    assert "sipctl docs security" in shown.err


def test_validate_json_of_a_directory_has_it_once_in_the_run_s_warnings(
    hoster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate --json of several files: the run's own warning, once per key, is in the
    run's ``warnings`` (the terminal's text, as a problem at the first file that names the
    key), in no file's report, and the document is what ``schema --kind validate`` says."""
    assert run(["validate", "-f", ".", "--no-color"]) == 0
    terminal = capsys.readouterr().err
    assert run(["validate", "-f", ".", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert run(["schema", "--output", "validate"]) == 0
    jsonschema.validate(data, json.loads(capsys.readouterr().out))
    (warned,) = data["warnings"]
    assert (warned["file"], warned["key"]) == ("alpha.yaml", "dns.tsig.secret_env"), warned
    assert isinstance(warned["line"], int) and isinstance(warned["col"], int)
    said = f"{warned['file']}:{warned['line']}:{warned['col']}: {warned['key']}: "
    assert f"Warning: {said}{warned['message']}\n" in terminal, (warned, terminal)
    assert WARNING in warned["message"] and "of 3 hosting customer zone(s)" in warned["message"]
    assert not [w for f in data["files"] for w in f["warnings"] if WARNING in w["message"]]
    assert data["valid"] and data["errors"] == [] and len(data["files"]) == 5
    # one file alone keeps it in its own report, as before
    assert run(["validate", "-f", "beta.yaml", "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert "warnings" in one and [w["key"] for w in one["warnings"]] == ["dns.tsig.secret_env"]


def test_validate_of_one_customer_file_says_it_too(
    hoster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["validate", "-f", "beta.yaml"]) == 0
    shown = capsys.readouterr()
    assert shown.err.count(WARNING) == 1, shown.err
    assert "Warning: beta.yaml:6:47: dns.tsig.secret_env: SIPCTL_TSIG_SECRET, the DNS" in shown.err
    assert "of 1 hosting customer zone(s)" in shown.err and '["beta.example"]' in shown.err


def test_a_profile_entry_without_zones_is_said_and_with_zones_not(
    hoster: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _profile(tmp_path, monkeypatch, {"kind": "tsig", "to": ["127.0.0.1:53"]})
    assert run(["validate", "-f", "."]) == 0
    shown = capsys.readouterr()
    assert shown.err.count(WARNING) == 1, shown.err
    assert f"the runner profile ({tmp_path / 'runner.yaml'}) lists it without zones" in (shown.err)
    for zones in (["alpha.example", "beta.example", "gamma.example"], ["*.example"]):
        _profile(tmp_path, monkeypatch, {"kind": "tsig", "to": ["127.0.0.1:53"], "zones": zones})
        assert run(["validate", "-f", "."]) == 0
        shown = capsys.readouterr()
        assert WARNING not in shown.err, shown.err


def test_a_one_company_spec_is_not_warned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SIPCTL_PROFILE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        "version: 1\ndomain: mysite.example\n"
        "servers: [{host: pbx.mysite.example, ipv4: [192.0.2.1]}]\n" + KEY
    )
    assert run(["validate", "-f", str(spec)]) == 0
    assert WARNING not in capsys.readouterr().err


def test_plan_of_a_hosting_directory_says_it_once_and_plans_as_before(
    bind: BindServer,
    hosting_zones: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On a real BIND: two customers on the test key, planned as a directory and alone;
    with the zones listed, the same plan and no warning."""
    monkeypatch.delenv("SIPCTL_PROFILE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    hoster = tmp_path / "hoster"
    hoster.mkdir()
    _host(hoster)
    for n, zone in enumerate(hosting_zones):
        (hoster / f"customer{n}.yaml").write_text(rfc2136_customer(bind, zone, f"c{n}-phones"))
    monkeypatch.chdir(hoster)
    assert run(["plan", "-f", ".", "--json"]) == 0
    shown = capsys.readouterr()
    assert shown.err.count(WARNING) == 1, shown.err
    assert f"{SECRET_ENV}, the DNS credential of 2 hosting customer zone(s)" in shown.err
    before = shown.out
    assert run(["plan", "-f", "customer1.yaml"]) == 0
    assert capsys.readouterr().err.count(WARNING) == 1
    assert run(["plan", "-f", "pbx1.yaml"]) == 0  # the host file binds no DNS credential
    assert WARNING not in capsys.readouterr().err
    server = bind.server
    key = {"kind": "tsig", "to": [server], "zones": hosting_zones}
    _profile(tmp_path, monkeypatch, key)
    assert run(["plan", "-f", ".", "--json"]) == 0
    shown = capsys.readouterr()
    assert WARNING not in shown.err, shown.err
    after = _without_times(shown.out)
    assert after == _without_times(before), json.dumps([after, _without_times(before)])


def _without_times(text: str) -> object:
    """A plan's JSON without when it was made and how long it took."""

    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {
                k: strip(v)
                for k, v in value.items()
                if k not in ("created_at", "seconds", "duration_seconds")
            }
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads(text))


# --- the rule alone: one warning per credential, whatever the number of customers ----------------

_NAMES = ("KEY_A", "KEY_B", "/srv/keys/c.key")


@settings(max_examples=examples(60), deadline=None)
@given(
    uses=st.lists(
        st.tuples(st.sampled_from(_NAMES), st.integers(0, 1500)), min_size=1, max_size=1200
    ),
    zoned=st.sets(st.sampled_from(_NAMES)),
)
def test_one_warning_per_unzoned_credential_of_any_number_of_customers(
    uses: list[tuple[str, int]], zoned: set[str]
) -> None:
    from sipctl.reconciler.bindings import CustomerKey, Runner, unzoned_customer_keys
    from sipctl.schemas.profiles import RunnerProfile

    keys = [
        CustomerKey(name, None, f"c{n}.yaml:6:7: dns.tsig.secret_env", f"c{n}.example")
        for name, n in uses
    ]
    credentials = {
        name: {"kind": "tsig", **({"zones": ["*.example"]} if name in zoned else {})}
        for name in _NAMES
    }
    profile = RunnerProfile.model_validate({"version": 1, "credentials": credentials})
    for runner in (Runner(True, profile, "runner.yaml"), Runner(False, None, "")):
        warnings = unzoned_customer_keys(keys, runner)
        unzoned = {name for name, _ in uses if runner.profile is None or name not in zoned}
        assert len(warnings) == len(unzoned)
        for name in unzoned:
            (said,) = [w for w in warnings if f": {name}, the DNS credential of " in w]
            count = len({n for key, n in uses if key == name})
            assert f"the DNS credential of {count} hosting customer zone(s)" in said
            assert said.count("\n") == 4, said  # a hoster's 1,000 zones are not pasted
    assert unzoned_customer_keys(keys, Runner(True, None, "CI is set")) == []  # all refused
