"""The one path of ``plan`` and ``apply``: a list of domains, from specs or saved plans.

Every run takes the same steps: select the files, load and plan the specs (or read the
saved plans), check, show, save, apply, verify, report. A spec or plan named alone (no
--shard) is a list of one that speaks as one: its plan alone, its error the command's own.
Several files, a directory or --shard show each domain under a title, mark a domain's
error on it, and end with a summary table and the exit code of them all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from sipctl.cli_common import (
    load_checked,
    plan_json_or_view,
    print_plan,
    read_plan_file,
    verify_after_apply,
    write_plan_file,
)
from sipctl.errors import CommandExit, SipctlError, UnsafePlanError
from sipctl.output import Console

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.reconciler.engine import PlanRun
    from sipctl.reconciler.gitops.guarded import LockOptions, Outcome
    from sipctl.reconciler.gitops.multi import Domain
    from sipctl.reconciler.gitops.spec_files import Skipped
    from sipctl.reconciler.plan import Plan
    from sipctl.schemas.loader import LoadedSpec


def _ignore(_line: str) -> None:
    pass


class DomainRun:
    """The domains of one ``plan`` or ``apply``, whose connections close on leaving it."""

    def __init__(
        self,
        console: Console,
        paths: list[Path],
        shard: str | None,
        saved: bool = False,
        fmt: str = "human",
    ) -> None:
        self.console = console
        self.one = shard is None and len(paths) == 1 and not paths[0].is_dir()
        if fmt == "json":  # a refusal is JSON too (cli_boundary)
            console.promise_json("plan", str(paths[0]) if self.one else None)
        self.shard = shard
        self.paths = paths
        self.skipped: list[Skipped] = []
        self.domains: list[Domain] = []
        if not self.one:
            # several files or directories: a directory's files that are none are named in
            # the summary table or the JSON, with the reason
            from sipctl.reconciler.gitops import spec_files

            select = spec_files.select_plans if saved else spec_files.select_specs
            selection = select(paths)
            self.paths, self.skipped = selection.paths, selection.skipped

    def __enter__(self) -> DomainRun:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        from sipctl.reconciler.gitops.multi import close_all

        close_all(self.domains)

    def _context_factory(self, force: bool) -> Callable[[LoadedSpec], RunContext]:
        import os

        from sipctl.providers.base import RunContext

        # One copy of the environment for the run, not one per domain (nothing writes to it).
        env = dict(os.environ)
        notice = self.console.info if self.one else _ignore

        def make_ctx(loaded: LoadedSpec) -> RunContext:
            log = self.console.progress
            return RunContext(loaded.base_dir, env, log, notice, force=force)

        return make_ctx

    def plan(self, target: list[str] | None, force: bool, parallel: int, keep: bool) -> None:
        """Load, check and plan the specs (``keep``: their connections stay open, for
        apply), and mark each plan that apply would refuse."""
        from sipctl.reconciler.engine import check_safe
        from sipctl.reconciler.gitops import multi

        make_ctx = self._context_factory(force)
        self.domains, secrets = multi.plan_specs(
            self.paths, load_checked, make_ctx, target, parallel, self.shard, keep
        )
        self.console.add_secrets(secrets)
        if self.one and not keep:
            multi.check_all_safe(self.domains, lambda plan: _would_be_refused(plan, force))
        else:
            multi.check_all_safe(self.domains, lambda plan: check_safe(plan, force))

    def read_saved(self) -> None:
        from sipctl.reconciler.gitops import multi, shards

        domains = multi.load_saved(self.paths, read_plan_file)
        multi.refuse_overlaps(domains, "plans' specs; nothing was changed")
        self.domains = shards.take_shard(domains, self.shard)

    def show(self, fmt: str) -> None:
        from sipctl.reconciler import views

        if self.one:
            (domain,) = self.domains
            if domain.plan is not None:
                plan_json_or_view(self.console, domain.plan, fmt)
        elif fmt == "json":
            from sipctl.reconciler.gitops.domain_report import plans_json

            self.console.out(views.render_json(plans_json(self.domains, self.skipped)), end="")
        else:
            for domain in self.domains:
                title = f"{domain.name} ({domain.path})"
                self.console.out(f"## {title}\n" if fmt == "markdown" else f"=== {title} ===")
                if domain.plan is not None:
                    print_plan(self.console, domain.plan.to_json(), fmt)
                if domain.failed:
                    self.console.out(f"{domain.status}: {domain.message}")
                self.console.out("")

    def save(self, out: Path | None) -> None:
        """--out: the plan of one spec in that file (or, when it names an existing directory,
        in that directory as DOMAIN.plan.json); else one plan per domain in that directory
        (which may be created; its parents may not)."""
        plans = [(d.name, d.plan) for d in self.domains if d.plan is not None and not d.failed]
        if out is None or (self.one and not plans):
            return
        if self.one:
            if out.is_dir():
                out = out / f"{plans[0][0]}.plan.json"
            write_plan_file(out, plans[0][1].to_json())
            self.console.info(
                f"Saved the plan to {out}. Apply exactly this plan with: sipctl apply {out}"
            )
            return
        try:
            out.mkdir(exist_ok=True)
        except OSError as exc:
            raise SipctlError(f"{out}: cannot create the directory: {exc.strerror}") from None
        for name, plan in plans:
            write_plan_file(out / f"{name}.plan.json", plan.to_json())
        self.console.info(f"Saved one plan per domain in {out}/ (apply each: sipctl apply FILE).")

    def any_changes(self) -> bool:
        return any(d.plan is not None and d.plan.has_changes for d in self.domains)

    def apply(
        self, force: bool, locks: LockOptions, parallel: int, confirm: Callable[[], None]
    ) -> None:
        """Apply each domain under its locks. Several domains are confirmed once, before any
        lock; one is confirmed under its locks, and a saved plan alone is shown there."""
        from sipctl.reconciler.engine import check_safe
        from sipctl.reconciler.gitops.multi import apply_all

        def before(domain: Domain, fresh: PlanRun) -> None:
            if domain.saved is not None:
                if self.one:
                    print_plan(self.console, fresh.plan.to_json(), "human")
                check_safe(fresh.plan, force)
            elif self.one:
                confirm()

        def label(domain: Domain) -> str:
            if domain.saved is not None:
                return str(domain.path)
            return "the plan" if self.one else f"the plan of {domain.path}"

        if not self.one and self.any_changes():
            confirm()
        make_ctx = self._context_factory(force)
        detail = self.console.detail if self.one else _ignore
        say = self.console.info
        apply_all(self.domains, make_ctx, label, before, parallel, force, locks, say, detail)
        for domain in self.domains:
            if domain.ctx is not None:
                self.console.add_secrets(domain.ctx.secrets)
        if self.one and self.domains[0].outcome is not None:
            report_outcome(self.console, self.domains[0].outcome)

    def verify(self, no_verify: bool) -> None:
        """The end-to-end check of each applied domain (of one alone, also when it had no
        changes)."""
        for domain in [] if no_verify else self.domains:
            done = ("applied", "no changes") if self.one else ("applied",)
            if domain.status in done and domain.loaded is not None:
                try:
                    verify_after_apply(self.console, domain.loaded)
                except SipctlError as exc:
                    domain.fail(exc)

    def summarize(self, fmt: str) -> None:
        if self.one or fmt == "json":
            return
        from sipctl.reconciler.gitops.domain_report import summary_table

        table = summary_table(self.domains, self.skipped)
        if fmt == "markdown":
            self.console.out(f"```\n{table}```")
        else:
            self.console.out(table, end="")

    def settle(self) -> None:
        """One domain's error is the command's; several end with the exit code of them all."""
        if self.one:
            if self.domains[0].error is not None:
                raise self.domains[0].error
            return
        from sipctl.reconciler.gitops.domain_report import exit_code

        code = exit_code(self.domains)
        if code:
            raise CommandExit(code)


def _would_be_refused(plan: Plan, force: bool) -> None:
    """A plan that is only shown is refused in its own words: apply would refuse it."""
    from sipctl.reconciler.safety import refusal_reasons

    reasons = refusal_reasons(plan)
    if reasons and not force:
        raise UnsafePlanError(
            "this plan would be refused by apply (use --force if it is really meant):\n  "
            + "\n  ".join(reasons)
        )


def report_outcome(console: Console, outcome: Outcome) -> None:
    if outcome.report is not None:
        for line in outcome.report.lines:
            console.info(line)
        counts = outcome.plan_run.plan.counts()
        console.out(
            f"\nApply complete! {counts['add']} added, {counts['change']} changed, "
            f"{counts['destroy']} destroyed."
        )
    for line in outcome.lines:
        console.info(line)
