"""``sipctl validate``: every offline check of one spec or many."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sipctl.cli_common import load_checked, start_console
from sipctl.cli_params import NoColor, Verbose
from sipctl.errors import EXIT_ERROR, CommandExit, SpecError
from sipctl.output import Console

if TYPE_CHECKING:
    from sipctl.schemas.loader import LoadedSpec


def validate(
    spec_file: Annotated[
        list[Path] | None,
        typer.Option(
            "-f",
            "--file",
            help="The spec file (default: sipctl.yaml). Repeat, or give a directory of specs, "
            "to check several; a directory's files that are no specs are named as skipped.",
            readable=False,  # the loader says so, in --json's document too
        ),
    ] = None,
    json_: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the result as JSON for editors and CI: "
            '{"file", "valid", "errors": [{"file", "line", "col", "key", "message"}], '
            '"warnings": [...]}; several specs: {"valid", "files": [...], "skipped": [...], '
            '"errors": [...], "warnings": [...]}, the last two of the run, not of one file '
            "(sipctl schema --kind validate).",
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
    from sipctl.schemas.hosting_reach import reading_once

    console = start_console(no_color, verbose)
    specs = spec_file or [Path("sipctl.yaml")]
    many = len(specs) > 1 or specs[0].is_dir()
    with reading_once():  # a hosting directory read once for all its files
        _run(console, specs, many, json_)


def _run(console: Console, specs: list[Path], many: bool, json_: bool) -> None:
    if json_:
        # a run that ends without its verdict (a bug) still prints validate's one document
        console.promise_json("validate", None if many else str(specs[0]))
        report = _many_json(specs) if many else _one_json(specs[0])
        console.out(console.json_text(report), end="")
        if not report["valid"]:
            raise CommandExit(EXIT_ERROR)
        return
    if not many:
        console.out(_validate(specs[0], console.warn))
        return
    _validate_many(console, specs)


def _one_json(spec_file: Path, several: list[LoadedSpec] | None = None) -> dict[str, Any]:
    from sipctl.schemas.problems import validate_json

    warnings: list[str] = []
    check = lambda: _validate(spec_file, warnings.append, several)  # noqa: E731
    return validate_json(spec_file, check, warnings)


def _many_json(specs: list[Path]) -> dict[str, Any]:
    """The verdicts of several specs; a refusal of the run itself (a directory without a
    spec) is JSON too, under ``errors``."""
    from sipctl.reconciler.gitops.spec_files import select_specs
    from sipctl.schemas.problems import problem_fields, refused_run

    try:
        selection = select_specs(specs)
    except SpecError as exc:
        lines = exc.problems or [exc.message]
        return refused_run([problem_fields(line, str(specs[0])) for line in lines])
    from sipctl.schemas.hosting_reach import reading_once

    loaded: list[LoadedSpec] = []  # for what is said once for all of them
    with reading_once(selection.paths):  # two files of one domain: refused as overlaps
        # a hoster's key bound to no zones is not repeated in each customer's report
        files = [_one_json(path, loaded) for path in selection.paths]
    valid = [Path(report["file"]) for report in files if report["valid"]]
    # each line starts with the spec that claims second ("a.yaml: DNS ... also claimed by"),
    # each warning with the place of the first file that names the credential
    overlaps = [problem_fields(line, line.split(": ", 1)[0]) for line in _overlaps(valid)]
    warned = [problem_fields(line, line.split(": ", 1)[0]) for line in _run_warnings(loaded)]
    return {
        "valid": all(report["valid"] for report in files) and not overlaps,
        "files": files,
        "skipped": [{"file": str(s.path), "reason": s.reason} for s in selection.skipped],
        "errors": overlaps,
        "warnings": warned,
    }


def _run_warnings(loaded: list[LoadedSpec]) -> list[str]:
    """What is said once for all the specs of a run, not in each one's report: each DNS
    credential of hosting customer files that the runner profile binds to no zones."""
    from sipctl.reconciler.bindings import customer_keys, warn_unzoned_keys

    warnings: list[str] = []
    warn_unzoned_keys((k for one in loaded for k in customer_keys(one)), warnings.append)
    return warnings


def _overlaps(paths: list[Path]) -> list[str]:
    """What two valid specs both claim (a DNS name, a host layer with other contents, a web
    root), as plan and apply of them together would refuse it."""
    from sipctl.reconciler.gitops.multi import Domain, claim_conflicts

    if len(paths) < 2:
        return []
    domains = []
    for path in paths:
        domain = Domain(path)
        domain.loaded = load_checked(path)
        domains.append(domain)
    return claim_conflicts(domains)


def _validate_many(console: Console, specs: list[Path]) -> None:
    """Every spec is checked (one spec's errors never hide another's); the files of a
    directory that are no specs are named, each with the reason."""
    from sipctl.reconciler.gitops.spec_files import select_specs
    from sipctl.schemas.hosting_reach import reading_once

    selection = select_specs(specs)
    valid: list[Path] = []
    loaded: list[LoadedSpec] = []  # for what is said once for all of them
    said: set[str] = set()  # a host refused for its customer's error: that error once
    with reading_once(selection.paths):  # two files of one domain: refused as overlaps
        for path in selection.paths:
            try:
                console.out(_validate(path, console.warn, loaded))
                valid.append(path)
            except SpecError as exc:
                lines = exc.problems or [exc.message]
                for line in lines:
                    if line not in said:
                        console.error(line)
                repeated = sum(line in said for line in lines)
                if repeated:
                    console.error(
                        f"{path}: not valid either: it reads the file of the "
                        f"{'error' if repeated == 1 else f'{repeated} errors'} above"
                    )
                said.update(lines)
    for warning in _run_warnings(loaded):  # once per credential, not per customer
        console.warn(warning)
    overlaps = _overlaps(valid)
    for line in overlaps:
        console.error(line)
    for skipped in selection.skipped:
        console.out(f"{skipped.path}: skipped: {skipped.reason}")
    files = f", {len(selection.skipped)} file(s) skipped" if selection.skipped else ""
    invalid = len(selection.paths) - len(valid)
    clash = f"; {len(overlaps)} overlapping claim(s) between them" if overlaps else ""
    console.out(
        f"{len(selection.paths)} spec(s): {len(valid)} valid, {invalid} invalid{files}{clash}."
    )
    if invalid or overlaps:
        raise CommandExit(EXIT_ERROR)


def _validate(
    spec_file: Path, warn: Callable[[str], None], several: list[LoadedSpec] | None = None
) -> str:
    """Every offline check (warnings go to ``warn``); the line that says the spec is
    valid. Of ``several`` specs, the loaded spec is added there, for the warnings said once
    for all of them (a hoster's DNS credential bound to no zones)."""
    from sipctl.providers.base import offline_check, provider_installed, unknown_provider
    from sipctl.reconciler.bindings import customer_keys, warn_unzoned_keys
    from sipctl.reconciler.layers import LAYERS
    from sipctl.reconciler.runner_places import check_places
    from sipctl.schemas.checks import cross_warnings

    loaded = load_checked(spec_file)
    for warning in cross_warnings(loaded):  # allowed, but probably not what was meant
        warn(warning)
    managed = [layer.name for layer in LAYERS if layer.managed(loaded.spec)]
    for layer in LAYERS:
        name = layer.provider_name(loaded.spec)
        if layer.managed(loaded.spec) and not provider_installed(name):
            raise unknown_provider(name, f"{loaded.where((layer.name,))}: {layer.name}")
    for layer in LAYERS:
        if layer.managed(loaded.spec):
            # A provider may check what it needs offline (an installed plugin, say).
            for warning in offline_check(layer.provider_name(loaded.spec), loaded):
                warn(warning)
    check_places(loaded, os.environ)  # where on this machine its layers would write
    if several is None:
        warn_unzoned_keys(customer_keys(loaded), warn)
    else:
        several.append(loaded)
    return f"{spec_file}: valid. Domain {loaded.spec.domain}, " + (
        f"{len(loaded.spec.users)} user(s), layers: {', '.join(managed) or 'none'}."
    )
