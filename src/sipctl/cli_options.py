"""The options of sipctl's commands, as typer reads them: the one place they are declared.

The shared option types first, then the hot commands (validate, plan, apply): each of these
declares its options and help and hands the values to its body (cli_validate.py,
cli_plan.py), which never imports typer. cli_fast.py parses a plain command line of a hot
command without typer, from a table generated from these declarations (cli_table.py, kept
current by a test), and calls the same bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SpecOption = Annotated[
    Path,
    typer.Option(
        "-f",
        "--file",
        help="The spec file (YAML, version 1).",
        show_default=True,
        dir_okay=False,
    ),
]


NoColor = Annotated[
    bool,
    typer.Option("--no-color", help="Plain output (also when not a terminal, or NO_COLOR is set)."),
]


Verbose = Annotated[
    int,
    typer.Option("-v", "--verbose", count=True, help="Say what is read and written, and where."),
]


TargetLayers = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        help="Only this layer (dns, asterisk, certificate, firewall, fail2ban, webrtc); "
        "repeat for several.",
        metavar="LAYER",
    ),
]


Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Go on although the plan was refused for safety (destroys >30% of a target's "
        "records, removes every NAPTR/SRV, or the firewall would not accept your SSH port).",
    ),
]


SpecFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "-f",
        "--file",
        help="The spec file (default: sipctl.yaml). Repeat, or give a directory of specs, to "
        "plan several domains in one run.",
    ),
]


Parallel = Annotated[
    int,
    typer.Option(
        "--parallel",
        min=1,
        max=64,
        help="With several specs: how many domains are read and applied at once.",
    ),
]


Shard = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="I/N",
        help="With several specs: only share I of N (1/4 ... 4/4), for N CI jobs at once. "
        "The split is stable and keeps each PBX host's domains in one share (DNS-only specs "
        "split by domain); the locks keep shares that meet safe.",
    ),
]


LockTimeout = Annotated[
    str,
    typer.Option(
        "--lock-timeout",
        help="When another run holds a lock, wait up to this long (60s, 5m) before giving up "
        "with exit 3. Default: do not wait.",
        metavar="DURATION",
    ),
]


LockTtl = Annotated[
    str,
    typer.Option(
        "--lock-ttl",
        help="How long this run's DNS lock stays valid should the run die (then another run "
        "may take it over). Must exceed the longest apply.",
        metavar="DURATION",
    ),
]


# --- the hot commands: signatures and help; the bodies are elsewhere ----------------------


def validate(
    spec_file: Annotated[
        list[Path] | None,
        typer.Option(
            "-f",
            "--file",
            help="The spec file (default: sipctl.yaml). Repeat, or give a directory of specs, "
            "to check several; a directory's files that are no specs are named as skipped.",
        ),
    ] = None,
    json_: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the result as JSON for editors and CI: "
            '{"file", "valid", "errors": [{"file", "line", "col", "key", "message"}], '
            '"warnings": [...]}; several specs: {"valid", "files": [...], "skipped": [...]} '
            "(sipctl schema --output validate).",
        ),
    ] = False,
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Check the spec: schema, names, and cross-layer agreement. No network.

    Examples:

      sipctl validate -f sipctl.yaml

      sipctl validate -f customers/ --json
    """
    options = dict(locals())  # every option by name: the body's keyword arguments
    from sipctl.cli_validate import validate as body

    body(**options)


def plan(
    spec_file: SpecFiles = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Save the plan to this file, for 'sipctl apply FILE'.",
            dir_okay=False,
        ),
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print the plan as JSON (sipctl schema --output plan).")
    ] = False,
    markdown: Annotated[
        bool,
        typer.Option("--markdown", help="Print the plan as Markdown (merge-request comments)."),
    ] = False,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode", help="Exit 0 when there is nothing to change, 2 when there is."
        ),
    ] = False,
    target: TargetLayers = None,
    force: Force = False,
    parallel: Parallel = 4,
    shard: Shard = None,
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Show what apply would change. Reads the live systems; changes nothing.

    With several specs (-f a.yaml -f b.yaml, or -f DIR), each domain is planned on its own
    (one domain's error does not hide the others'), and a summary table ends the output;
    --out then names a directory that gets one plan per domain.

    Examples:

      sipctl plan                          # sipctl.yaml here, all layers

      sipctl plan -f mysite.yaml --out plan.json --markdown > comment.md

      sipctl plan --detailed-exitcode      # nightly drift check: exit 2 = drift

      sipctl plan -f customers/ --parallel 8

      sipctl plan -f customers/ --shard 2/4   # the second of four CI jobs
    """
    options = dict(locals())  # every option by name: the body's keyword arguments
    from sipctl.cli_plan import plan as body

    body(**options)


def apply(
    plan_files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="A plan saved by 'sipctl plan --out'; applied exactly, if still current. "
            "Several plans, or a directory of them (plan -f DIR --out DIR), apply several "
            "domains in one run.",
            metavar="PLAN",
        ),
    ] = None,
    spec_file: Annotated[
        list[Path] | None,
        typer.Option(
            "-f",
            "--file",
            help="Plan this spec and apply it (default: sipctl.yaml). Repeat, or give a "
            "directory, to apply several domains in one run.",
        ),
    ] = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")
    ] = False,
    force: Force = False,
    target: TargetLayers = None,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Skip the end-to-end verify after applying.")
    ] = False,
    lock_timeout: LockTimeout = "0s",
    lock_ttl: LockTtl = "15m",
    parallel: Parallel = 4,
    shard: Shard = None,
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Make the live systems match the spec (or apply a saved plan exactly).

    A saved plan is re-checked first: if any target changed since it was made, nothing is
    applied and sipctl exits 3. Changes go out in a safe order: DNS records that stop
    advertising first, then firewall, fail2ban, Asterisk, and DNS records that advertise last.

    Before reading anything, sipctl takes a lock per domain and per host (a TXT record
    _sipctl-lock.<domain> over RFC 2136, a flock beside a zone file or in the managed
    directory of a host) and holds it through the confirmation; a saved plan is re-checked
    under it. A lock held by another run means exit 3 naming the holder; --lock-timeout
    waits for it. The locks are released at the end, also on error and Ctrl-C. A successful
    apply records what it applied, for 'sipctl drift' (over RFC 2136 in the same UPDATE as
    the changes and the lock's release).

    Examples:

      sipctl apply -f mysite.yaml           # plan, show, ask, apply

      sipctl plan --out plan.json && sipctl apply plan.json

      sipctl apply -f customers/ --auto-approve --parallel 8
    """
    options = dict(locals())  # every option by name: the body's keyword arguments
    from sipctl.cli_plan import apply as body

    body(**options)
