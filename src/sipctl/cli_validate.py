"""``sipctl validate``: every offline check of a spec, free of typer (its options and help:
cli_options.validate)."""

from __future__ import annotations

import json
from pathlib import Path

from sipctl.cli_common import load_checked, start_console
from sipctl.errors import EXIT_ERROR, CommandExit, SpecError
from sipctl.output import Console


def validate(*, spec_file: Path, json_: bool, no_color: bool, verbose: int) -> None:
    """``sipctl validate``."""
    console = start_console(no_color, verbose)
    if json_:
        from sipctl.schemas.problems import validate_json

        report = validate_json(spec_file, lambda: _validate(spec_file, console))
        console.out(json.dumps(report, indent=2, ensure_ascii=False))
        if not report["valid"]:
            raise CommandExit(EXIT_ERROR)
        return
    console.out(_validate(spec_file, console))


def _validate(spec_file: Path, console: Console) -> str:
    """Every offline check; the line that says the spec is valid."""
    from sipctl.providers.base import available_providers, offline_check, provider_installed
    from sipctl.reconciler.layers import LAYERS
    from sipctl.schemas.checks import cross_warnings

    loaded = load_checked(spec_file)
    for warning in cross_warnings(loaded):  # allowed, but probably not what was meant
        console.warn(warning)
    managed = [layer.name for layer in LAYERS if layer.managed(loaded.spec)]
    for layer in LAYERS:
        if layer.managed(loaded.spec) and not provider_installed(layer.provider_name(loaded.spec)):
            installed = available_providers()
            raise SpecError(
                f"{loaded.where((layer.name,))}: {layer.name}: no provider named "
                f"{layer.provider_name(loaded.spec)!r} is installed "
                f"(installed: {', '.join(sorted(installed))})"
            )
    for layer in LAYERS:
        if layer.managed(loaded.spec):
            # A provider may check what it needs offline (an installed plugin, say).
            for warning in offline_check(layer.provider_name(loaded.spec), loaded):
                console.warn(warning)
    return f"{spec_file}: valid. Domain {loaded.spec.domain}, " + (
        f"{len(loaded.spec.users)} user(s), layers: {', '.join(managed) or 'none'}."
    )
