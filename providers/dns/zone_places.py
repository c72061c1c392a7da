"""Where a zone file, and every file it ``$INCLUDE``s, may be: the places rule of
``reconciler/runner_places.py`` for zone files, and what is particular to zones.

``dns.file`` (provider zonefile) is written by whoever writes the spec: a merge request, a
hosting customer. The file is read by ``plan`` and rewritten by ``apply`` on the machine
that runs sipctl. So a spec does not choose that place (the spec says what, the admin says
how): a zone file must resolve, through ``..`` and symbolic links, inside

- the spec's own directory (below it, at any depth): for a hosting customer its hosting
  directory, where ``schemas/hosting_reach.py`` sees every other file's zone file; a
  single spec with ``file: mysite.zone`` beside it needs nothing more; or
- a directory the admin lists in the runner profile's ``zone_files`` (``/var/lib/bind``,
  or relative to the profile's own directory; the zonefile provider runs on the runner,
  so the runner's profile says where).

``check_zone_file`` refuses anything else before the file is read, at ``validate`` (as the
provider's offline check) and when the provider is opened. The files a zone ``$INCLUDE``s
obey the same places: ``include_copies`` reads each through sipctl's one read of a local
file (``read_regular_file``: a regular file only, no FIFO or device, at most
MAX_READ_BYTES) and hands dnspython a private copy.

Why copies: dnspython's zone reader opens an ``$INCLUDE``'s file itself, with a plain
``open(filename)`` inside ``Reader.read`` (dns/zonefile.py, 2.6 to 2.9), and offers no hook
to refuse or redirect it. So sipctl finds the ``$INCLUDE`` directives with dnspython's own
tokenizer, walking entries as its reader does (``zone_directives``), reads each file
itself, and rewrites that one line to name its private copy (in a directory only this
process's user may read) with the origin as written: dnspython then parses exactly what it
would have, and opens nothing sipctl did not check. No second zone
parser: only where directives begin is found here, every record is still dnspython's.

A relative ``$INCLUDE`` name is taken from the spec's directory, as a relative
``dns.file`` is (BIND takes both from its one ``directory``); dnspython alone took it from
wherever sipctl was started.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sipctl.errors import ProviderError, RefusedError
from sipctl.reconciler import runner_places
from sipctl.reconciler.runner_places import Places

if TYPE_CHECKING:
    from sipctl.schemas.loader import LoadedSpec

_INCLUDE_WORD = re.compile(r"\$include", re.IGNORECASE)  # where none is, no directive is
MAX_INCLUDE_DEPTH = 8  # a zone including a file including ... (a loop ends here too)
_HINT = runner_places.HINT


def places_of(loaded: LoadedSpec, env: Mapping[str, str]) -> Places:
    """The places of ``loaded``'s zone files under the runner profile ``env`` names."""
    from sipctl.reconciler.bindings import runner_of

    return runner_places.places_of(loaded, runner_of(env), runner_places.ZONE_FILES)


def check_zone_file(
    loaded: LoadedSpec, env: Mapping[str, str], resolved: Path | None = None
) -> Places:
    """Refuse ``loaded``'s ``dns.file`` when it resolves outside its places (naming the
    spec's line, the key, the resolved path and what to do); its places otherwise. Asked by
    the zonefile provider (and a plugin subclassing it, whatever its name) and its offline
    check: no switch on the provider's name here. ``resolved``: the path the provider
    edits, as it resolved it (else ``dns.file`` resolved here)."""
    places = places_of(loaded, env)
    dns = loaded.spec.dns
    if dns is None or not dns.file:
        return places
    real = str(resolved) if resolved else runner_places.resolved(loaded, dns.file)
    if not places.hold(real):
        raise RefusedError(
            f"{loaded.where(('dns', 'file'))}: dns.file: {dns.file}"
            + (f" is {real}" if real != dns.file else "")
            + f", {places.outside(real)}: move the zone file into the spec's directory and "
            "name it relative to the spec, or have the admin allow its directory in the "
            f"runner profile (zone_files: [{Path(real).parent}])",
            hint=_HINT,
        )
    return places


def offline_check(loaded: LoadedSpec) -> list[str]:
    """For ``sipctl validate``: the zone file's place, under this environment's runner
    profile (registered under ``sipctl.offline_checks``)."""
    check_zone_file(loaded, os.environ)
    return []


# --- $INCLUDE ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Include:
    start: int  # where "$INCLUDE <name>" is in the text (characters), on one line
    end: int
    line: int  # 1-based, as dnspython's tokenizer counts lines
    name: str  # the file as written


def _includes(text: str, filename: str) -> list[_Include]:
    """The ``$INCLUDE`` directives dnspython's reader would follow in ``text``."""
    from sipctl.providers.dns.zone_directives import directives

    found: list[_Include] = []
    for directive in directives(text, filename):
        if directive.name != "$INCLUDE":
            continue
        written = text[directive.start : directive.end]
        if "\n" in written or "\r" in written:
            raise ProviderError(
                f"{filename}:{directive.line}: an $INCLUDE and its file name are one line; "
                "sipctl reads no other form"
            )
        found.append(
            _Include(directive.start, directive.end, directive.line, directive.argument.value)
        )
    return found


@contextmanager
def include_copies(
    text: str, zone_file: Path, places: Places
) -> Iterator[tuple[str, dict[str, str]]]:
    """``text`` with each ``$INCLUDE`` naming a private copy of its file (read through
    sipctl's one read, checked against ``places``), and the copies' names -> the files
    they stand for (for errors). Without an ``$INCLUDE``, ``text`` itself, nothing made."""
    if not _INCLUDE_WORD.search(text) or not _includes(text, str(zone_file)):
        yield text, {}  # most zones: no second walk over their text
        return
    with tempfile.TemporaryDirectory(prefix="sipctl-include-") as temp:  # mode 0700
        shown: dict[str, str] = {}
        yield _rewritten(text, str(zone_file), (str(zone_file),), places, temp, shown), shown


def _rewritten(
    text: str,
    filename: str,
    chain: Sequence[str],
    places: Places,
    temp: str,
    shown: dict[str, str],
) -> str:
    found = _includes(text, filename)
    if not found:
        return text
    for include in reversed(found):  # from the end: the earlier offsets stay
        where = f"{_shown(filename, shown)}:{include.line}"
        real = _place_of(include.name, where, places)
        if real in chain or len(chain) > MAX_INCLUDE_DEPTH:
            raise ProviderError(
                f"{where}: $INCLUDE {real}: includes nest more than {MAX_INCLUDE_DEPTH} "
                "deep or include themselves; sipctl reads no such zone"
            )
        content = _read(real, where)
        copy = str(Path(temp) / f"include-{len(shown) + 1}.zone")
        shown[copy] = real
        nested = _rewritten(content, copy, (*chain, real), places, temp, shown)
        with Path(copy).open("x", encoding="utf-8") as handle:
            handle.write(nested)
        written = text[include.start : include.end]
        after = written[len(written.rstrip()) :]  # the blank before an origin stays
        text = f'{text[: include.start]}$INCLUDE "{copy}"{after}{text[include.end :]}'
    return text


def _place_of(name: str, where: str, places: Places) -> str:
    """The resolved file an ``$INCLUDE`` names (relative: from the spec's directory),
    refused outside ``places``."""
    resolved = os.path.realpath(Path(places.spec_dir) / name)  # no ~, as BIND and dnspython
    if not places.hold(resolved):
        raise RefusedError(
            f"{where}: $INCLUDE {name}"
            + (f" is {resolved}" if resolved != name else "")
            + f", {places.outside(resolved)}: keep the "
            "files a zone includes beside it, or have the admin allow their directory in the "
            f"runner profile (zone_files: [{Path(resolved).parent}])",
            hint=_HINT,
        )
    return resolved


def _read(path: str, where: str) -> str:
    from sipctl.errors import FileTooLarge
    from sipctl.providers.bookkeeping import MAX_READ_BYTES
    from sipctl.schemas.admin_files import read_regular_file

    try:
        data = read_regular_file(Path(path), MAX_READ_BYTES)
    except FileTooLarge as exc:
        raise ProviderError(f"{where}: $INCLUDE {exc}") from None
    except OSError as exc:
        raise ProviderError(
            f"{where}: $INCLUDE {path}: cannot read it: {exc.strerror or exc}"
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # its bytes are not shown: it may be anyone's file
        raise ProviderError(f"{where}: $INCLUDE {path} is not UTF-8 text") from None


def _shown(filename: str, shown: Mapping[str, str]) -> str:
    return shown.get(filename, filename)
