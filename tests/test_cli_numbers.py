"""A float option (verify --timeout, audit --rate, audit --max-seconds) takes a finite
number: float() reads 'nan' and 'inf', which were refused as "should be less than or equal
to 120" (or let through). Every float option of every command is declared by the one rule,
cli_params.number_option."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from sipctl.cli import COMMANDS, run
from sipctl.cli_params import number_option

OPTIONS = [("verify", "--timeout", 0.1, 120), ("audit", "--rate", 1, 200)]
OPTIONS += [("audit", "--max-seconds", 5, 600)]


@pytest.mark.parametrize(("command", "flag", "low", "high"), OPTIONS)
@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "infinity", "1e999", "abc"])
def test_a_float_option_refuses_what_is_no_number(
    command: str,
    flag: str,
    low: float,
    high: float,
    text: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run([command, flag, text, "-f", str(tmp_path / "none.yaml")]) == 1
    err = capsys.readouterr().err
    assert f"'{text}' is not a number: give a number from {low:g} to {high:g}" in err, err


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_the_rule_takes_exactly_the_finite_numbers_of_its_range(number: float) -> None:
    parse = number_option("--x", low=0.1, high=120.0, help="x").parser
    if 0.1 <= number <= 120.0:
        assert parse(str(number)) == number
    else:
        with pytest.raises(typer.BadParameter):
            parse(str(number))


def test_every_float_option_is_declared_by_the_rule() -> None:
    """A float option added tomorrow without number_option fails here."""
    rule = number_option("--x", low=0, high=1, help="x").parser.__qualname__
    found = []
    for name, (module, attribute) in COMMANDS.items():
        target = getattr(__import__(module, fromlist=[attribute]), attribute)
        callbacks = (
            [c.callback for c in target.registered_commands]
            if isinstance(target, typer.Typer)
            else [target]
        )
        for callback in callbacks:
            for param, hint in typing.get_type_hints(callback, include_extras=True).items():
                if typing.get_origin(hint) is typing.Annotated and hint.__origin__ is float:
                    (info,) = [
                        m for m in hint.__metadata__ if isinstance(m, typer.models.OptionInfo)
                    ]
                    assert info.parser is not None, (name, param)
                    assert info.parser.__qualname__ == rule, (name, param)
                    found.append((name, param))
    assert len(found) >= len(OPTIONS)
