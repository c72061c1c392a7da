"""What a run of many domains reports: the summary table, the exit code, the JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sipctl.errors import EXIT_ERROR, EXIT_REFUSED

if TYPE_CHECKING:
    from sipctl.reconciler.gitops.multi import Domain
    from sipctl.reconciler.gitops.spec_files import Skipped


def _changes(domain: Domain) -> str:
    if domain.plan is None:
        return "-"
    counts = domain.plan.counts()
    return f"+{counts['add']} ~{counts['change']} -{counts['destroy']}"


def summary_table(domains: Sequence[Domain], skipped: Sequence[Skipped] = ()) -> str:
    rows = [("DOMAIN", "SPEC", "RESULT", "CHANGES", "TIME")]
    for d in domains:
        rows.append((d.name, str(d.path), d.status, _changes(d), f"{d.seconds:.1f}s"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    failed = [d for d in domains if d.failed]
    for d in failed:
        first, *more = d.message.splitlines() or [""]
        lines.append(f"{d.path}: {d.status}: {first}")
        lines.extend(f"    {line}" for line in more)
    lines.extend(f"{s.path}: skipped: {s.reason}" for s in skipped)
    ok = len(domains) - len(failed)
    files = f", {len(skipped)} file(s) skipped" if skipped else ""
    lines.append(f"{len(domains)} domain(s): {ok} ok, {len(failed)} failed{files}.")
    return "\n".join(lines) + "\n"


def exit_code(domains: Sequence[Domain]) -> int:
    """0, or the code of what failed: a domain not applied because another of its host
    failed first ends with that one's code."""
    from sipctl.reconciler.gitops.multi import NOT_APPLIED

    failed = [d for d in domains if d.failed and d.status != NOT_APPLIED]
    if not failed:
        return EXIT_ERROR if any(d.failed for d in domains) else 0
    return EXIT_REFUSED if all(d.status == "refused" for d in failed) else EXIT_ERROR


def plans_json(domains: Sequence[Domain], skipped: Sequence[Skipped] = ()) -> dict[str, Any]:
    from sipctl.reconciler.envelope import entry, envelope, skipped_entry

    data = envelope(
        "plan",
        [
            entry(
                "plan",
                str(d.path),
                d.name,
                d.status,
                d.plan.to_json() if d.plan is not None else None,
                d.message if d.failed else None,
            )
            for d in domains
        ],
    )
    if skipped:
        data["skipped"] = [skipped_entry(str(s.path), s.reason) for s in skipped]
    return data
