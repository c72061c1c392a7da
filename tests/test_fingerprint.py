"""A live state's fingerprint is the sha256 of its documented canonical JSON document.

``LiveState.fingerprint`` feeds the digest a resource at a time, a value's JSON in pieces (a
large mapping a few thousand keys at a time) each escaped a slice at a time, without building
the document (12 MB for the dialplan at 50,000 users); a saved plan compares fingerprints made by different runs, so the digest must be
exactly the document's, whatever text the values hold.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.reconciler import resources
from sipctl.reconciler.resources import Address, LiveState, canonical_json

# Text with what JSON escapes (quotes, backslashes, controls) and what it leaves (non-ASCII,
# DEL, line separators); no lone surrogates (no JSON text can be encoded with them).
_text = st.text(
    alphabet=st.one_of(
        st.sampled_from('"\\\x00\x1f\n\t\x7f\u2028é/'),
        st.characters(codec="utf-8"),
    ),
    max_size=12,
)
_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), _text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)),
    max_leaves=12,
)
_addresses = st.builds(Address, st.sampled_from(["dns", "asterisk"]), _text, _text)


def documented(state: LiveState) -> str:
    document = {
        "extra": state.fingerprint_extra,
        "resources": sorted(
            [str(address), canonical_json(value)] for address, value in state.resources.items()
        ),
    }
    return "sha256:" + hashlib.sha256(canonical_json(document).encode()).hexdigest()


@settings(max_examples=examples(300), deadline=None)
@given(
    st.dictionaries(_addresses, _values, max_size=5),
    st.one_of(_values, st.dictionaries(_text, _values, max_size=20)),
    st.integers(1, 7),
)
def test_the_fingerprint_is_the_documents_digest(
    read: dict[Address, Any], extra: Any, step: int
) -> None:
    state = LiveState(resources=read, fingerprint_extra=extra)
    assert state.fingerprint() == documented(state)
    # a large mapping's JSON in pieces of a few keys, each escaped a few characters at a
    # time, as the dialplan's is in pieces of thousands and slices of a million
    pieces = list(resources._json_pieces(extra, keys=step))
    assert "".join(pieces) == canonical_json(extra)
    digest = hashlib.sha256(b'"')
    for piece in pieces:
        resources._update_json_string(digest, piece, step)
    digest.update(b'"')
    assert (
        digest.digest() == hashlib.sha256(canonical_json(canonical_json(extra)).encode()).digest()
    )


def test_a_large_mapping_fed_in_pieces_has_the_documents_digest() -> None:
    dialplan = {f"guest-call,user{i}": [f'1,Set(X="{i}\\")', f"n,Dial(é/{i})"] for i in range(9000)}
    state = LiveState(resources={Address("asterisk", "file", "x.conf"): dialplan})
    assert state.fingerprint() == documented(state)
