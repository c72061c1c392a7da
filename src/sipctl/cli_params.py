"""The options several sipctl commands share, declared once as typer reads them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

SpecOption = Annotated[
    Path,
    typer.Option(
        "-f",
        "--file",
        help="The spec file (YAML, version 1).",
        show_default=True,
        dir_okay=False,
        readable=False,  # the loader says so, in --json's document too
    ),
]


Nameserver = Annotated[
    str | None,
    typer.Option(
        "--nameserver",
        metavar="IP[:PORT]",
        help="Ask this DNS server (e.g. the zone's primary) instead of the system resolver.",
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


def complete_layer(incomplete: str) -> list[str]:
    """Shell completion of --target: the layers that begin with what is typed."""
    from sipctl.reconciler.layers import LAYER_NAMES

    return [name for name in LAYER_NAMES if name.startswith(incomplete)]


TargetLayers = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        help="Only this layer (dns, asterisk, certificate, firewall, fail2ban, webrtc); "
        "repeat for several. Of several specs, one that manages none of them is skipped.",
        metavar="LAYER",
        autocompletion=complete_layer,
    ),
]


Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Go on although the plan was refused for safety (destroys >30% of a target's "
        "records, removes every NAPTR/SRV, or the firewall would not accept your SSH port). "
        "It cannot pass a refusal that would cost the PBX's owner money (a guest sent into "
        "the admin's dialplan where it can call out): only the host profile's guest_jumps "
        "allows that.",
    ),
]


SpecFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "-f",
        "--file",
        help="The spec file (default: sipctl.yaml). Repeat, or give a directory of specs, for "
        "several domains in one run.",
        readable=False,  # an unreadable spec fails its domain, in --json's document too
    ),
]


Parallel = Annotated[
    int,
    typer.Option(
        "--parallel",
        min=1,
        max=64,
        help="With several specs: how many domains are worked on at once (read; apply: applied).",
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


def number_option(*flags: str, low: float, high: float, help: str) -> Any:
    """The declaration of a float option: a finite number from ``low`` to ``high``. float()
    reads 'nan' and 'inf', which a range check lets through or refuses as out of range in
    words that do not say a number is expected: every float option parses with this rule."""

    def parse(value: object) -> float:
        try:
            number = float(value)  # type: ignore[arg-type]  # the option's text or default
        except (TypeError, ValueError):
            number = math.nan
        if not (math.isfinite(number) and low <= number <= high):
            shown = repr(value) if isinstance(value, str) else value
            what = "is out of range" if math.isfinite(number) else "is not a number"
            raise typer.BadParameter(f"{shown} {what}: give a number from {low:g} to {high:g}")
        return number

    return typer.Option(*flags, min=low, max=high, parser=parse, help=help)
