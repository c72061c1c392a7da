"""Every property's count goes through ``examples()`` (tests/fixtures/properties.py), so the
fast tier tries a fifth of it and the whole suite all of it: a literal count would run in
full in the edit-test loop too."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
_LITERAL = re.compile(r"max_examples\s*=\s*\d")


def test_no_property_gives_a_literal_count() -> None:
    literal = [
        f"{path.relative_to(TESTS)}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "properties.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _LITERAL.search(line)
    ]
    assert literal == [], "write max_examples=examples(N):\n" + "\n".join(literal)
