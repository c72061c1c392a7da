"""Plan and apply: the only place that drives providers.

``make_plan`` reads every target (read-only) and diffs; ``apply_plan`` re-reads, refuses a
stale or unsafe plan, and applies the changes phase by phase (withdraw first, advertise last).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sipctl import __version__
from sipctl.errors import (
    ProviderCrashed,
    ProviderError,
    SipctlError,
    SpecError,
    StalePlanError,
)
from sipctl.providers.base import Provider, RunContext, UpdateRider, open_provider
from sipctl.reconciler.diff import diff
from sipctl.reconciler.domain_change import note_domain_change, served_domain
from sipctl.reconciler.layers import LAYERS, Layer
from sipctl.reconciler.plan import Change, Plan, TargetPlan, managed_units
from sipctl.reconciler.resources import LiveState, Resource
from sipctl.reconciler.safety import refusal, refusal_reasons
from sipctl.reconciler.views import target_phrase
from sipctl.schemas.loader import LoadedSpec, load_spec_text

if TYPE_CHECKING:
    from sipctl.providers.transport.batch import Fetched, HostRead
    from sipctl.reconciler.gitops.drift import ReadRecord


@dataclass
class TargetRun:
    """One provider at one target, with what it should hold and what it holds."""

    layer: Layer
    provider: Provider
    desired: list[Resource]
    live: LiveState
    # a host's run that removes this customer's DNS records (its file is gone: departures)
    customer: str | None = None


@dataclass
class PlanRun:
    """A plan and the live states it was made from (needed to apply it in the same run)."""

    plan: Plan
    runs: list[TargetRun]
    loaded: LoadedSpec
    # a host's record of the last apply, as this plan read it (hosting: see departures;
    # else only when asked, ``make_plan``'s ``with_record``)
    host_record: ReadRecord | None = None


@dataclass
class ApplyReport:
    lines: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)  # target ids that were changed


def check_layer_names(only: Sequence[str] | None) -> None:
    """``--target`` names layers sipctl has (said once a run, not once a domain)."""
    known = {layer.name for layer in LAYERS}
    unknown = sorted(set(only or ()) - known)
    if unknown:
        names = ", ".join(layer.name for layer in LAYERS)
        parts = unknown[0].replace(",", " ").split()
        several = len(parts) > 1 and set(parts) <= known
        how = f"; name one layer each time: --target {' --target '.join(parts)}" if several else ""
        raise SpecError(f"--target {unknown[0]}: no such layer (layers: {names}){how}")


def selected_layers(
    loaded: LoadedSpec, only: Sequence[str] | None, several: bool = False
) -> list[Layer]:
    """The layers a plan of ``loaded`` covers: those it manages, of ``only`` (--target).

    A spec planned alone must manage every layer ``only`` names. Of ``several`` specs (a
    hoster's directory: the host's file has no ``dns``, its customers' files have nothing
    else), each covers the named layers it manages, and one that manages none of them
    covers none (the run passes it over)."""
    layers = [layer for layer in LAYERS if layer.managed(loaded.spec)]
    if only:
        check_layer_names(only)
        missing = [layer for layer in LAYERS if layer.name in only and layer not in layers]
        if missing and not several:
            raise SpecError(
                f"--target {missing[0].name}: {loaded.source} has no '{missing[0].spec_key}' "
                "section, so that layer is not managed"
            )
        layers = [layer for layer in layers if layer.name in only]
    return layers


def _open_targets(
    loaded: LoadedSpec,
    ctx: RunContext,
    layers: Iterable[Layer],
    rendered: Mapping[str, list[Resource]],
) -> list[TargetRun]:
    runs = []
    for layer in layers:
        provider = open_provider(layer.provider_name(loaded.spec), loaded, ctx)
        desired = (
            list(rendered[layer.name]) if layer.name in rendered else layer.render(loaded.spec)
        )
        # A provider may hold fewer kinds than the layer renders (an API without NAPTR): it
        # says which, and its read notes why.
        desired = provider.publishable(desired)
        runs.append(TargetRun(layer, provider, desired, LiveState()))
    return runs


def _read_all(
    runs: Sequence[TargetRun], ctx: RunContext, extra: Sequence[HostRead] = ()
) -> list[Fetched]:
    """Read every target. What the providers (and ``extra``: the host's record) declare
    they read of a host is fetched first, in one round trip per host (``host_reads``); each
    provider then reads from what it got, one that declares nothing on its own. Returns
    what ``extra`` got."""
    from sipctl.providers.transport.batch import fetch

    declared = [run.provider.host_reads(run.desired) for run in runs]
    fetched = fetch([read for reads in declared for read in reads] + list(extra))
    start = 0
    for run, reads in zip(runs, declared, strict=True):
        ctx.log(f"reading {target_phrase(run.layer.name, run.provider.target_id)}")
        if reads:
            got = fetched[start : start + len(reads)]
            run.live = run.provider.read_fetched(run.desired, got)
        else:
            run.live = run.provider.read(run.desired)
        start += len(reads)
    return fetched[start:]


def _target_plan(run: TargetRun, secret_forms: Sequence[str]) -> TargetPlan:
    """``run``'s part of the plan; its fingerprint is of the live state as a saved plan
    holds it (``secret_forms``, the run's secrets, and every password the scrub knows
    masked): a hash of a value with a short secret in it, the rest of which the plan
    shows, would tell the secret to whoever tries guesses against it."""
    from sipctl.reconciler.describe import describe_change

    changes = diff(run.desired, run.live)
    describer = run.layer.describer()
    whole = run.layer.change_describer()
    for change in changes:
        change.described = whole(change) if whole else describe_change(describer, change)
    return TargetPlan(
        layer=run.layer.name,
        provider=type(run.provider).name,
        target=run.provider.target_id,
        fingerprint=run.live.fingerprint(secret_forms),
        managed_units=sum(
            managed_units(v) for a, v in run.live.resources.items() if a not in run.live.owned_by
        ),
        changes=changes,
        notes=list(run.live.notes),
        skipped=list(run.live.skipped),
        hazards=list(run.live.hazards),
        host_hazards=list(run.live.host_hazards),
        desired_kinds=dict(Counter(r.address.kind for r in run.desired)),
        customer=run.customer,
        owned_by={str(a): owner for a, owner in run.live.owned_by.items()},
    )


def _problems(runs: Sequence[TargetRun]) -> list[str]:
    return [
        f"{run.layer.name} {run.provider.target_id}: {problem}"
        for run in runs
        for problem in run.live.problems
    ]


def make_plan(
    loaded: LoadedSpec,
    ctx: RunContext,
    layers: Sequence[str] | None = None,
    rendered: Mapping[str, list[Resource]] | None = None,
    several: bool = False,
    with_record: bool = False,
) -> PlanRun:
    """Read the live systems and compute the plan. Changes nothing anywhere.

    ``rendered``: layers of this spec already rendered (layer name -> resources), as the
    many-domain claims check renders them; the others are rendered here. ``several``: the
    spec is one of several in the run (``selected_layers``). ``with_record``: read the
    record of the last apply of the host the planned layers run on too (``host_record``),
    in the same round trip as their reads, for a caller that says when it was last
    applied (``fleet status``).
    """
    from sipctl.reconciler.host_places import check_host_places

    selected = selected_layers(loaded, layers, several)
    covered = {layer.name for layer in selected}
    runs = _open_targets(loaded, ctx, selected, rendered or {})
    for run in runs:  # what each needs of this machine, before any host is connected to
        run.provider.preflight()
    # the places the spec names on its PBXs, before anything is read there (and again at
    # apply: a saved plan is re-made here, never trusted for them)
    check_host_places(loaded, ctx, covered)
    hosting = loaded.spec.hosting is not None and (selected or not layers)
    store = None
    if hosting:
        from sipctl.reconciler.gitops.drift import host_state_store

        store = host_state_store(loaded, ctx, "asterisk")
    elif with_record:
        from sipctl.reconciler.gitops.drift import host_state_store
        from sipctl.reconciler.gitops.locking import host_places

        places = host_places(loaded, [layer.name for layer in selected])
        store = host_state_store(loaded, ctx, places[0].layer) if places else None
    elif served_domain(loaded, runs) is not None:
        from sipctl.reconciler.gitops.drift import host_state_store

        # the domain of the last apply there (domain_change), in the same round trip
        store = host_state_store(loaded, ctx, "asterisk")
    # the host's record rides in the same round trip as the layers' reads of its host
    record_reads = [store.record_read()] if store is not None else []
    record_fetched = _read_all(runs, ctx, record_reads)
    host_record = None
    if hosting:
        from sipctl.reconciler.departures import (
            departure_runs,
            recorded_in,
            refuse_unsure_departures,
        )
        from sipctl.reconciler.gitops.drift import ReadRecord

        if store is not None:  # the plan's one read of it
            host_record = ReadRecord(store, store.read_from(record_fetched[0]) or {})
        recorded = recorded_in(host_record)
        # no customer is taken for gone while a file beside the host does not load
        refuse_unsure_departures(loaded, runs, recorded)
        if not layers:
            # a customer whose file is gone takes its DNS records with it (departures)
            runs += departure_runs(loaded, ctx, runs, recorded)
    if store is not None and not hosting:
        from sipctl.reconciler.gitops.drift import ReadRecord

        host_record = ReadRecord(store, store.read_from(record_fetched[0]) or {})
        note_domain_change(loaded, runs, host_record.record)
    problems = _problems(runs)
    if problems:
        raise ProviderError(
            "the live systems disagree with the spec; fix this before planning:\n  "
            + "\n  ".join(problems)
        )
    from sipctl.output import secret_forms

    forms = secret_forms(ctx.secrets)
    plan = Plan(
        spec_source=loaded.source,
        spec_text=loaded.text,
        spec_sha256=hashlib.sha256(loaded.text.encode()).hexdigest(),
        domain=loaded.spec.domain,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        sipctl_version=__version__,
        targets=[_target_plan(run, forms) for run in runs],
        # the layers of --target this plan covers (of several specs, those this one manages)
        layers=[name for name in layers or () if name in covered],
        spec_files=loaded.composed,
        spec_dir=str(loaded.base_dir),
    )
    return PlanRun(plan, runs, loaded, host_record)


def loaded_from_plan(plan: Plan, plan_file: str) -> LoadedSpec:
    """The spec a saved plan was made from, with paths relative to where it was made."""
    base = Path(plan.spec_source).parent
    refuse_moved_base(plan, plan_file, base)
    try:
        loaded = load_spec_text(plan.spec_text, source=plan.spec_source, base_dir=base.resolve())
    except SpecError as exc:
        raise SpecError(
            f"{plan_file}: the spec inside the plan no longer validates: {exc}"
        ) from None
    if loaded.spec.hosting is None and loaded.spec.host is None:
        return loaded
    # A host's plan holds its customers' lines, a customer's its host's servers: both come
    # from the files beside the spec, read again here (the apply records what it renders).
    from sipctl.schemas.hosting import compose

    if not base.is_dir():
        raise SpecError(
            f"{plan_file}: a host's or a customer's plan is applied where it was made: "
            f"the directory {base} of {plan.spec_source} is not here"
        )
    return compose(loaded, Path(plan.spec_source))


def refuse_moved_base(plan: Plan, plan_file: str, base: Path) -> None:
    """A saved plan is applied where its spec's relative paths (a key file, a zone file, a
    dir: target) mean what they meant when it was made: in the directory it was made in,
    or where its spec file is there with the same text (another checkout of the same
    repository: a pipeline's apply job). Elsewhere they would be read and written in
    another directory, where a zone file may even be created."""
    if plan.spec_dir is None or base.resolve() == Path(plan.spec_dir):
        return
    from sipctl.schemas.admin_files import read_regular_file
    from sipctl.schemas.loader import MAX_SPEC_BYTES
    from sipctl.schemas.spec_links import refuse_link_out

    here = Path(plan.spec_source)
    try:
        refuse_link_out(here)  # a link out, where the run is strict: not that spec
        if read_regular_file(here, MAX_SPEC_BYTES) == plan.spec_text.encode():
            return
    except (OSError, SipctlError):
        pass  # no such file here, or another one: refused below
    made = Path(plan.spec_dir) / here.name
    raise SpecError(
        f"{plan_file}: the plan was made of {made}, and {plan.spec_source} here "
        f"({base.resolve() / here.name}) is not that spec: its relative paths (key files, "
        "zone files, dir: targets) would point elsewhere. Nothing was changed: run "
        "'sipctl apply' from the directory the plan was made in."
    )


def refuse_changed_files(plan: Plan, plan_file: str, loaded: LoadedSpec) -> None:
    """A hosting file's plan is of the files beside it too (a host's customers, a customer's
    host): one changed, added or removed since makes the plan stale (exit 3). ``loaded``:
    the plan's spec as its directory makes it now (``loaded_from_plan``)."""
    if loaded.composed is None:
        return
    now = loaded.composed
    replan = "Nothing was changed; run 'sipctl plan' again."
    if plan.spec_files is None:
        raise StalePlanError(
            f"{plan_file}: this plan of a hosting file was made by an older sipctl, which did "
            f"not record the files beside {plan.spec_source} it was made with. {replan}"
        )
    then = plan.spec_files
    differ = [
        f"{name} ({'added' if name not in then else 'removed' if name not in now else 'changed'})"
        for name in sorted(set(then) | set(now))
        if then.get(name) != now.get(name)
    ]
    if differ:
        raise StalePlanError(
            f"{plan_file} is stale: files beside {plan.spec_source} changed since the plan "
            f"was made: {', '.join(differ)}. {replan}"
        )


def refresh(
    saved: Plan,
    ctx: RunContext,
    plan_file: str,
    rewritten: Collection[tuple[str, str]] = (),
    loaded: LoadedSpec | None = None,
) -> PlanRun:
    """Re-read every target of a saved plan; refuse (exit 3) if any of them changed since.

    ``rewritten``: the targets (``written_key``) that an earlier spec of the same run has
    just written. Several specs may declare the same rules for one host, or the same addresses of
    a server their domains share in one zone; such a target changed since this plan was
    made, but only into what this plan wanted: when what its fresh plan has left to do is
    a part of this plan's changes, each exactly as planned (``_only_done_by_others``), it is
    not stale, and that part is what is applied. ``loaded``: the plan's spec as the caller
    loaded it (``guarded_apply``'s), else as the plan says.
    """
    if loaded is None:
        loaded = loaded_from_plan(saved, plan_file)
    refuse_changed_files(saved, plan_file, loaded)
    fresh = make_plan(loaded, ctx, saved.layers or None)
    saved_targets = {(t.layer, t.target): t for t in saved.targets}
    fresh_targets = {(t.layer, t.target): t for t in fresh.plan.targets}
    if set(saved_targets) != set(fresh_targets):
        raise StalePlanError(
            f"{plan_file}: the plan's targets are not the spec's targets any more; "
            "run 'sipctl plan' again"
        )
    # a target by what it is (``Provider.written_key``): another spec may name it otherwise
    written_as = {(r.layer.name, r.provider.target_id): written_key(r) for r in fresh.runs}
    secrets = frozenset(ctx.secrets)
    done = {
        key
        for key in fresh_targets
        if written_as.get(key, key) in rewritten
        and key in saved_targets
        and _only_done_by_others(saved_targets[key], fresh_targets[key], secrets)
    }
    stale = [
        f"{layer} {target}"
        for (layer, target), t in saved_targets.items()
        if fresh_targets[(layer, target)].fingerprint != t.fingerprint
        and (layer, target) not in done
    ]
    if stale:
        raise StalePlanError(
            f"{plan_file} is stale: the live state changed since the plan was made "
            f"({', '.join(stale)}). Nothing was changed; run 'sipctl plan' again."
        )
    # The saved changes are the contract: the fresh ones must be them, as saved (a secret in
    # a live value masked, ``scrubbed_changes``). What is applied is the fresh changes, made
    # of the values read again now: a saved plan holds no secret to write back.
    refuse_other_changes(saved_targets, fresh_targets, done, plan_file, secrets)
    fresh.plan.created_at = saved.created_at
    return fresh


def written_key(run: TargetRun) -> tuple[str, str]:
    """What ``run``'s target is for ``refresh``'s ``rewritten``: (layer, its written key)."""
    return (run.layer.name, run.provider.written_key)


def scrubbed_changes(changes: Sequence[Change], secrets: Collection[str]) -> list[str]:
    """``changes`` as a saved plan holds them (``output.scrubbed_data``: every secret of the
    run, every value of a key named as a secret, every URL's password written ``***``), each
    as canonical JSON: how a saved plan's changes and the fresh ones are compared."""
    from sipctl.output import scrubbed_data
    from sipctl.reconciler.resources import canonical_json

    shown = scrubbed_data([change.to_json() for change in changes], secrets)
    return [canonical_json(change) for change in shown]


def _only_done_by_others(saved: TargetPlan, fresh: TargetPlan, secrets: Collection[str]) -> bool:
    """True when every change ``fresh`` still has is one of ``saved``'s, as planned: the
    spec is the same, so a live value that moved anywhere but to what the plan wanted would
    show as a change the plan does not have (or has with another ``before``)."""
    planned = set(scrubbed_changes(saved.changes, secrets))
    return all(change in planned for change in scrubbed_changes(fresh.changes, secrets))


def refuse_other_changes(
    saved: Mapping[tuple[str, str], TargetPlan],
    fresh: Mapping[tuple[str, str], TargetPlan],
    done: Collection[tuple[str, str]],
    plan_file: str,
    secrets: Collection[str] = (),
) -> None:
    """The same spec and the same live state make the same changes: a saved plan whose
    changes differ from those (``scrubbed_changes``: as saved) was edited (or made by another
    sipctl), and is refused (exit 3). Applied as it was, a plan artefact whose A record's
    address was changed, with the spec and its line of text left alone, moved the domain's
    calls elsewhere."""

    from sipctl.reconciler.resources import canonical_json

    def same(kept: TargetPlan, made: TargetPlan) -> bool:
        # as they are first: a plan that held no secret is its fresh plan unmasked
        whole = [change.to_json() for change in kept.changes]
        if canonical_json(whole) == canonical_json([c.to_json() for c in made.changes]):
            return True
        return scrubbed_changes(kept.changes, secrets) == scrubbed_changes(made.changes, secrets)

    differ = [
        f"{layer} {target}"
        for (layer, target), kept in saved.items()
        if (layer, target) not in done and not same(kept, fresh[(layer, target)])
    ]
    if differ:
        raise StalePlanError(
            f"{plan_file}: its changes are not what its spec makes of the live state "
            f"({', '.join(differ)}): the file was edited, or made by another sipctl. Nothing "
            "was changed; run 'sipctl plan' again."
        )


def _steps(plan_run: PlanRun) -> list[tuple[TargetRun, list[Change]]]:
    """Changes grouped into apply steps: by phase, then target; a target's adjacent steps merge.

    When only DNS changes, its withdrawals and advertisements are adjacent and so go out in
    one UPDATE; when a host layer changes too, DNS withdraws before it and advertises after.
    """
    by_target = {(t.layer, t.target): t for t in plan_run.plan.targets}
    items: list[tuple[int, int, TargetRun, Change]] = []
    for index, run in enumerate(plan_run.runs):
        target = by_target[(run.layer.name, run.provider.target_id)]
        items.extend((change.phase, index, run, change) for change in target.changes)
    items.sort(key=lambda item: (item[0], item[1]))
    steps: list[tuple[TargetRun, list[Change]]] = []
    for _, _, run, change in items:
        if steps and steps[-1][0] is run:
            steps[-1][1].append(change)
        else:
            steps.append((run, [change]))
    return steps


def check_safe(plan: Plan, force: bool) -> list[str]:
    """Raise UnsafePlanError unless ``force`` passes every reason (``safety.refusal``);
    with force, return the overridden reasons."""
    refused = refusal(plan, force)
    if refused is not None:
        raise refused
    return refusal_reasons(plan)


def _after_failure(report: ApplyReport) -> str:
    # The failing step itself may be partly written (a provider that writes record by record
    # cannot take back what went out before the error), so never claim "nothing was applied".
    remains = (
        "'sipctl plan' shows exactly what remains, including anything this step wrote "
        "before it failed"
    )
    if not report.applied:
        return f"\n(no earlier step had been applied; {remains})"
    return f"\n(already applied before this failure: {', '.join(report.applied)}; {remains})"


def apply_plan(
    plan_run: PlanRun,
    ctx: RunContext,
    force: bool = False,
    last_riders: Callable[[TargetRun], Sequence[UpdateRider]] = lambda _run: (),
) -> ApplyReport:
    """Apply a plan whose live states were just read. Stops at the first failing step.

    ``last_riders`` is asked, just before the final step (everything else has succeeded
    then), for what rides in that step's change set (the lock's release, the record of the
    last apply); they are given to its provider's ``apply``.
    """
    check_safe(plan_run.plan, force)
    report = ApplyReport()
    steps = _steps(plan_run)
    for index, (run, changes) in enumerate(steps):
        riders = last_riders(run) if index == len(steps) - 1 else ()
        target = f"{run.layer.name} {run.provider.target_id}"
        ctx.log(f"applying {len(changes)} change(s) to {target}")
        try:
            lines = run.provider.apply(changes, run.live, riders)
        except SipctlError as exc:
            exc.message += _after_failure(report)
            raise
        except Exception as exc:
            # A bug, but the user's first need is to know what state the hosts are in.
            raise ProviderCrashed(
                f"{target}: the {run.provider.name} provider failed unexpectedly "
                f"({type(exc).__name__}: {exc})" + _after_failure(report)
            ) from exc
        # Every line names its layer, whatever the provider's own wording.
        layer = run.layer.name
        report.lines.extend(
            line if line.startswith(layer) else f"{layer}: {line}" for line in lines
        )
        if target not in report.applied:
            report.applied.append(target)
    return report
