"""A secret pasted where its variable's name belongs (``secret_env: Qk7ZpXw2LmN9vR4tYb8H``,
``api_key: env/Qk7Z...``) is never quoted back: the "not set" error, ``--json``, the
runner profile's refusal and the fleet's history name the spec's file, line and key and
say to put the secret in the environment and its NAME in the spec (schemas/env_names.py).
A name a person writes (UPPER_SNAKE_CASE, lower_snake_case) is still shown."""

from __future__ import annotations

import itertools
import os
import string
from pathlib import Path

import pytest
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.schemas.env_names import looks_like_a_name

ADVICE = "Put the secret in the environment and the variable's NAME in the spec"
PASTED = "Qk7ZpXw2LmN9vR4tYb8H"

# --- the rule --------------------------------------------------------------------------------

_WORD = st.text(string.ascii_uppercase, min_size=1, max_size=12)
_HUMAN_UPPER = st.builds(
    lambda words, digits: "_".join(words) + digits,
    st.lists(_WORD, min_size=1, max_size=4),  # at most 64 characters
    st.sampled_from(["", "2", "_2", "_OLD"]),
)
_HUMAN = st.one_of(_HUMAN_UPPER, _HUMAN_UPPER.map(str.lower))
_TOKEN_CHARS = string.ascii_letters + string.digits


@settings(max_examples=examples(300))
@given(name=_HUMAN)
def test_names_a_person_writes_are_shown(name: str) -> None:
    assert looks_like_a_name(name), name


@settings(max_examples=examples(300))
@given(token=st.text(_TOKEN_CHARS, min_size=21, max_size=80))
def test_a_token_longer_than_a_word_is_never_shown(token: str) -> None:
    """A generated secret of more than 20 letters and digits (a word is 16 letters and 4
    digits) is never a name, whatever its case or letters."""
    assert not looks_like_a_name(token), token


@settings(max_examples=examples(300))
@given(token=st.text(_TOKEN_CHARS + "_", min_size=8, max_size=80))
def test_mixed_case_or_letters_after_digits_are_never_shown(token: str) -> None:
    mixed = token != token.upper() and token != token.lower()
    digit_then_letter = any(a.isdigit() and b.isalpha() for a, b in itertools.pairwise(token))
    if mixed or digit_then_letter or token[0].isdigit():
        assert not looks_like_a_name(token), token


@pytest.mark.parametrize(
    "name", ["SIPCTL_TSIG_SECRET", "AWS_SECRET_ACCESS_KEY", "api_key_2", "TSIG_KEY_2", "PDNS_KEY"]
)
def test_everyday_names_are_shown(name: str) -> None:
    assert looks_like_a_name(name)


@pytest.mark.parametrize(
    "name", [PASTED, "5f4dcc3b5aa765d61d8327deb882cf99", "tsigSecret", "A1B2C3D4E5", "x" * 65]
)
def test_secrets_and_odd_names_are_not(name: str) -> None:
    assert not looks_like_a_name(name)


# --- every place that said the name ----------------------------------------------------------


def _tsig_spec(tmp_path: Path, name: str) -> Path:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        "version: 1\ndomain: a.example\nusers: {director: 105}\n"
        "servers: [{host: sip.a.example, ipv4: [192.0.2.10]}]\n"
        "dns:\n  provider: rfc2136\n  server: 127.0.0.1:9\n"
        f"  tsig: {{name: sipctl, secret_env: {name}}}\n"
    )
    return spec


def _octodns_spec(tmp_path: Path, name: str) -> Path:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        "version: 1\ndomain: a.example\nusers: {director: 105}\n"
        "servers: [{host: sip.a.example, ipv4: [192.0.2.10]}]\n"
        "dns:\n  provider: octodns\n  octodns:\n"
        "    class: octodns_powerdns.PowerDnsProvider\n"
        "    host: 127.0.0.1\n    port: 9\n"
        f"    api_key: env/{name}\n"
    )
    return spec


def _said(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    return captured.out + captured.err


@pytest.mark.parametrize("kind", ["tsig", "octodns"])
@pytest.mark.parametrize("strict", [False, True])
def test_a_pasted_secret_is_never_said_and_the_key_is(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    strict: bool,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SIPCTL_PROFILE", raising=False)
    monkeypatch.delenv(PASTED, raising=False)
    if strict:
        monkeypatch.setenv("CI", "1")  # the runner profile's refusal comes first
    else:
        monkeypatch.delenv("CI", raising=False)
    spec = (_tsig_spec if kind == "tsig" else _octodns_spec)(tmp_path, PASTED)
    key, line = ("dns.tsig.secret_env", 8) if kind == "tsig" else ("dns.octodns.api_key", 11)
    for command in (["plan"], ["plan", "--json"], ["apply", "--auto-approve"], ["drift"]):
        code = run([*command, "-f", str(spec)])
        shown = _said(capsys)
        assert code != 0, shown
        assert PASTED not in shown, (command, shown)
        assert f"sipctl.yaml:{line}:" in shown and key in shown, (command, shown)
        assert ADVICE in shown, (command, shown)
        assert "Traceback" not in shown, shown


@pytest.mark.parametrize("kind", ["tsig", "octodns"])
def test_a_name_is_still_said(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SIPCTL_PROFILE", raising=False)
    monkeypatch.delenv("SIPCTL_TEST_UNSET", raising=False)
    spec = (_tsig_spec if kind == "tsig" else _octodns_spec)(tmp_path, "SIPCTL_TEST_UNSET")
    assert run(["plan", "-f", str(spec)]) == 1
    shown = _said(capsys)
    assert "the environment variable SIPCTL_TEST_UNSET is not set" in shown, shown
    assert ADVICE not in shown, shown


def test_the_fleets_history_holds_no_pasted_secret(tmp_path: Path) -> None:
    """What a worker's plan activity raises goes into the workflow's history."""
    from temporalio.exceptions import ApplicationError
    from temporalio.testing import ActivityEnvironment

    from sipctl.reconciler.fleet.activities import plan_part
    from sipctl.reconciler.fleet.client import spec_changes
    from sipctl.reconciler.fleet.model import LayerRequest, Settings

    env = {k: v for k, v in os.environ.items() if k not in ("CI", "SIPCTL_PROFILE", PASTED)}
    (change,) = spec_changes([_tsig_spec(tmp_path, PASTED)])
    request = LayerRequest(change, change.parts[0], Settings())
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(os, "environ", env)
        with pytest.raises(ApplicationError) as failed:
            ActivityEnvironment().run(plan_part, request)
    message = str(failed.value)
    assert PASTED not in message and "dns.tsig.secret_env" in message, message
    assert ADVICE in message, message
