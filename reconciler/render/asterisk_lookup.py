"""A declared name dialled in any case (``Director`` rings ``director``): one lookup. Pure.

A guest context holds every declared name once, in lower case, as an exact extension.
A name dialled in another case matches none of them and falls to the catch-all, which
folds it to lower case and looks it up once more. Nothing a caller dials can change a
step's arguments: Asterisk puts ``${EXTEN}`` into an argument string before it splits the
string at commas (``Goto(ctx,${EXTEN},1)`` with ``a,b`` in EXTEN is a jump the caller
chose), so the dialled text is only ever read whole, by functions that take their one
argument whole, and what reaches a ``Goto`` holds nothing but the characters of a name:

- ``TOLOWER`` folds it byte by byte (ASCII only, as C's ``tolower``);
- ``FILTER`` keeps the characters a name may hold (:data:`NAME_FILTER`, from
  ``schemas/names.py``) and drops every other; its string is everything after its first
  comma, commas included;
- ``LEN`` of the kept name and of the dialled one differ when anything was dropped: that is
  a wrong call, never another name (``Dir-ector`` does not ring ``director``, ``Boss,1``
  is not ``boss1``). The comparison sees numbers only, never caller text.

Measured on Asterisk 22 (tests/test_fail2ban_asterisk.py sends hostile names over SIP to
the real PBX, tests/test_asterisk_lookup.py checks this module's model of it): a function's
argument is what lies between its first ``(`` and its last ``)``, after the inner
``${...}`` are put in, and a value put in is never read as ``${...}`` again.

What it replaces, a pattern per name (``_[dD][iI]...``), measured on 22 by
bench/dialplan_scale.py at 10,000 users: ``dialplan reload`` 14.6-16.3 s with the patterns,
6.9-7.1 s with this lookup (an OPTIONS 1.2-1.3 ms and 0.7 ms).
"""

from __future__ import annotations

from sipctl.schemas.names import LOWER_NAME_CHARACTERS

# What FILTER keeps: the characters of a name in lower case (FILTER reads "a-z" as a range,
# and takes every other character here literally).
NAME_FILTER = LOWER_NAME_CHARACTERS
# The dialled name, folded and checked, as the hosting entry context passes it on.
NAME_VARIABLE = "SIPCTL_NAME"
NAME = f"${{{NAME_VARIABLE}}}"


def folded_name_steps(wrong: str) -> list[str]:
    """Leave the dialled name in lower case in :data:`NAME_VARIABLE`, or go to ``wrong``
    (an extension: ``<name>,1``) when it holds a character no name holds (the hosting entry
    context, which passes the name on to a customer's guest context)."""
    return [
        f"Set({NAME_VARIABLE}=${{FILTER({NAME_FILTER},${{TOLOWER(${{EXTEN}})}})}})",
        f"GotoIf($[${{LEN({NAME})}} != ${{LEN(${{EXTEN}})}}]?{wrong},1)",
    ]


def lookup_steps(wrong: str) -> list[str]:
    """The guest context's catch-all, for any name that is no exact extension: one step.

    A name with an upper-case letter and otherwise only a name's characters goes to its
    folded self (an exact name, or the catch-all once more); any other name to ``wrong``. So
    a call comes here at most twice, and the second time its name has no upper-case letter.
    ``IF`` picks between the two targets after both are put in, and splits at ``?`` and
    ``:``: the folded name holds neither, and the comparison is of numbers only.

    One step, as the catch-all always had: a pattern lends its later priorities to any
    extension of the context whose own ran out, and an extension added there by someone
    else (``dialplan add extension``) would then run the lookup after its last step and
    jump back to itself (seen on 22 with four steps here: the audit's open-relay probe, an
    extension of one failing Dial, got no answer)."""
    folded = f"${{FILTER({NAME_FILTER},${{TOLOWER(${{EXTEN}})}})}}"
    dialled = "${LEN(${EXTEN})}"
    lower = f"${{LEN(${{FILTER({NAME_FILTER},${{EXTEN}})}})}}"
    # the folded name lost nothing, and the dialled one had something to fold
    wanted = f"$[${{LEN({folded})}} = {dialled} & {lower} < {dialled}]"
    return [f"Goto(${{IF({wanted}?{folded}:{wrong})}},1)"]


def lookup_target(dialled: bytes) -> bytes | None:
    """The model of :func:`lookup_steps`: where the catch-all sends a dialled name (None:
    the wrong-name extension)."""
    folded = folded_name(dialled)
    return folded if folded is not None and folded != dialled else None


def folded_name(dialled: bytes) -> bytes | None:
    """The model of :func:`folded_name_steps`: what the steps leave in the variable for a
    dialled name (as Asterisk holds it: the request URI's user, unescaped), None for a
    wrong call."""
    lowered = dialled.lower()  # bytes: ASCII letters only, as C's tolower
    kept = bytes(c for c in lowered if _kept(c))
    return kept if len(kept) == len(dialled) else None


def _kept(byte: int) -> bool:
    return chr(byte) in _FILTER_SET


def _expand(spec: str) -> frozenset[str]:
    """FILTER's reading of its allowed characters: ``x-y`` is a range, the rest literal."""
    found: set[str] = set()
    index = 0
    while index < len(spec):
        if index + 2 < len(spec) and spec[index + 1] == "-":
            found.update(chr(c) for c in range(ord(spec[index]), ord(spec[index + 2]) + 1))
            index += 3
        else:
            found.add(spec[index])
            index += 1
    return frozenset(found)


_FILTER_SET = _expand(NAME_FILTER)
