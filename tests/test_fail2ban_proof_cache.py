"""fail2ban-regex's answers are kept per process, keyed by the filter's exact text (a plan
and its apply prove a filter once), and bounded: a fleet worker lives long and meets ever
new filters. Against the real fail2ban-regex."""

from __future__ import annotations

import shutil

from fixtures.common import EXAMPLES

from sipctl.providers import fail2ban
from sipctl.reconciler.fail2ban_proof import judge, log_text, proof_lines
from sipctl.reconciler.render.fail2ban import filter_text
from sipctl.schemas.loader import load_spec


def test_a_filter_is_proven_once_and_the_answers_kept_are_bounded() -> None:
    program = shutil.which("fail2ban-regex")
    assert program is not None, "fail2ban-regex (Debian: fail2ban)"
    spec = load_spec(EXAMPLES / "mysite.yaml").spec
    text, lines = filter_text(spec), proof_lines()
    fail2ban._proven.cache_clear()
    first = fail2ban._prove_here(program, text, log_text(lines))
    assert first is not None and judge(lines, first) == []  # the real answer, judged sound
    assert fail2ban._prove_here(program, text, log_text(lines)) == first
    assert fail2ban._proven.cache_info().hits == 1  # the same text: not run again
    fail2ban._prove_here(program, text + "\n", log_text(lines))  # another text: run again
    info = fail2ban._proven.cache_info()
    assert (info.misses, info.currsize) == (2, 2)
    assert info.maxsize == fail2ban._PROVEN_ENTRIES <= 1024  # bounded
