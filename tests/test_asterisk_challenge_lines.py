"""Asterisk's config reader skips a line longer than it reads, and what sipctl writes stays
within it (asterisk_conf.MAX_LINE), against the real Asterisk 22.

Measured here: a dialplan line of MAX_LINE characters is read, one more is skipped whole
(WARNING "Line N too long, skipping"). The guests' ``match_request_uri`` under
``unknown_callers: challenge`` grows with a customer's names: 120 names of 44 letters made
one line of 21,000 characters, which Asterisk skipped; that customer's identify section
then matched nothing and every one of its guests was challenged (401), while apply checked
the first customer's section only and said all was well. The names now take as many
identify sections as they need, each line within the limit, and every name answers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.asterisk import AsteriskInstance, running_asterisk
from fixtures.hosting import TWO_CUSTOMERS, customer_spec, host_spec, write_hoster
from fixtures.sip_client import SipCaller

from sipctl.reconciler.asterisk_conf import MAX_LINE

pytestmark = pytest.mark.asterisk


def test_asterisk_reads_a_line_of_max_line_characters_and_skips_a_longer_one() -> None:
    with running_asterisk() as pbx:
        offset = pbx.log_size()
        extensions = pbx.config_dir / "extensions.conf"
        lines = []
        for length in (MAX_LINE, MAX_LINE + 1):
            head = f"exten => l{length},1,NoOp("
            lines.append(head + "x" * (length - len(head) - 1) + ")")
        assert [len(line) for line in lines] == [MAX_LINE, MAX_LINE + 1]
        extensions.write_text(extensions.read_text() + "\n[lines]\n" + "\n".join(lines) + "\n")
        pbx.rx("dialplan reload")
        shown = pbx.rx("dialplan show lines")
        assert f"'l{MAX_LINE}'" in shown and f"'l{MAX_LINE + 1}'" not in shown, shown
        pbx.wait_log(r"too long, skipping", offset)


# Customer c's names: 120 of 44 characters, 40 letters each (160 characters of pattern).
MANY = {f"{'abcdefghij' * 4}{n:04d}": "105" for n in range(120)}


def test_a_customer_with_many_names_reaches_every_one_and_the_others_too(
    tmp_path: Path,
) -> None:
    with running_asterisk() as pbx:
        _many_names(pbx, tmp_path)


def _many_names(pbx: AsteriskInstance, directory: Path) -> None:
    offset = pbx.log_size()
    asterisk = {**pbx.spec_section(), "unknown_callers": "challenge"}
    customers = {**TWO_CUSTOMERS, "c": customer_spec("c", users={"director": "105", **MANY})}
    write_hoster(directory, host_spec(pbx, asterisk=asterisk), customers)
    text = (pbx.config_dir / "pjsip_sipctl.conf").read_text()
    assert max(len(line) for line in text.splitlines()) <= MAX_LINE
    assert "sipctl-guest-names-c.example_3]" in text  # 19,000 characters of names: 3 parts
    assert "too long" not in pbx.log_since(offset)
    names = sorted(MANY)
    with SipCaller(pbx.sip_port) as caller:
        for user, domain in [
            (names[0], "c.example"),
            (names[60], "C.Example."),
            (names[-1], "c.example"),
            ("director", "c.example"),
            ("director", "a.example"),
            ("alex", "a.example"),
            ("director", "b.example"),
        ]:
            assert caller.options(user, domain=domain).final == 200, (user, domain)
        for user, domain in [(names[-1], "a.example"), ("alex", "c.example")]:
            assert caller.options(user, domain=domain).final == 401, (user, domain)
