"""A hoster's directory: one file per PBX host (``hosting``), one per customer (``host``).

The files of one directory are read together: a host file serves every customer file beside
it that names it, and a customer file takes the transports and servers its DNS records point
at from the host file beside it (unless it gives its own). A file that is neither is one
company's spec, host and customer at once, and nothing here touches it.

A customer file that does not load makes its host's file fail too: planned without it, the
host would remove that customer.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sipctl.errors import SpecError
from sipctl.schemas.hosting_reach import check_reach, reading_once, remember

if TYPE_CHECKING:
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Spec

SPEC_SUFFIXES = (".yaml", ".yml")
_HOSTING_RE = re.compile(r"^hosting\s*:", re.M)


def _host_re(name: str) -> re.Pattern[str]:
    return re.compile(rf"^host\s*:\s*['\"]?{re.escape(name)}['\"]?\s*(?:#.*)?$", re.M)


def _may_name(name: str) -> re.Pattern[str]:
    """What a file that names host ``name`` in any YAML spelling holds, where ``_host_re``
    (``host: pbx1`` on a line) misses it: the name as a word (after a quoted key ``"host":
    pbx1``, a tag ``!!str pbx1``, in a block or flow scalar), or a backslash (an escape in a
    double-quoted scalar may spell it, ``"pb\\x781"``). Such a file, valid on its own, was
    left out, and the host's plan removed that customer."""
    return re.compile(rf"(?<![a-z0-9-]){re.escape(name)}(?![a-z0-9-])|\\", re.I)


def _siblings(path: Path) -> list[Path]:
    here = path.resolve()
    return sorted(
        p
        for p in here.parent.iterdir()
        if p.suffix in SPEC_SUFFIXES and p.is_file() and p.resolve() != here
    )


# A customer finds its host among the host files beside it, and a plan of a directory of
# 1,000 customers loads each customer once: the directory's host files are found once, and
# each host file loaded once, per process. Both caches are keyed by path, and a fleet
# worker plans each change of a hosting unit in a private copy of its own (a new directory
# each time) for weeks: so they are bounded, and what was evicted is found again.
# 1,024 directories: more than one run reads (a run of every directory of a repository
# holds a few dozen), a few hundred KB of paths.
_DIRECTORIES_KEPT = 1024
# 256 host files: each customer asks every host file of its directory for its name, one
# after the other, so a directory of more PBX hosts than this would load each of them once
# per customer; a loaded host file holds about 8 KB (2 MB in all).
_HOST_FILES_KEPT = 256


def _host_files(directory: Path) -> tuple[Path, ...]:
    """The files of ``directory`` that look like host files (``hosting:`` at the top)."""
    # a file added, removed or renamed changes the directory's mtime
    return _host_files_at(directory, directory.stat().st_mtime_ns)


@lru_cache(maxsize=_DIRECTORIES_KEPT)
def _host_files_at(directory: Path, mtime: int) -> tuple[Path, ...]:
    return tuple(
        p
        for p in sorted(directory.iterdir())
        if p.suffix in SPEC_SUFFIXES and p.is_file() and _is_host_file(read_text(p))
    )


def _is_host_file(text: str) -> bool:
    """A ``hosting:`` at the top, however YAML spells it: a host file written as JSON or
    with quoted keys was no host to its customers, which were refused."""
    if _HOSTING_RE.search(text):
        return True
    if "hosting" not in text:
        return False
    from sipctl.reconciler.gitops.spec_files import parsed_top_keys

    return "hosting" in parsed_top_keys(text)


def read_text(path: Path) -> str:
    """The text of the file ``path`` beside the one being loaded, or "" when it is no spec
    of ours: unreadable, a FIFO (not waited on), not UTF-8, or larger than a spec may be
    (``_load_sibling`` says which of a file it loads; a customer's file that does not load
    keeps its host from taking the customer for departed, ``reconciler/departures.py``),
    or a link out of the directory where the run is strict (``schemas/spec_links.py``)."""
    from sipctl.errors import FileTooLarge

    try:
        return _spec_text(path)
    except (OSError, UnicodeDecodeError, FileTooLarge, SpecError):
        return ""


def _spec_text(path: Path) -> str:
    """The text of the spec file ``path``; SpecError when it is a link the run does not
    follow (``spec_links.refuse_link_out``)."""
    from sipctl.schemas.admin_files import read_regular_file
    from sipctl.schemas.loader import MAX_SPEC_BYTES
    from sipctl.schemas.spec_links import refuse_link_out

    refuse_link_out(path)
    return read_regular_file(path, MAX_SPEC_BYTES).decode("utf-8")


def _load_sibling(path: Path, role: str, what_to_do: str | None = None) -> LoadedSpec:
    """The file ``path`` beside the one being loaded, which fails with it when it does not
    load: its error says what ``path`` is to that file (``role``), and ``what_to_do``."""
    from sipctl.errors import FileTooLarge
    from sipctl.schemas.loader import load_spec_text

    try:
        try:
            text = _spec_text(path)
        except FileTooLarge as exc:
            raise SpecError(f"the spec file {exc}") from None
        except (OSError, UnicodeDecodeError):
            text = ""  # load_spec_text says what it lacks
        return load_spec_text(text, source=str(path), base_dir=path.parent)
    except SpecError as exc:
        hint = "; ".join(h for h in (what_to_do, exc.hint) if h) or None
        raise SpecError(f"{path} ({role}): {exc.message}", exc.problems, hint=hint) from None


def _fix_customer(host: str, path: Path) -> str:
    """What to do when a customer's file does not load, seen from its host's plan."""
    return (
        f"{path} is a customer file of {host}, and {host}'s plan needs every customer "
        "file to load (planned without one, it would remove that customer): fix the file, "
        "or delete it to remove the customer"
    )


def customers_of(host: Spec, path: Path) -> tuple[Spec, ...]:
    """The customer files beside ``path`` that name ``host``'s hosting.name."""
    return tuple(_served(c.spec, host) for c in _customer_files(host, path))


def _customer_files(host: Spec, path: Path) -> list[LoadedSpec]:
    """The customer files beside ``path`` that name ``host``'s hosting.name, loaded."""
    if host.hosting is None:
        return []
    named = _host_re(host.hosting.name)
    may_name = _may_name(host.hosting.name)
    loaded: list[LoadedSpec] = []
    for p in _siblings(path):
        text = read_text(p)
        shown = path.parent / p.name  # as the host's path was given: beside it
        if named.search(text):  # a customer's line: the host fails with its file
            role = f"a customer of {host.hosting.name}"
            loaded.append(_load_sibling(shown, role, _fix_customer(host.hosting.name, shown)))
        elif may_name.search(text):  # maybe one, in another spelling: one that loads
            try:
                loaded.append(_load_sibling(shown, "a file beside its host"))
            except SpecError:
                continue  # not seen as a customer: departures.py names such files
    loaded = [c for c in loaded if c.spec.host == host.hosting.name]
    _check_customers(host, path, loaded)
    with reading_once():  # the directory once for all the host's customers
        for customer in loaded:
            remember(customer)  # loaded once: their reaches are known without loading again
        for customer in loaded:
            check_reach(customer, Path(customer.source))
    return loaded


def file_digest(text: str) -> str:
    """What a plan records of a file it was made of (a spec's own text and the files beside
    it that it was composed with)."""
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def dialplan_domain(domain: str) -> str:
    """``domain`` as the host's dialplan tells customers apart: Asterisk ignores '-' in
    extension names, and each domain is one there (a-b.example and ab.example would be the
    same customer); case and a trailing dot are no part of a domain."""
    return domain.lower().removesuffix(".").replace("-", "")


def _check_customers(host: Spec, path: Path, customers: list[LoadedSpec]) -> None:
    """One host's customers fit together: each domain once, no phones in the entry context,
    each in the context the host binds it to (hosting.local_contexts)."""
    if host.hosting is None or host.asterisk is None:
        return
    first: dict[str, LoadedSpec] = {}
    own = dialplan_domain(host.domain)
    for customer in customers:
        if dialplan_domain(customer.spec.domain) == own:
            at = _load_sibling(path, "a host file").where(("domain",))
            same = customer.spec.domain.lower() == host.domain.lower()
            raise SpecError(
                f"{customer.where(('domain',))}: domain: {customer.spec.domain} "
                + ("is" if same else "is to Asterisk (which ignores '-' in names) the same as")
                + f" the domain of the host {host.hosting.name} itself ({at}); a customer file "
                "names its customer's own domain"
            )
        domain = customer.spec.domain.lower()
        other = first.setdefault(dialplan_domain(domain), customer)
        if other is customer:
            continue
        same = other.spec.domain.lower() == domain
        raise SpecError(
            f"{customer.where(('domain',))}: domain: {domain} "
            + ("is also" if same else "is to Asterisk (which ignores '-' in names) the same as")
            + f" the domain of {other.where(('domain',))}, another customer of "
            f"{host.hosting.name}; "
            + ("keep one file per domain" if same else "serve one of them from another host")
        )
    entry = host.asterisk.guest_context
    for customer in customers:
        if (customer.spec.local_context or "").lower() == entry.lower():
            at = _load_sibling(path, "a host file").where(("asterisk", "guest_context"))
            raise SpecError(
                f"{customer.where(('local_context',))}: local_context: {entry} is the entry "
                f"context of {host.hosting.name}'s guests (asterisk.guest_context, {at}); a "
                "customer's phones need a context of their own: name the context its phones "
                "are in"
            )
    if host.hosting.local_contexts is not None:
        host_file = _host_file(path.resolve(), path)  # loaded once for its 1,000 customers
        for customer in customers:
            check_binding(host, host_file, customer)


def check_binding(host: Spec, host_file: LoadedSpec, customer: LoadedSpec) -> None:
    """The customer's local_context is the one its host binds its domain to, when the host
    file binds them (hosting.local_contexts): a customer file, written by or for the
    customer, chose any context before, another customer's phones or the admin's trunk
    context among them, and its guests dialled there. ``host_file`` (the host's file as it
    stands beside the customer) says where the binding is written."""
    hosting = host.hosting
    if hosting is None or hosting.local_contexts is None:
        return
    domain = customer.spec.domain
    asked = customer.spec.local_context
    found = hosting.bound_contexts.get(dialplan_domain(domain))
    if found is not None and not _same_domain(found[0], domain):
        # a-b.example is bound, ab.example asks: one customer in the dialplan, but not the
        # domain the admin bound (its file may be gone, and this one a stranger's)
        written = _written_bindings(host_file).get(dialplan_domain(found[0]), found[0])
        at = host_file.where(("hosting", "local_contexts", written))
        raise SpecError(
            f"{customer.where(('domain',))}: domain: {domain} is not listed in "
            f"hosting.local_contexts of the host {hosting.name}; {written} is ({at}), which "
            "the host's dialplan cannot tell from it (Asterisk ignores '-' in names), so its "
            f"binding is not this domain's; the host's admin binds {domain} itself (and "
            f"removes {written}'s binding if that customer is gone)"
        )
    if found is None:
        at = host_file.where(("hosting", "local_contexts"))
        raise SpecError(
            f"{customer.where(('domain',))}: domain: {domain} is not listed in "
            f"hosting.local_contexts of the host {hosting.name} ({at}), which binds each "
            f"customer to the dialplan context of its phones (this file asks for "
            f"local_context: {asked}); the host's admin adds '{domain}: <the context of its "
            "phones>' there"
        )
    listed, context = found
    if asked != context:
        # the mapping's line when the file spells the domain otherwise (Beta.Example.): the
        # model holds it lower-cased, the positions as written
        written = _written_bindings(host_file).get(dialplan_domain(listed), listed)
        at = host_file.where(("hosting", "local_contexts", written))
        raise SpecError(
            f"{customer.where(('local_context',))}: local_context: {asked} is not the "
            f"context the host {hosting.name} binds {domain} to: {context} "
            f"(hosting.local_contexts, {at}); write local_context: {context}, or ask the "
            "host's admin to change the binding"
        )


def _same_domain(listed: str, domain: str) -> bool:
    """The binding's domain is ``domain`` itself (case and a trailing dot aside)."""
    return listed.lower().removesuffix(".") == domain.lower().removesuffix(".")


def unbound_contexts_note(spec: Spec) -> str | None:
    """What a host's plan says while its customer files choose their own contexts."""
    if spec.hosting is None or spec.hosting.local_contexts is not None:
        return None
    return (
        f"hosting.local_contexts is not set: the customer files of {spec.hosting.name} choose "
        "their own dialplan contexts (local_context), where their users' extensions are "
        "dialled for guests, another customer's or a trunk's among them; bind each customer "
        "domain to its phones' context in hosting.local_contexts"
    )


def stale_bindings(loaded: LoadedSpec) -> list[str]:
    """A host file's hosting.local_contexts lines whose domain no customer file beside it
    declares (a customer deleted, its binding left behind): harmless, so said and not
    refused, but a new file of that domain would take that context unasked."""
    hosting = loaded.spec.hosting
    if hosting is None or hosting.local_contexts is None:
        return []
    served = {dialplan_domain(c.domain) for c in loaded.spec.customers}
    stale = [(d, c) for d, c in hosting.local_contexts.items() if dialplan_domain(d) not in served]
    if not stale:
        return []
    written = _written_bindings(loaded)
    notes = []
    for domain, context in stale:
        key = written.get(dialplan_domain(domain), domain)  # as the file spells it
        notes.append(
            f"{loaded.where(('hosting', 'local_contexts', key))}: hosting.local_contexts "
            f"binds {key} to {context}, but no customer file of {hosting.name} beside this "
            f"file declares domain: {domain}; if that customer is gone, remove the line (a "
            "new customer file of that domain would otherwise be bound to that context at once)"
        )
    return notes


def _written_bindings(loaded: LoadedSpec) -> dict[str, str]:
    """The keys of a host file's hosting.local_contexts as its text spells them (the model
    holds them lower-cased, the positions under the spelling), by ``dialplan_domain``."""
    listed = loaded.positions.keys_under(("hosting", "local_contexts"))
    return {dialplan_domain(key): key for key in listed}


def _served(customer: Spec, host: Spec) -> Spec:
    """``customer`` served by ``host``: the host's transports and servers, unless its own."""
    update: dict[str, object] = {}
    if "transports" not in customer.model_fields_set:
        update["transports"] = host.transports
    if "servers" not in customer.model_fields_set:
        update["servers"] = host.servers
    return customer.with_host(host, update)


def _host_file(path: Path, shown: Path) -> LoadedSpec:
    """The host file ``path`` (named ``shown`` beside the file being loaded), loaded once
    per text: reading is cheap, loading not."""
    return _host_loaded(path, shown, read_text(path))


@lru_cache(maxsize=_HOST_FILES_KEPT)
def _host_loaded(path: Path, shown: Path, text: str) -> LoadedSpec:
    """``shown`` loaded; ``text``, its text, is in the key: a changed file loads again."""
    return _load_sibling(shown, "a host file")


def _host_named(name: str, path: Path) -> tuple[Path, Spec] | None:
    """The host file beside ``path`` with ``hosting.name`` ``name`` (and its path), or None.
    Two such files (a host file copied for a new PBX, its name left as it was) would each
    serve every customer that names it: refused, naming both."""
    found = [
        (sibling, loaded)
        for sibling in _host_files(path.resolve().parent)
        for loaded in [_host_file(sibling, path.parent / sibling.name)]
        if loaded.spec.hosting is not None and loaded.spec.hosting.name == name
    ]
    if len(found) > 1:
        where = [loaded.where(("hosting", "name")) for _, loaded in found]
        raise SpecError(
            f"{where[1]}: hosting.name: {name} is also the name of the host file {where[0]}; "
            "each PBX host's file has a name of its own (its customers name it in 'host')"
        )
    return (found[0][0], found[0][1].spec) if found else None


def host_of(customer: Spec, path: Path) -> Spec | None:
    """The host file beside ``path`` whose hosting.name the customer names, or None."""
    found = _host_named(customer.host, path) if customer.host is not None else None
    return found[1] if found is not None else None


def serving_host(customer: Spec, path: Path) -> Spec | None:
    """The host file beside ``path`` that serves ``customer``, with all its customers (what
    a check of the whole host, such as audit's, needs), or None."""
    found = _host_named(customer.host, path) if customer.host is not None else None
    if found is None:
        return None
    sibling, spec = found
    return spec.with_customers(customers_of(spec, sibling))


def compose(loaded: LoadedSpec, path: Path) -> LoadedSpec:
    """``loaded`` as its directory makes it: a host with its customers, a customer with its
    host's transports and servers; any other spec unchanged."""
    from dataclasses import replace

    spec = loaded.spec
    if spec.hosting is not None:
        _host_named(spec.hosting.name, path)  # this host's name is its own
        customers = _customer_files(spec, path)
        return replace(
            loaded,
            spec=spec.with_customers(tuple(_served(c.spec, spec) for c in customers)),
            composed={Path(c.source).name: file_digest(c.text) for c in customers},
        )
    if spec.host is None:
        return loaded
    found = _host_named(spec.host, path)
    if found is None:
        hosts = sorted(
            f"{h.hosting.name} ({path.parent / p.name})"
            for p in _host_files(path.resolve().parent)
            for h in [_load_sibling(p, "a host file").spec]
            if h.hosting is not None
        )
        beside = f"the host files beside it: {', '.join(hosts)}" if hosts else "none is"
        raise SpecError(
            f"{loaded.where(('host',))}: host: no file beside {path.name} has "
            f"'hosting: {{name: {spec.host}}}' ({beside}); name one of them, or put "
            f"{path.name} in the directory of its host's file"
        )
    host_path, host = found
    # the customer's own plan (a merge request's) refuses what its host's would
    check_binding(host, _host_file(host_path, path.parent / host_path.name), loaded)
    check_reach(loaded, path)  # its DNS stays in its own zone
    return replace(
        loaded,
        spec=_served(spec, host),
        composed={host_path.name: file_digest(read_text(host_path))},
    )


def declaring_file(domain: str, directory: Path) -> Path | None:
    """The file of ``directory`` that declares ``domain`` (``domain: <domain>`` at the top),
    or None: a customer a host no longer serves may live on in another file (moved to
    another host of the directory, or become one company's spec)."""
    named = re.compile(
        rf"^domain\s*:\s*['\"]?{re.escape(domain)}\.?['\"]?\s*(?:#.*)?$", re.M | re.I
    )
    for path in sorted(directory.iterdir()):
        if path.suffix in SPEC_SUFFIXES and path.is_file() and named.search(read_text(path)):
            return path
    return None


_DOMAIN_LINE = re.compile(r"^domain\s*:\s*['\"]?([A-Za-z0-9.-]+?)\.?['\"]?\s*(?:#.*)?$", re.M)


def readable_domain(text: str) -> str | None:
    """The ``domain:`` a spec's text names at its top, read without loading it (a file that
    does not load is still named by its domain when that line reads), or None."""
    found = _DOMAIN_LINE.search(text)
    return found[1].lower() if found else None


def file_domain(path: Path) -> str | None:
    """``readable_domain`` of the file at ``path`` (None: unreadable, or no such line)."""
    return readable_domain(read_text(path))
