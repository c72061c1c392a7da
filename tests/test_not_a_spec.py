"""A file that is no spec at all, given to -f by mistake, is refused without showing its lines.

Credential files have lines with no space after a colon (``/etc/shadow``'s
``user:hash:...:::``); YAML reads a line that ends in a colon as one key, and every unknown
key used to be printed in full: ``sipctl validate -f /etc/shadow`` printed every hash.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.schemas.messages import known_keys

SPEC_KEYS = frozenset(known_keys(()))
_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789", min_size=4, max_size=12)
# "Q9" starts no word of a message: a secret found in the output was printed from the file
_secret = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789$./*!=+", max_size=40).map(
    lambda text: "Q9" + text
)
# /etc/shadow's lines end in ':::', which makes each line a key of a mapping
credential_line = st.tuples(
    _word, st.lists(_secret, min_size=1, max_size=4), st.sampled_from(["", ":", ":::"])
).map(lambda parts: ":".join([parts[0], *parts[1]]) + parts[2])


@settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))
@given(lines=st.lists(credential_line, min_size=1, max_size=6))
def test_a_credential_file_is_refused_without_its_lines(
    lines: list[str], tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    if any(line.split(":", 1)[0] in SPEC_KEYS for line in lines):
        return  # a line that starts like a spec's key makes it a (broken) spec
    path: Path = tmp_path_factory.mktemp("stranger") / "secrets.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for command in (["validate", "-f", str(path)], ["plan", "-f", str(path)]):
        assert run(command) == 1
        out, err = capsys.readouterr()
        # or "not valid YAML" at its line, or "must be a mapping" (a lone '0000:0000' is a
        # number to YAML 1.1): never a line of the file
        assert err.startswith(f"Error: {path}:"), err
        for line in lines:
            for secret in line.split(":")[1:]:
                assert not secret.startswith("Q9") or secret not in out + err, (secret, err)


def test_shadow_lines_are_not_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "shadow"
    path.write_text("root:$6$salt$hashhashhash:20228:0:99999:7:::\nbin:*:20228:0:99999:7:::\n")
    assert run(["validate", "-f", str(path)]) == 1
    err = capsys.readouterr().err
    assert "$6$salt$hashhashhash" not in err
    assert "version: 1" in err


def test_a_spec_missing_its_header_still_gets_each_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file with one key of a spec is a spec with mistakes: each is named, as before."""
    path = tmp_path / "sipctl.yaml"
    path.write_text("users: {director: 105}\nbogus: 1\n")
    assert run(["validate", "-f", str(path)]) == 1
    err = capsys.readouterr().err
    assert "version: required key is missing" in err
    assert "unknown key 'bogus'" in err
