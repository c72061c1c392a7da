"""What a run of many domains reports: the summary table, the exit code, the JSON.

``plan`` and ``apply`` report each domain's plan; ``drift`` and ``verify`` each domain's
report (``Domain.report``), in the same table, envelope and exit code of them all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sipctl.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_REFUSED

if TYPE_CHECKING:
    from sipctl.reconciler.gitops.multi import Domain
    from sipctl.reconciler.gitops.spec_files import Skipped


def _changes(domain: Domain) -> str:
    if domain.plan is None:
        return "-"
    counts = domain.plan.counts()
    return f"+{counts['add']} ~{counts['change']} -{counts['destroy']}"


# A column of the summary table: its title, and its cell of a domain.
Column = tuple[str, Callable[["Domain"], str]]
CHANGES: Column = ("CHANGES", _changes)


def summary_table(
    domains: Sequence[Domain],
    skipped: Sequence[Skipped] = (),
    column: Column = CHANGES,
    by_status: bool = False,
    rows_of: Sequence[Domain] | None = None,
    notes: int | None = None,
) -> str:
    """One row per domain (``column``: what it found, a plan's changes by default), each
    failure's message, the skipped files, and a closing count: of the domains that are ok
    and that failed, or (``by_status``: a report's words, "drifted") of each status.
    ``rows_of``: rows of these domains only, the others counted in one line (the count
    still covers every domain); ``notes``: at most this many failures and skipped files
    told, the others counted in one line."""
    title, value_of = column
    rows = [("DOMAIN", "SPEC", "RESULT", title, "TIME")]
    for d in domains if rows_of is None else rows_of:
        rows.append((d.name, str(d.path), d.status, value_of(d), f"{d.seconds:.1f}s"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    if rows_of is not None and len(rows_of) < len(domains):
        lines.append(f"... {len(domains) - len(rows_of)} more domain(s), not listed here")
    failed = [d for d in domains if d.failed]
    told: list[list[str]] = []
    for d in failed:
        first, *more = d.message.splitlines() or [""]
        told.append([f"{d.path}: {d.status}: {first}", *(f"    {line}" for line in more)])
    told.extend([f"{s.path}: skipped: {s.reason}"] for s in skipped)
    for note in told[:notes]:
        lines.extend(note)
    if notes is not None and notes < len(told):
        lines.append(_unlisted_notes(len(failed) - min(notes, len(failed)), len(told) - notes))
    lines.append(_counted(domains, skipped, by_status) + ".")
    return "\n".join(lines) + "\n"


def _counted(domains: Sequence[Domain], skipped: Sequence[Skipped], by_status: bool) -> str:
    """The closing count of the summary table, without its full stop."""
    failed = sum(d.failed for d in domains)
    files = f", {len(skipped)} file(s) skipped" if skipped else ""
    counts = f"{len(domains) - failed} ok, {failed} failed"
    if by_status:
        tally = Counter(d.status for d in domains)
        counts = ", ".join(f"{n} {status}" for status, n in tally.items()) or "none"
    return f"{len(domains)} domain(s): {counts}{files}"


def quiet_summary(domains: Sequence[Domain], skipped: Sequence[Skipped] = ()) -> str:
    """The one line that ends a run of many domains with ``--quiet`` instead of the summary
    table: the table's count, and what --quiet left out (the domains with no changes, shown
    neither with a section nor with a row, and the reasons files were skipped)."""
    calm = sum(not d.failed and (d.plan is None or not d.plan.has_changes) for d in domains)
    left = [f"{calm} domain(s) with no changes"] if calm else []
    if skipped:
        left.append(f"why {len(skipped)} file(s) were skipped")
    line = _counted(domains, skipped, False)
    if left:
        line += f"; --quiet left out {' and '.join(left)}"
    return line + ".\n"


def _unlisted_notes(failures: int, notes: int) -> str:
    """The line counting the ``notes`` not told: ``failures`` of them failures, the rest
    skipped files. Neither is in a saved plan (``plan --out`` saves the domains that did
    not fail), so it says where each is told."""
    counted = [f"{failures} more failure(s)"] if failures else []
    if notes > failures:
        counted.append(f"{notes - failures} more skipped file(s)")
    return (
        f"... {' and '.join(counted)}, not listed here: sipctl plan -f without --markdown "
        "lists each"
    )


def exit_code(domains: Sequence[Domain]) -> int:
    """0, or the code of what failed: a domain not applied because another of its host
    failed first ends with that one's code."""
    from sipctl.reconciler.gitops.multi import NOT_APPLIED

    failed = [d for d in domains if d.failed and d.status != NOT_APPLIED]
    if not failed:
        return EXIT_ERROR if any(d.failed for d in domains) else 0
    return EXIT_REFUSED if all(d.status == "refused" for d in failed) else EXIT_ERROR


# Exit codes from the worst down: an error (nothing could be told there), a refusal, then
# something to act on (drift; plan --detailed-exitcode's changes).
_WORST_FIRST = (EXIT_ERROR, EXIT_REFUSED, EXIT_CHANGES)


def worst(codes: Iterable[int]) -> int:
    """The code of a run of many domains, from the codes of each: the worst wins."""
    found = set(codes)
    return next((code for code in _WORST_FIRST if code in found), 0)


def plans_json(domains: Sequence[Domain], skipped: Sequence[Skipped] = ()) -> dict[str, Any]:
    return reports_json(
        "plan", domains, skipped, lambda d: d.plan.to_json() if d.plan is not None else None
    )


def reports_json(
    kind: str,
    domains: Sequence[Domain],
    skipped: Sequence[Skipped],
    report_of: Callable[[Domain], Mapping[str, Any] | None],
) -> dict[str, Any]:
    """The envelope of a run of many domains: each domain's report of ``kind``."""
    from sipctl.reconciler.envelope import entry, envelope, skipped_entry

    data = envelope(
        kind,
        [
            entry(
                kind, str(d.path), d.name, d.status, report_of(d), d.message if d.failed else None
            )
            for d in domains
        ],
    )
    if skipped:
        data["skipped"] = [skipped_entry(str(s.path), s.reason) for s in skipped]
    return data
