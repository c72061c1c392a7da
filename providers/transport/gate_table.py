"""The read gate's table for each SSH host of some specs: what their plans read there.

Each provider that reads a host declares what it asks (``Provider.gate_reads(desired)``,
next to its ``read``, built from the same lists); the records ``drift`` reads are found
as ``drift`` finds them (``record_store``). Building the table opens no connection:
providers are constructed, never asked to read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sipctl.errors import SpecError
from sipctl.providers.transport.read_gate import GateError, GateReads, GateTable
from sipctl.schemas.targets import parse_target

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.schemas.loader import LoadedSpec


@dataclass
class HostGate:
    """The table of one host, and which specs it serves (for the gate's title)."""

    target: str  # the target key, e.g. ssh://root@pbx.example.com:22
    table: GateTable = field(default_factory=GateTable)
    sources: list[str] = field(default_factory=list)


def host_gates(specs: Sequence[LoadedSpec], ctx: RunContext) -> dict[str, HostGate]:
    """``{target key: HostGate}`` for every SSH host the specs' layers read."""
    from sipctl.providers.base import load_provider
    from sipctl.reconciler.engine import selected_layers
    from sipctl.reconciler.gitops.drift import host_state_store

    gates: dict[str, HostGate] = {}

    def add(reads: GateReads, source: str) -> None:
        ref = parse_target(reads.target)
        if ref.kind != "ssh":
            return
        gate = gates.setdefault(ref.key, HostGate(ref.key))
        try:
            gate.table.add(reads)
        except GateError as exc:
            raise SpecError(f"{source}: {exc}: a read gate cannot hold it") from None
        if source not in gate.sources:
            gate.sources.append(source)

    for loaded in specs:
        source = f"{loaded.source} ({loaded.spec.domain})"
        for layer in selected_layers(loaded, None):
            provider = load_provider(layer.provider_name(loaded.spec))(loaded, ctx)
            for reads in provider.gate_reads(layer.render(loaded.spec)):
                add(reads, source)
            # the record of the last apply that ``drift`` reads (``record_store``): the
            # host's shared file, unless the provider keeps its own (read by its own means)
            if provider.state_store() is None:
                store = host_state_store(loaded, ctx, layer.name)
                if store is not None:
                    add(GateReads(store.target, files=(store.path, *store.old_paths)), source)
    return gates
