"""The one path of ``plan``, ``apply``, ``drift`` and ``verify``: a list of domains, from
specs or saved plans.

Every run takes the same steps: select the files, load and plan the specs (or read the
saved plans), check, show, save, apply, verify, report. ``drift`` and ``verify`` take the
same selection and loading (``drift`` the same reading of the live state too) and report
what they found for each domain (``Domain.report``). A spec or plan named alone (no
--shard) is a list of one that speaks as one: its plan or report alone, its error the
command's own. Several files, a directory or --shard show each domain under a title, mark
a domain's error on it, and end with a summary table and the exit code of them all (the
worst wins).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sipctl.cli_common import (
    load_checked,
    plan_json_or_view,
    print_plan,
    read_plan_file,
    verify_after_apply,
    write_plan_file,
)
from sipctl.errors import CommandExit, SipctlError, SpecError, UnsafePlanError, hint_line
from sipctl.output import Console

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.reconciler.engine import PlanRun
    from sipctl.reconciler.gitops.domain_report import Column
    from sipctl.reconciler.gitops.guarded import LockOptions, Outcome
    from sipctl.reconciler.gitops.multi import Domain, Report
    from sipctl.reconciler.gitops.spec_files import Skipped
    from sipctl.reconciler.plan import Plan
    from sipctl.schemas.loader import LoadedSpec


def _ignore(_line: str) -> None:
    pass


class DomainRun:
    """The domains of one ``plan``, ``apply``, ``drift`` or ``verify``, whose connections
    close on leaving it."""

    def __init__(
        self,
        console: Console,
        paths: list[Path],
        shard: str | None,
        saved: bool = False,
        fmt: str = "human",
        kind: str = "plan",
        json_out: Path | None = None,
    ) -> None:
        self.console = console
        self.one = shard is None and len(paths) == 1 and not paths[0].is_dir()
        if fmt == "json" or json_out is not None:  # a refusal is JSON too (cli_boundary)
            console.promise_json(kind, str(paths[0]) if self.one else None, fmt == "json")
        if fmt == "markdown":  # a refusal is a comment too (cli_boundary)
            from sipctl.schemas.hosting import file_domain

            console.promise_markdown((file_domain(paths[0]) or "?") if self.one else None)
        if json_out is not None:  # refused before anything is read
            from sipctl.cli_report_file import keep_report_in

            keep_report_in(console, json_out, kind)
        self.shard = shard
        self.paths = paths
        self.skipped: list[Skipped] = []
        self.domains: list[Domain] = []
        # plan --markdown of several domains: each one's section, printed with the table
        self._sections: list[tuple[Domain, str]] | None = None
        if not self.one:
            # several files or directories: a directory's files that are none are named in
            # the summary table or the JSON, with the reason
            from sipctl.reconciler.gitops import spec_files

            select = spec_files.select_plans if saved else spec_files.select_specs
            selection = select(paths)
            self.paths, self.skipped = selection.paths, selection.skipped

    def as_many(self) -> None:
        """A spec named alone that stands for several domains (verify --json of a host's
        file: its customers) reports as a run of several: one envelope, the worst code."""
        self.one = False

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

        self._plan_specs(target, force, parallel, keep)
        if self.one and not keep:
            multi.check_all_safe(self.domains, lambda plan: _would_be_refused(plan, force))
        else:
            multi.check_all_safe(self.domains, lambda plan: check_safe(plan, force))

    def read(self, target: list[str] | None, parallel: int) -> None:
        """Load the specs and read their live state as ``plan`` does, judging no plan;
        each domain keeps its connections, for what is read next (``each``)."""
        self._plan_specs(target, False, parallel, keep=True)

    def load(self) -> None:
        """Load and check the specs, as ``plan`` does before it reads anything."""
        from sipctl.reconciler.gitops import multi

        self.domains = multi.load_specs(self.paths, load_checked, self.shard)

    def _plan_specs(self, target: list[str] | None, force: bool, parallel: int, keep: bool) -> None:
        from sipctl.reconciler.engine import check_layer_names
        from sipctl.reconciler.gitops import multi

        check_layer_names(target)  # a typo is the run's error, not each domain's

        make_ctx = self._context_factory(force)
        self.domains, secrets = multi.plan_specs(
            self.paths, load_checked, make_ctx, target, parallel, self.shard, keep, not self.one
        )
        self.console.add_secrets(secrets)
        if target and not self.one:
            self._pass_over_untargeted(target)
        self._warn_unzoned_keys()

    def _warn_unzoned_keys(self) -> None:
        """Once per run and DNS credential (not per customer: a hoster has 1,000), that
        its hosting customers' files are kept to no zones by the runner profile."""
        from sipctl.reconciler.bindings import warn_unzoned_keys

        keys = (key for d in self.domains if not d.failed for key in d.customer_keys)
        warn_unzoned_keys(keys, self.console.warn)

    def _pass_over_untargeted(self, target: list[str]) -> None:
        """Of several specs, one that manages none of the layers --target names (a host's
        file with --target dns, a customer's with --target asterisk) is passed over and named
        as skipped; a run in which none manages them is an error."""
        from sipctl.reconciler.gitops.spec_files import Skipped

        names = ", ".join(dict.fromkeys(target))
        kept: list[Domain] = []
        for domain in self.domains:
            plan = domain.plan
            if plan is not None and not domain.failed and not plan.layers:
                if domain.ctx is not None:
                    domain.ctx.close()
                    domain.ctx = None
                self.skipped.append(Skipped(domain.path, f"manages none of --target {names}"))
            else:
                kept.append(domain)
        if self.domains and not kept:
            raise SpecError(
                f"--target {names}: none of these specs manages that layer; name a layer "
                "one of them manages"
            )
        self.domains = kept

    def each(self, what: str, work: Callable[[Domain], None], parallel: int) -> None:
        """``work`` on each domain that has not failed (one's failure is marked on it, the
        others go on); ``work`` sets the domain's ``report`` and ``status``."""
        from sipctl.reconciler.gitops.multi import run_each

        run_each([d for d in self.domains if not d.failed], parallel, what, work)
        for domain in self.domains:
            if domain.ctx is not None:
                self.console.add_secrets(domain.ctx.secrets)

    def read_saved(self) -> None:
        from sipctl.reconciler.gitops import multi, shards

        domains = multi.load_saved(self.paths, read_plan_file)
        multi.refuse_overlaps(domains, "plans' specs; nothing was changed")
        self.domains = shards.take_shard(domains, self.shard)

    def show(self, fmt: str) -> None:

        if self.one:
            (domain,) = self.domains
            if fmt == "markdown" and domain.failed:
                # a pipeline posts stdout as the merge request's comment: a refused plan
                # says so there too, marker first as its plan would be
                self.console.out(self._markdown_body(domain), end="")
            elif domain.plan is not None:
                refusal = domain.message if domain.status == "refused" else None
                plan_json_or_view(self.console, domain.plan, fmt, refusal)
                if fmt == "human":
                    _refusal_listed(domain)
        elif fmt == "json":
            from sipctl.reconciler.gitops.domain_report import plans_json

            self.console.out(self.console.json_text(plans_json(self.domains, self.skipped)), end="")
        elif fmt == "markdown":
            # one comment for every domain (its section, then the table's line of its error):
            # printed with the table, to fit (summarize)
            for domain in self.domains:
                _refusal_listed(domain)
            self._sections = [(domain, self._markdown_section(domain)) for domain in self.domains]
        else:

            def body(domain: Domain) -> None:
                if domain.plan is not None:
                    print_plan(self.console, domain.plan.to_json(), fmt)
                    _refusal_listed(domain)

            self._each_titled(body, self._shown_domains())

    def _shown_domains(self) -> list[Domain]:
        """The domains whose plans the text view shows: each, or with --quiet only those with
        changes, a refusal or an error (10,000 domains with no changes are one count)."""
        if not self.console.quiet:
            return self.domains
        return [d for d in self.domains if d.failed or _has_changes(d)]

    def _markdown_section(self, domain: Domain) -> str:
        """A domain's part of the comment: its title, its plan, its error (a file's name and
        an error are the merge request's, not ours: shown, not acted on)."""
        from sipctl.reconciler import views

        text = f"## {views.markdown_prose(f'{domain.name} ({domain.path})')}\n\n"
        return text + self._markdown_body(domain) + "\n"

    @staticmethod
    def _markdown_body(domain: Domain) -> str:
        """A domain's plan, or (failed before it had one) its failure laid out as a plan is,
        marker first; a failure after its plan (saving it) follows the plan."""
        from sipctl.reconciler import views

        if domain.plan is None:
            return views.render_markdown_failure(
                domain.name, domain.status, domain.message, domain.hint
            )
        text = views.render_markdown(domain.plan.to_json())
        if domain.failed:
            message = domain.message  # the terminal's error (stderr) still lists the reasons
            if isinstance(domain.error, UnsafePlanError):
                message = domain.error.listed_above().message
            reason = views.markdown_reason(domain.status, message, domain.hint)
            text += "\n".join(["", *reason]) + "\n"
        return text

    def _fitted_markdown(self, sections: list[tuple[Domain, str]]) -> str:
        """The domains' sections and the summary table as one comment that fits a forge's
        limit (``MARKDOWN_LIMIT``: GitHub refuses a longer one and the pipeline's step
        fails). Too long, the domains with no changes are left out (the table's count holds
        them) and the table lists only the others; then the last sections give way to a
        line that says how many, as one domain's plan gives way to the artefact's pointer.
        A table of thousands of changed domains lists as many as half the limit holds."""
        from sipctl.reconciler.gitops.domain_report import CHANGES, summary_table
        from sipctl.reconciler.views import MARKDOWN_LIMIT, markdown_code_block

        def table(rows_of: list[Domain] | None, notes: int | None = None) -> str:
            text = summary_table(self.domains, self.skipped, CHANGES, rows_of=rows_of, notes=notes)
            return "\n".join(markdown_code_block(text.rstrip("\n").split("\n"))) + "\n"

        if not self.console.quiet:  # --quiet: the domains with no changes are counted only
            whole = "".join(text for _, text in sections) + table(None)
            if len(whole) <= MARKDOWN_LIMIT:
                return whole
        busy = [(d, text) for d, text in sections if d.failed or _has_changes(d)]
        quiet = len(sections) - len(busy)
        listed = [d for d, _ in busy]
        notes = sum(d.failed for d in self.domains) + len(self.skipped)
        ending = table(listed, notes)
        # thousands of changed or failed domains, skipped files: rows and their failures
        # (and skipped files) give way alike to lines that count them
        while len(ending) > MARKDOWN_LIMIT // 2 and (listed or notes):
            listed, notes = listed[: len(listed) // 2], notes // 2
            ending = table(listed, notes)
        if quiet:
            ending = f"{quiet} domain(s) with no changes are left out here.\n\n" + ending
        kept: list[str] = []
        room = MARKDOWN_LIMIT - len(ending) - _LEFT_OUT_ROOM
        for index, (_, text) in enumerate(busy):
            if len(text) > room:
                told = [d for d in self.domains if d.failed][:notes]
                kept.append(_left_out_line([d for d, _ in busy[index:]], told))
                break
            kept.append(text)
            room -= len(text)
        return "".join(kept) + ending

    def _each_titled(
        self, body: Callable[[Domain], None], domains: list[Domain] | None = None
    ) -> None:
        """Each domain (of ``domains``, default all) under its title, as text: its ``body``,
        then its error (Markdown lays out each domain in ``_markdown_section``)."""
        for domain in self.domains if domains is None else domains:
            self.console.out(f"=== {domain.name} ({domain.path}) ===")
            body(domain)
            if domain.failed:
                self.console.out(f"{domain.status}: {domain.message}")
                if domain.hint:
                    self.console.out(hint_line(domain.hint))
            self.console.out("")

    def show_reports(self, kind: str, fmt: str, text_of: Callable[[Report], str]) -> None:
        """Each domain's report of ``kind`` (drift, verify): as text (``text_of``), or as
        JSON in the envelope, one document for the run; that document also goes to the
        console's ``json_file`` (drift --out)."""
        from sipctl.cli_report_file import save_report

        document = None
        if fmt == "json" or self.console.json_file is not None:
            document = self._reports_json(kind)
        if fmt == "json":
            if document is not None:
                self.console.out(self.console.json_text(document), end="")
        elif self.one:
            if self.domains[0].report is not None:
                self.console.out(text_of(self.domains[0].report), end="")
        else:

            def body(domain: Domain) -> None:
                if domain.report is not None:
                    self.console.out(text_of(domain.report), end="")

            self._each_titled(body)
        if document is not None and self.console.json_file is not None:
            save_report(self.console, self.console.json_text(document))
            self.console.info(f"Saved the {kind} report as JSON to {self.console.json_file}.")

    def _reports_json(self, kind: str) -> dict[str, Any] | None:
        """The run's JSON document of ``kind`` (None: one spec alone whose error is the
        command's, told by the error boundary)."""
        from sipctl.reconciler.envelope import single
        from sipctl.reconciler.gitops.domain_report import reports_json

        if self.one:
            (domain,) = self.domains
            if domain.report is None:
                return None
            data = domain.report.to_json()
            return single(kind, str(domain.path), domain.name, domain.status, data)

        def json_of(domain: Domain) -> dict[str, Any] | None:
            return domain.report.to_json() if domain.report is not None else None

        return reports_json(kind, self.domains, self.skipped, json_of)

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
            write_plan_file(out, self.console.scrub_data(plans[0][1].to_json()))
            self.console.info(
                f"Saved the plan to {out}. Apply exactly this plan with: sipctl apply {out}"
            )
            return
        try:
            out.mkdir(exist_ok=True)
        except OSError as exc:
            raise SipctlError(f"{out}: cannot create the directory: {exc.strerror}") from None
        written = {f"{name}.plan.json" for name, _ in plans}
        for name, plan in plans:
            write_plan_file(out / f"{name}.plan.json", self.console.scrub_data(plan.to_json()))
        self.console.info(f"Saved one plan per domain in {out}/ (apply each: sipctl apply FILE).")
        # 'apply DIR' applies every plan there: an earlier run's plan of a spec since removed,
        # or whose plan failed now (not saved), would go out with this run's
        left = sorted(str(p) for p in out.glob("*.plan.json") if p.name not in written)
        if left:
            more = f" and {len(left) - 10} more" if len(left) > 10 else ""
            self.console.warn(
                f"{out}: not written by this plan: {', '.join(left[:10])}{more} (an earlier "
                f"run's, of a spec not planned now or whose plan failed): 'sipctl apply {out}' "
                "would apply them too; remove them, or save into an empty directory"
            )

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

    def summarize(self, fmt: str, column: Column | None = None) -> None:
        """The summary table of several domains (``column``: a report's, counted by status;
        default: a plan's changes)."""
        if self.one or fmt == "json":
            return
        if fmt == "markdown":  # only plan has it: the sections ``show`` kept, with the table
            assert self._sections is not None and column is None
            self.console.out(self._fitted_markdown(self._sections), end="")
            return
        from sipctl.reconciler.gitops.domain_report import CHANGES, quiet_summary, summary_table

        if column is None and self.console.quiet:  # the domains shown (show) and one count
            table = quiet_summary(self.domains, self.skipped)
        elif column is None:
            table = summary_table(self.domains, self.skipped, CHANGES)
        else:
            table = summary_table(self.domains, self.skipped, column, by_status=True)
        self.console.out(table, end="")

    def settle(self, code_of: Callable[[Domain], int] | None = None) -> None:
        """One domain's error is the command's; several end with the exit code of them all.
        ``code_of``: the code of a domain's report (drift: 2 when it drifted); the worst
        code wins, and an error is worse than drift."""
        from sipctl.reconciler.gitops.domain_report import exit_code, worst

        if self.one:
            if self.domains[0].error is not None:
                raise self.domains[0].error
            codes = [code_of(self.domains[0])] if code_of is not None else []
        else:
            codes = [exit_code(self.domains)]
            if code_of is not None:
                codes += [code_of(d) for d in self.domains if not d.failed]
        code = worst(codes)
        if code:
            raise CommandExit(code)


def _refusal_listed(domain: Domain) -> None:
    """A domain refused for its plan, once that plan's view (which lists why apply refuses
    it) is shown: its error only points there, so that each reason is told once."""
    if domain.plan is not None and isinstance(domain.error, UnsafePlanError):
        domain.fail(domain.error.listed_above())


def _would_be_refused(plan: Plan, force: bool) -> None:
    """A plan that is only shown is refused in its own words: apply would refuse it."""
    from sipctl.reconciler.safety import refusal

    refused = refusal(plan, force, shown=True)
    if refused is not None:
        raise refused


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


# The room kept for _left_out_line's line (its longest, with seven-digit counts, is ~260).
_LEFT_OUT_ROOM = 300


def _left_out_line(left: list[Domain], told: list[Domain]) -> str:
    """The line that stands for the sections ``left`` out of a Markdown comment, counting
    what they held: the plans of domains that did not fail (each saved whole by ``plan
    --out``, the pipeline's artefact) and failed domains, which have no saved plan: their
    errors are in the table's failure lines (``told``), or counted there."""
    failed = [d for d in left if d.failed]
    plans = len(left) - len(failed)
    counted: list[str] = []
    where: list[str] = []
    if plans:
        counted.append(f"{plans} more domain plan(s)")
        where.append("each whole plan is in the pipeline's artefact (plan --out)")
    if failed:
        counted.append(f"{len(failed)} more failed domain(s)")
        shown = {id(d) for d in told}
        listed = sum(id(d) in shown for d in failed)
        if listed == len(failed):
            where.append("each failure is told in the table below")
        elif listed:
            where.append(
                f"the table below tells {listed} of these failures, and sipctl plan -f "
                "without --markdown tells each"
            )
        else:
            where.append("sipctl plan -f without --markdown tells each failure")
    return f"... {' and '.join(counted)} left out here: {'; '.join(where)}.\n\n"


def _has_changes(domain: Domain) -> bool:
    return domain.plan is not None and domain.plan.has_changes
