"""Property tests of the fast paths in Asterisk's config reader (reconciler/asterisk_conf.py).

The reader runs over every line of every managed file on every plan (50,000 lines at 10,000
users), so it takes shortcuts; each shortcut is checked here against the plain definition.
"""

from __future__ import annotations

from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.reconciler.asterisk_conf import strip_comment


def strip_comment_by_definition(line: str) -> str:
    """Character by character: ``\\;`` is a literal ``;``, the first bare ``;`` ends the line;
    C's isspace stripped (as ast_strip)."""
    out: list[str] = []
    i = 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line) and line[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if line[i] == ";":
            break
        out.append(line[i])
        i += 1
    return "".join(out).strip(" \t\n\v\f\r")


# Lines made mostly of the characters that matter, so escapes and comments meet often.
lines = st.text(alphabet=st.sampled_from("ab ;\\\t=,()x"), max_size=40) | st.text(max_size=40)


@settings(max_examples=examples(2000), deadline=None)
@given(lines)
def test_strip_comment_matches_its_definition(line: str) -> None:
    assert strip_comment(line) == strip_comment_by_definition(line)
