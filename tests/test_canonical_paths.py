"""Paths on a host have one spelling: validate, the rules between keys and the read gate.

``tls: {cert_file: //etc/asterisk/keys/asterisk.key, key_file: /etc/asterisk/keys/asterisk.key}``
was valid (the two-files rule compared strings) and the read gate then tabled ``f //…`` and
handed out the private key whole. Every spelling of a path (``//``, ``/./``, ``dir/..``,
trailing ``/``) now means the one path the kernel reaches, wherever sipctl compares paths.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sipctl.errors import SpecError
from sipctl.providers.transport.read_gate import GateReads, GateTable, render_gate, request
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.values import canonical_path

SEGMENT = st.text("abcxyz0123456789._-", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)
CANONICAL = st.lists(SEGMENT, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))


@st.composite
def spellings(draw: st.DrawFn, canonical: str) -> str:
    """Another spelling of ``canonical``: doubled slashes, ``.``, ``name/..`` detours and
    trailing slashes anywhere."""
    parts = canonical.strip("/").split("/")
    out: list[str] = []
    for part in parts:
        for _ in range(draw(st.integers(0, 2))):
            out.append(draw(st.sampled_from([".", "", f"{draw(SEGMENT)}/.."])))
        out.append(part)
    text = "/" * draw(st.integers(1, 3)) + "/".join(out)
    return text + "/" * draw(st.integers(0, 2))


@given(data=st.data(), canonical=CANONICAL)
@settings(max_examples=300, deadline=None)
def test_every_spelling_has_one_canonical_form(data: st.DataObject, canonical: str) -> None:
    spelt = data.draw(spellings(canonical))
    assert canonical_path(spelt) == canonical
    assert canonical_path(canonical) == canonical


@given(data=st.data(), canonical=CANONICAL)
@settings(max_examples=60, deadline=None)
def test_the_canonical_form_is_the_file_the_kernel_reaches(
    data: st.DataObject, canonical: str
) -> None:
    """Lexical is exact where no link is followed (sipctl follows none): the kernel, given
    any spelling, opens the very file the canonical path names, or nothing at all."""
    spelt = data.draw(spellings(canonical))
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        target = Path(str(root) + canonical)
        walked = root
        for part in spelt.strip("/").split("/")[:-1]:  # the detours' directories
            if part == "..":
                walked = walked.parent
            elif part not in ("", "."):
                walked = walked / part
                walked.mkdir(exist_ok=True)
        assume(not target.is_dir())
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(canonical)
        try:
            fd = os.open(str(root) + spelt, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:  # e.g. "file/..": the kernel opens nothing, which reads nothing
            return
        try:
            assert os.path.samestat(os.fstat(fd), target.stat())
        finally:
            os.close(fd)


def _spec(cert: str, key: str) -> str:
    return yaml.safe_dump(
        {
            "version": 1,
            "domain": "example.org",
            "transports": {"tls": {"port": 5061}},
            "servers": [{"host": "pbx.example.org", "ipv4": ["192.0.2.5"]}],
            "users": {"director": 105},
            "asterisk": {"target": "local", "tls": {"cert_file": cert, "key_file": key}},
        }
    )


@given(data=st.data())
@settings(max_examples=80, deadline=None)
def test_validate_sees_one_file_however_it_is_spelt(data: st.DataObject) -> None:
    key = "/etc/asterisk/keys/asterisk.key"
    spelt = data.draw(spellings(key))
    with pytest.raises(SpecError) as caught:
        load_spec_text(_spec(spelt, key), source="sipctl.yaml", base_dir=Path("/"))
    assert "two different files" in str(caught.value.problems or caught.value.message)
    loaded = load_spec_text(
        _spec("/etc/asterisk/keys/asterisk.pem", spelt), source="sipctl.yaml", base_dir=Path("/")
    )
    assert loaded.spec.asterisk is not None and loaded.spec.asterisk.tls is not None
    assert loaded.spec.asterisk.tls.key_file == key


@given(data=st.data(), canonical=CANONICAL)
@settings(max_examples=120, deadline=None)
def test_the_gate_tables_one_spelling_and_never_a_key_as_a_file(
    data: st.DataObject, canonical: str
) -> None:
    spelt = data.draw(spellings(canonical))
    table = GateTable()
    table.add(GateReads("ssh://pbx", keys=(canonical,)))
    table.add(GateReads("ssh://pbx", files=(spelt,), redacted=(spelt + "/",)))
    assert table.files == {} and list(table.keys) == [canonical]
    other = GateTable()
    other.add(GateReads("ssh://pbx", files=(spelt, canonical)))
    assert list(other.files) == [canonical]
    gate = render_gate(other, title="t")
    assert f"'f {canonical}')" in gate and "'f //" not in gate
    marker = "@sipctl-0123456789abcdef@"
    assert f"f {canonical}\n".encode() in request(marker, files=[spelt])
