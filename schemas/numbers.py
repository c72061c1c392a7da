"""The numbers of a spec and of the admin's files: whole numbers in a range (``Whole``) and
waits in seconds (``Wait``). Each is one rule: the type's validator, its bounds in the JSON
Schema (and so in docs/spec.md), and the message a human reads, which always says what was
expected, whatever was found (text, a fraction, ``.nan``, or infinity: YAML reads
``1.0e+400`` as that).

    ttl: Annotated[int, Whole(1, 2147483647, "seconds")]
    timeout: Annotated[float, Wait(300)]

And the format of a file, ``version: 1`` (``FormatVersion``), the number 1 as written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema

# The shortest wait sipctl accepts, in seconds. A network exchange is over in a few
# milliseconds at best (a DNS question to a server one hop away, an SSH handshake takes
# longer), and the operating system counts a socket's wait in whole milliseconds at best: a
# wait below 10 ms ends before any answer can arrive, so it is a mistake, never a choice.
MIN_WAIT = 0.01
# The longest: no run waits (or holds a lock) for longer than a week; a lock's expiry is a
# date, and a larger number ended in an OverflowError (``--lock-ttl 9999999h``).
MAX_WAIT = 7 * 86400.0


def _found(value: object) -> tuple[str, str]:
    """``value`` as the spec's author wrote it, and why it reads so when that is a surprise."""
    if isinstance(value, bool):
        return ("true" if value else "false"), ""
    if value is None:
        return "nothing", ": the key has no value"
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan", ": not a number"
        if math.isinf(value):
            sign = "" if value > 0 else "-"
            return (
                f"{sign}.inf",
                f": infinity, as YAML reads a number beyond {sign}1.8e+308 (like {sign}1.0e+400)",
            )
        return repr(value), ""
    if isinstance(value, int):
        return str(value), ""
    if isinstance(value, str):
        if _number_text(value):
            return value, ": YAML reads it as text, not as a number: write digits only"
        return f"the text {value!r}", ""
    if isinstance(value, dict):
        return "a section", ""
    if isinstance(value, list | tuple):
        return "a list", ""
    return type(value).__name__, ""


def _quoted_number(value: object) -> bool:
    """Text that is a number as written (``'5060'``, ``"-1"``): the quotes are the mistake."""
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


@dataclass(frozen=True)
class Whole:
    """A whole number from ``low`` to ``high`` (``unit``: what it counts, like seconds)."""

    low: int
    high: int
    unit: str = ""

    @property
    def expected(self) -> str:
        of = f" of {self.unit}" if self.unit else ""
        return f"a whole number{of} from {self.low} to {self.high}"

    def check(self, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            if self.low <= value <= self.high:
                return value
        elif _quoted_number(value):
            raise ValueError(f"remove the quotes: this is {self.expected}")
        found, why = _found(value)
        if isinstance(value, float) and value.is_integer() and self.low <= value <= self.high:
            why = f": write {int(value)}"
        raise ValueError(f"must be {self.expected} (found {found}){why}")

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from pydantic_core import core_schema

        # ``check`` decides; the inner schema (never failing after it) gives the JSON Schema.
        inner = core_schema.int_schema(ge=self.low, le=self.high, strict=True)
        return core_schema.no_info_before_validator_function(self.check, inner)


@dataclass(frozen=True)
class Wait:
    """A time sipctl waits, in seconds: from MIN_WAIT to ``high`` (at most MAX_WAIT),
    fractions allowed, never ``.nan`` or infinity."""

    high: float = MAX_WAIT

    def __post_init__(self) -> None:
        if not MIN_WAIT < self.high <= MAX_WAIT:
            raise ValueError(f"a wait is at most {MAX_WAIT:g} seconds")

    @property
    def expected(self) -> str:
        return f"a number of seconds from {MIN_WAIT:g} to {self.high:g}"

    def check(self, value: Any) -> float:
        seconds: float | None = None
        if isinstance(value, float):
            seconds = value
        elif isinstance(value, int) and not isinstance(value, bool):
            # a whole number beyond 1.8e308 has no float: it is more than any wait all the same
            seconds = float(value) if abs(value) < 2**1023 else math.inf * (1 if value > 0 else -1)
        elif isinstance(value, str) and _number_text(value):
            seconds = float(value)  # YAML reads 1e-1 as text; pydantic read it as a number
        if seconds is not None and MIN_WAIT <= seconds <= self.high:  # False for .nan
            return seconds
        found, why = _found(value)
        if seconds is not None and 0 < seconds < MIN_WAIT:
            why = f": a wait under {MIN_WAIT:g} s ends before any answer can arrive"
        elif seconds is not None and math.isfinite(seconds):
            why = ""  # a number written as text (1e-1) is read as one
        raise ValueError(f"must be {self.expected} (found {found}){why}")

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from pydantic_core import core_schema

        inner = core_schema.float_schema(ge=MIN_WAIT, le=self.high, allow_inf_nan=False)
        return core_schema.no_info_before_validator_function(self.check, inner)


def _number_text(text: str) -> bool:
    """Text that Python reads as a number (``1e400``, ``1e-3``: YAML 1.1 reads them as text)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _one_as_written(value: object) -> object:
    """A file's ``version`` is the number 1 as written: true and 1.0 equal 1 in Python, and
    pydantic's Literal took ``version: true`` (or ``yes``) and ``1.0`` for it; the files'
    JSON Schemas refuse true."""
    if isinstance(value, bool | float):
        found, why = _found(value)
        if isinstance(value, float) and value == 1:
            why = ": write 1"
        raise ValueError(f"must be the number 1, the only version so far (found {found}){why}")
    return value


@dataclass(frozen=True)
class _AsWritten:
    """``_one_as_written`` before the type's own check (its JSON Schema stays const 1)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from pydantic_core import core_schema

        return core_schema.no_info_before_validator_function(_one_as_written, handler(source))


FormatVersion = Annotated[Literal[1], _AsWritten()]
