"""Bench: a spec with many users, on local targets (a zone file and a ``dir:`` host root).

For each size: ``validate``, a no-op ``plan`` (everything already applied), and a ``plan``
after adding ONE user, whose human output should be the change and a line summarising the
unchanged. Whole processes, sipctl installed from a wheel; cpu seconds from the kernel,
peak RSS of the process.

Run: ``python bench/spec_scale.py`` (``--sizes 10000,50000``; ``--against REV`` also
measures the sipctl of git revision REV, run by run paired with this one on the same specs
(REV's example, which both know), each against the state its own apply made, and says
whether both print the same plans).

Measured on 2 cores at load about 1, best of 2 (before -> after the start-up and spec work):
10,000 users validate 1.11 -> 0.66 s, no-op plan 1.85 -> 1.33 s, plan +1 user 2.87 -> 1.42 s
(5 lines); 50,000 users validate 2.51 -> 1.03 s, no-op plan 6.19 -> 2.66 s, 184 -> 149 MB,
plan +1 user 9.22 -> 4.96 s. About 0.5 s of each was start-up (see bench/startup.py).

Then (``--against 9444f3b``, the commit before; load 3.1-3.4, best of 3): 10,000 users
validate 0.54 -> 0.17 s, no-op plan 0.77 -> 0.48 s (67 -> 55 MB), plan +1 user 1.28 -> 0.75 s
(5 lines); 50,000 users validate 1.17 -> 0.56 s, no-op plan 2.73 -> 1.74 s, 149 -> 120 MB,
plan +1 user 4.83 -> 3.69 s; the same output byte for byte (human and JSON plans,
saved plan, rendered files). Two pieces of work share it: the spec checked without pydantic
(bench/startup.py), and the work per user, in-process at 10,000 users: loading 183 -> 58 ms
(users read in a short loop, positions inside users found only for a message), the dialplan
110 -> 55 ms (shared steps made once, a step in its value's form not parsed), the
fingerprint's escaping 22 -> 14 ms, describing a changed dialplan's first side 110 -> 65 ms.

One spec model, pydantic building every spec (``--against 1375b95``, the commit before; load
3.5, best of 3): 10,000 users validate 0.09 -> 0.20 s, no-op plan 0.26 -> 0.33 s (55 -> 65
MB), plan +1 user 0.42 -> 0.51 s (5 lines), the same plans. Main an hour later (typer alone
as the CLI, every name's vCard rendered in each plan; load 5-8): validate 0.10 -> 0.28 s,
no-op plan 0.29 -> 0.69 s, plan +1 user 0.41 -> 0.92 s; about 0.35 s of the no-op plan is
the vCards' line folding (reconciler/render/cards.py ``_fold``, character by character).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import (
    REPO,
    Sample,
    checkout,
    installed_sipctl,
    print_table,
    remove_checkout,
    run_measured,
)


def spec_text(users: int, example_file: Path = REPO / "examples" / "mysite.yaml") -> str:
    """The README's example spec with ``users`` more users."""
    example = example_file.read_text()
    head, rest = example.split("\nusers:\n", 1)
    lines = "".join(f"  user{i}: {100000 + i}\n" for i in range(users))
    return f"{head}\nusers:\n{lines}{rest}"


def best(samples: list[Sample]) -> Sample:
    return min(samples, key=lambda s: s.cpu)


COMMANDS = {
    "validate": ["validate"],
    "no-op plan": ["plan", "--detailed-exitcode"],
    "plan +1 user": ["plan", "-f", "more.yaml", "--no-color"],
}


def measure_size(
    size: int, work: Path, pythons: dict[str, Path], runs: int, example: Path
) -> list[dict[str, str]]:
    """One row per sipctl: each command's best run, the runs of the sipctls alternating.
    Each sipctl plans in a directory of its own, against the state its own apply made (what
    an apply writes may differ between revisions)."""
    homes = {label: work / f"users{size}-{n}" for n, label in enumerate(pythons)}
    for label, home in homes.items():
        home.mkdir()
        (home / "sipctl.yaml").write_text(spec_text(size, example))
        (home / "more.yaml").write_text(spec_text(size + 1, example))
        setup = run_measured(
            [str(pythons[label]), "-m", "sipctl", "apply", "--auto-approve"], cwd=home
        )
        assert setup.returncode == 0, f"the bench spec must apply ({label})"
    samples: dict[tuple[str, str], list[Sample]] = {}
    for command, argv in COMMANDS.items():
        for _ in range(runs):
            for label, python in pythons.items():
                sample = run_measured([str(python), "-m", "sipctl", *argv], cwd=homes[label])
                samples.setdefault((label, command), []).append(sample)

    def shown(label: str, command: str) -> str:  # the output, its directory named alike
        return samples[(label, command)][0].stdout.replace(str(homes[label]), "HOME")

    first = next(iter(pythons))
    rows = []
    for label in pythons:
        validate, noop, one = (best(samples[(label, c)]) for c in COMMANDS)
        assert noop.returncode == 0, f"a plan of an applied spec must have no changes ({label})"
        rows.append(
            {
                "users": f"{size:,}",
                "sipctl": label,
                "validate": f"{validate.cpu:.2f} s",
                "no-op plan": f"{noop.cpu:.2f} s",
                "no-op RSS": f"{noop.rss_mb:.0f} MB",
                "plan +1 user": f"{one.cpu:.2f} s",
                "+1 plan lines": str(one.stdout.split("\nPlan:")[0].count("\n") + 1),
                "same plans": str(all(shown(label, c) == shown(first, c) for c in COMMANDS)),
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000", help="users per spec")
    parser.add_argument("--runs", type=int, default=3, help="runs per row (the best is shown)")
    parser.add_argument("--against", metavar="REV", help="also measure git revision REV")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sipctl-bench-"))
    pythons = {"this": installed_sipctl(work / "this")}
    tree = checkout(work, args.against) if args.against else None
    try:
        if tree is not None:
            pythons[args.against] = installed_sipctl(work / "rev", tree)
        # With --against, REV's example: a spec both sipctls know (a newer one may use keys
        # REV does not have).
        example = (tree if tree is not None else REPO) / "examples" / "mysite.yaml"
        rows = []
        for size in (int(s) for s in args.sizes.split(",")):
            rows += measure_size(size, work, pythons, args.runs, example)
    finally:
        if tree is not None:
            remove_checkout(tree)
    print_table(rows)
    print("\ncpu seconds (user + system) of the best of", args.runs, "runs")
    print("same plans: each command prints what the first sipctl prints, byte for byte")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
