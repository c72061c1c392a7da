"""The example pipelines (examples/gitops/) run as the CI would, against the real BIND.

Each workflow's YAML is parsed and its script lines are executed in order, in a copy of the
example repository. Only what a CI provides is substituted: environment variables, secrets,
the workspace path, and the CI's own services: GitHub's are small stub programs on PATH
(``pip`` is a no-op since sipctl is installed here; ``gh`` posts comments and moves
artifacts through a directory), GitLab's REST API is a loopback server
(``fixtures.gitlab_api``) that the pipeline's own ``curl`` lines talk to. The spec's
addresses are pointed at the test servers: the DNS server and its key, and the PBX (a
``dir:`` target standing in for the host).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.bind import BindServer
from fixtures.common import EXAMPLES
from fixtures.gitlab_api import MR, NOTE_BOT, NOTE_TOKEN, PEOPLE, PROJECT, READ_TOKEN, FakeGitLab
from fixtures.state_dir import child_env
from fixtures.waiting import wait_until

GITOPS = EXAMPLES / "gitops"
HOSTING = EXAMPLES / "hosting"
DOMAIN = "mycompany.example"
VENV_BIN = Path(sys.executable).parent

STUB = r'''#!PYTHON
"""CI services for the pipeline test: gh and pip, by the name this is called as."""
import json, os, shutil, sys
from pathlib import Path

store = Path(os.environ["STUB_DIR"])
name, args = Path(sys.argv[0]).name, sys.argv[1:]
(store / "calls.log").open("a").write(name + " " + " ".join(args) + "\n")

def opt(flag):
    return args[args.index(flag) + 1] if flag in args else None

if name == "pip":
    sys.exit(0)
if name == "gh":
    if args[:2] == ["pr", "comment"]:
        shutil.copy(opt("--body-file"), store / f"comment-{args[2]}.md")
    elif args[:2] == ["run", "list"]:
        # the plan of the merged head commit, never "the newest run of the branch"
        if opt("--commit") != os.environ["EXPECT_HEAD_SHA"] or "--branch" in args:
            sys.exit(f"gh stub: run list must select by --commit, got {args}")
        print("4242")
    elif args[0] == "api":
        # GitHub REST, as documented: GET/POST repos/{owner}/{repo}/issues/{n}/comments,
        # PATCH repos/{owner}/{repo}/issues/comments/{id}
        method = opt("--method") or "GET"
        path = next(a for a in args[1:] if a.startswith("repos/"))
        repo = os.environ["GITHUB_REPOSITORY"]
        comments = store / "comments.json"
        known = json.loads(comments.read_text()) if comments.exists() else {}
        if method == "GET" and path == f"repos/{repo}/commits/{os.environ['GITHUB_SHA']}/pulls":
            # the merged pull request of the pushed commit: gh's --jq prints its head SHA
            if "merged_at" not in opt("--jq") or ".head.sha" not in opt("--jq"):
                sys.exit(f"gh stub: the filter must take the merged request's head: {opt('--jq')}")
            if not os.environ.get("STUB_NO_MERGED_PR"):
                print(os.environ["EXPECT_HEAD_SHA"])
            sys.exit(0)
        if method == "GET" and path == f"repos/{repo}/issues/7/comments":
            # gh's --jq filter: the comments whose body starts with the plan's marker
            # of the workflow's own comments only (the job's token comments as this bot)
            marker = opt("--jq").split('startswith("', 1)[1].split('")', 1)[0]
            if not marker.startswith("<!-- sipctl-plan:"):
                sys.exit(f"gh stub: the filter must look for the plan marker: {opt('--jq')}")
            if '.user.login == "github-actions[bot]" and ' not in opt("--jq"):
                sys.exit(f"gh stub: the filter must take the workflow's own comments: {opt('--jq')}")
            for item in known.values():
                if item["user"]["login"] == "github-actions[bot]" and item["body"].startswith(marker):
                    print(item["id"])
        elif method == "POST" and path == f"repos/{repo}/issues/7/comments":
            body = Path(opt("-F").split("=@", 1)[1]).read_text()
            bot = {"login": "github-actions[bot]"}
            known[str(len(known) + 1)] = {"id": len(known) + 1, "body": body, "user": bot}
        elif method == "PATCH" and path.startswith(f"repos/{repo}/issues/comments/"):
            cid = path.rsplit("/", 1)[1]
            if cid not in known:
                sys.exit(f"gh stub: no comment {cid}")
            known[cid]["body"] = Path(opt("-F").split("=@", 1)[1]).read_text()
        else:
            sys.exit(f"gh stub: not a documented call: {method} {path}")
        comments.write_text(json.dumps(known))
        for item in known.values():
            (store / "comment-7.md").write_text(item["body"])
    elif args[:2] == ["run", "download"]:
        # an artifact of one directory holds that directory's files
        source = store / "artifacts" / opt("--name")
        shutil.copytree(source, Path(opt("--dir") or "."), dirs_exist_ok=True)
    else:
        sys.exit(f"gh stub: unexpected {args}")
    sys.exit(0)
sys.exit(f"stub: unknown program {name}")
'''


@dataclass
class JobResult:
    code: int
    output: str


class FakeCi:
    """A workspace (a copy of examples/gitops), stub services, and the test servers."""

    def __init__(self, bind: BindServer, root: Path) -> None:
        self.bind = bind
        self.repo = root / "repo"
        self.pbx = root / "pbx"  # the PBX host's root; outside the workspace, which is wiped
        self.stub_dir = root / "ci"
        (self.stub_dir / "bin").mkdir(parents=True)
        (self.stub_dir / "artifacts").mkdir()
        script = self.stub_dir / "stub.py"
        script.write_text(STUB.replace("PYTHON", sys.executable))
        script.chmod(0o755)
        for program in ("gh", "pip"):
            (self.stub_dir / "bin" / program).symlink_to(script)
        self.ssh_key = root / "secrets" / "ssh_key"
        self.ssh_key.parent.mkdir()
        self.ssh_key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n(write key)\n")
        self.ssh_read_key = root / "secrets" / "ssh_read_key"
        self.ssh_read_key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n(read key)\n")
        self.merged_later = ""  # what another merge added to the spec after a review
        self.state = root / "state"  # a hoster's PBX and zone files, outside the workspace
        self.hosting: list[str] = []  # files of examples/hosting the repository has in specs/
        # the runner profile, a CI variable: the example's, pointed at the test's BIND
        profile = (GITOPS / "runner-profile.yaml").read_text()
        assert '"192.0.2.53:53"' in profile, "the example runner profile changed"
        self.runner_profile = profile.replace('"192.0.2.53:53"', f'"{bind.server}"')
        # the hoster's zone files are on the runner, outside the checkout: the admin allows
        # their directory (the one line a hoster adds to the example's profile)
        self.runner_profile += f"zone_files: [{self.state}]\n"
        # the test's PBX is a dir: target on the runner, outside the workspace (the real
        # one is reached over SSH): the admin allows that directory too, and the hoster's
        self.runner_profile += f"dir_targets: [{self.pbx}, {self.state}]\n"
        self.runner_profile_file = root / "secrets" / "runner-profile.yaml"
        self.runner_profile_file.write_text(self.runner_profile)
        # the PBX's host key, a CI variable the jobs add to the runner's ~/.ssh/known_hosts
        self.known_hosts = "pbx.mycompany.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPbx"
        # GitLab's API: the merge request's notes, and the plan job's artifact for apply
        artifact = self.stub_dir / "artifacts" / "sipctl-plan"
        self.gitlab = FakeGitLab(artifact, commit_sha="0123abcd", mr_sha=HEAD_SHA)
        self.fresh_checkout()

    def fresh_checkout(self) -> None:
        """What actions/checkout and GitLab's clone do; the spec pointed at the test servers."""
        shutil.rmtree(self.repo, ignore_errors=True)
        shutil.copytree(GITOPS, self.repo)
        spec = self.repo / "sipctl.yaml"
        text = spec.read_text()
        for old, new in (
            ("server: 192.0.2.53:53", f"server: '{self.bind.server}'"),
            ("tsig: {name: sipctl,", f"tsig: {{name: {self.bind.key_name},"),
            ("target: ssh://root@pbx.mycompany.example:22", f"target: 'dir:{self.pbx}'"),
        ):
            assert old in text, f"the example spec no longer has {old!r}"
            text = text.replace(old, new)
        spec.write_text(text + self.merged_later)
        if self.hosting:
            (self.repo / "specs").mkdir()
        for name in self.hosting:
            text = (HOSTING / name).read_text()
            text = text.replace("dir:state/", f"dir:{self.state}/")
            text = text.replace("file: state/", f"file: {self.state}/")
            (self.repo / "specs" / name).write_text(text)

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        path = f"{self.stub_dir / 'bin'}:{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin"
        return child_env(
            {
                "PATH": path,
                "HOME": str(self.repo.parent),
                "LANG": "C.UTF-8",
                "STUB_DIR": str(self.stub_dir),
                "CI": "true",
                **extra,
            }
        )

    def run_script(self, script: str, env: dict[str, str]) -> JobResult:
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=self.repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return JobResult(done.returncode, done.stdout + done.stderr)

    def keep_artifact(self, name: str, paths: list[str], *, flatten: bool) -> None:
        """Keep the paths as the artifact `name`: GitHub's of one directory holds its files
        (flatten), GitLab's keeps each path as it is in the workspace."""
        target = self.stub_dir / "artifacts" / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for path in paths:
            source = self.repo / path
            if source.is_dir():
                shutil.copytree(source, target if flatten else target / path, dirs_exist_ok=True)
            else:
                shutil.copy(source, target / (source.name if flatten else path))


# --- GitHub Actions -----------------------------------------------------------------------------

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


HEAD_SHA = "0123456789abcdef0123456789abcdef01234567"
MERGE_SHA = "89abcdef0123456789abcdef0123456789abcdef"  # the merge's commit on the default branch


# The pipelines' key names, and the test server's: the read-only key is the fixture's own.
WRITE_KEY = "sipctl"
READ_KEY = "sipctl-plan"


def github_context(ci: FakeCi, environment: str | None) -> dict[str, str]:
    """What ${{ }} may name in a job; the production environment's secrets only in a job
    that names that environment, as GitHub gives them."""
    assert ci.bind.read_key_name == READ_KEY
    production = {
        "secrets.SIPCTL_TSIG_SECRET": ci.bind.secret,
        "secrets.SIPCTL_SSH_KEY": ci.ssh_key.read_text(),
    }
    return {
        **(production if environment == "production" else {}),
        "secrets.SIPCTL_TSIG_READ_SECRET": ci.bind.read_secret,
        "secrets.SIPCTL_SSH_READ_KEY": ci.ssh_read_key.read_text(),
        "vars.SIPCTL_RUNNER_PROFILE": ci.runner_profile,
        "vars.SIPCTL_KNOWN_HOSTS": ci.known_hosts,
        "github.run_id": "4242",
        "github.token": "gh-test-token",
        "github.event.pull_request.number": "7",
        "github.event.pull_request.head.ref": "feature",
        "github.event.pull_request.head.sha": HEAD_SHA,
    }


def _expand(value: Any, context: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        assert match.group(1) in context, f"the test does not provide ${{{{ {match.group(1)} }}}}"
        return context[match.group(1)]

    return _EXPR.sub(one, str(value))


def run_github_job(
    ci: FakeCi, workflow: dict[str, Any], job_name: str, extra: dict[str, str] | None = None
) -> JobResult:
    job = workflow["jobs"][job_name]
    context = github_context(ci, job.get("environment"))
    base = {
        k: _expand(v, context) for k, v in {**workflow.get("env", {}), **job.get("env", {})}.items()
    }
    if base.get("TSIG_KEY_NAME") == WRITE_KEY:
        base["TSIG_KEY_NAME"] = ci.bind.key_name
    base.update(
        GITHUB_WORKFLOW=workflow["name"],
        GITHUB_WORKSPACE=str(ci.repo),
        GITHUB_REPOSITORY="example/pbx-config",
        EXPECT_HEAD_SHA=HEAD_SHA,
        GITHUB_SHA=MERGE_SHA,
        **(extra or {}),
    )
    output = ""
    failed = 0
    outcomes: dict[str, str] = {}  # steps.ID.outcome of the steps run
    for step in job["steps"]:
        condition = str(step.get("if", ""))
        if failed and "always()" not in condition and "!cancelled()" not in condition:
            continue  # after a failed step only these steps run (the artifacts, the comment)
        needed = re.findall(r"steps\.([\w-]+)\.outcome == 'success'", condition)
        if any(outcomes.get(name) != "success" for name in needed):
            continue
        uses = step.get("uses")
        if uses is not None:
            action = uses.split("@")[0]
            if action == "actions/checkout":
                ci.fresh_checkout()
            elif action == "actions/upload-artifact":
                ci.keep_artifact(step["with"]["name"], [step["with"]["path"]], flatten=True)
            else:
                assert action == "actions/setup-python", f"unknown action {uses}"
            continue
        env = ci.env({**base, **{k: _expand(v, context) for k, v in step.get("env", {}).items()}})
        result = ci.run_script(_expand(step["run"], context), env)
        output += f"--- {step.get('name', step['run'][:40])}\n{result.output}"
        failed = failed or result.code  # the job fails with its first failed step
        if "id" in step:
            outcomes[step["id"]] = "failure" if result.code else "success"
    return JobResult(failed, output)


# --- GitLab CI ----------------------------------------------------------------------------------


def gitlab_env(
    ci: FakeCi, pipeline: dict[str, Any], source: str, job: dict[str, Any] | None = None
) -> dict[str, str]:
    env = {
        "CI_PIPELINE_SOURCE": source,
        "CI_JOB_ID": "4242",
        "CI_API_V4_URL": ci.gitlab.url,
        "CI_PROJECT_ID": PROJECT,
        "CI_MERGE_REQUEST_IID": MR,
        "CI_COMMIT_SHA": ci.gitlab.commit_sha,
        "CI_COMMIT_BRANCH": "main",
        "CI_DEFAULT_BRANCH": "main",
        "SIPCTL_TSIG_READ_SECRET": ci.bind.read_secret,
        "SIPCTL_SSH_READ_KEY": str(ci.ssh_read_key),  # a file-type variable is a path
        "SIPCTL_NOTE_TOKEN": NOTE_TOKEN,
        "SIPCTL_RUNNER_PROFILE": str(ci.runner_profile_file),  # a file-type variable
        "SIPCTL_KNOWN_HOSTS": ci.known_hosts,
    }
    if source != "merge_request_event":
        # Protected variables: GitLab passes them only to pipelines of protected refs (the
        # default branch's pushes and schedules), never to a merge request's.
        env["SIPCTL_TSIG_SECRET"] = ci.bind.secret
        env["SIPCTL_SSH_KEY"] = str(ci.ssh_key)
        env["SIPCTL_API_READ_TOKEN"] = READ_TOKEN
    variables = {**pipeline.get("variables", {}), **(job or {}).get("variables", {})}
    for key, value in variables.items():
        env[key] = re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), ""), str(value))
    return env


def run_gitlab_job(
    ci: FakeCi,
    pipeline: dict[str, Any],
    job_name: str,
    source: str,
    extra: dict[str, str] | None = None,
) -> JobResult:
    job = pipeline[job_name]
    rule = job["rules"][0]["if"]
    assert f'"{source}"' in rule, f"{job_name} does not run on {source} pipelines: {rule}"
    ci.fresh_checkout()
    lines = [*pipeline.get("default", {}).get("before_script", []), *job["script"]]
    lines = [
        line.replace(f"sipctl_credentials {WRITE_KEY} ", f"sipctl_credentials {ci.bind.key_name} ")
        for line in lines
    ]
    env = ci.env({**gitlab_env(ci, pipeline, source, job), **(extra or {})})
    result = ci.run_script("\n".join(lines), env)
    if result.code == 0 and "artifacts" in job and job_name == "sipctl-plan":
        ci.keep_artifact(job_name, job["artifacts"]["paths"], flatten=False)
    return result


# --- the tests ----------------------------------------------------------------------------------


@pytest.fixture
def ci(bind: BindServer, tmp_path: Path) -> Iterator[FakeCi]:
    bind.new_zone(zone=DOMAIN)
    made = FakeCi(bind, tmp_path)
    yield made
    made.gitlab.stop()
    _drop_zone(bind)


def _drop_zone(bind: BindServer) -> None:
    """Delete the zone with its file and journal, and wait until BIND has done so: the next
    test adds a zone of the same name (the example's domain) from a fresh file."""
    bind.rndc("delzone", "-clean", DOMAIN)
    files = [bind.dir / f"{DOMAIN}.zone", bind.dir / f"{DOMAIN}.zone.jnl"]

    def deleted() -> bool:
        gone = bind.rndc("zonestatus", DOMAIN).returncode != 0
        return gone and not any(f.exists() for f in files)

    wait_until(deleted, f"BIND deleted zone {DOMAIN}")


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((GITOPS / name).read_text())
    assert isinstance(data, dict)
    return data


def test_the_pipelines_are_not_mistaken_for_specs() -> None:
    for path in GITOPS.glob("*.yml"):
        assert all(line.strip() != "version: 1" for line in path.read_text().splitlines())


def test_github_pipeline_plans_comments_applies_the_saved_plan_and_checks_drift(
    ci: FakeCi, bind: BindServer
) -> None:
    workflow = _load("github-actions.yml")
    plan = run_github_job(ci, workflow, "plan")
    assert plan.code == 0, plan.output
    # the host key is the CI variable's, in the runner's own known_hosts (HOME), not the
    # checkout's: a pull request cannot choose it
    trusted = (ci.repo.parent / ".ssh" / "known_hosts").read_text()
    assert trusted.splitlines()[0] == ci.known_hosts
    comment = (ci.stub_dir / "comment-7.md").read_text()
    assert "SRV" in comment and DOMAIN in comment
    # a second plan updates the same comment (sticky, found by its hidden marker)
    assert run_github_job(ci, workflow, "plan").code == 0
    assert list(json.loads((ci.stub_dir / "comments.json").read_text())) == ["1"]
    calls = (ci.stub_dir / "calls.log").read_text()
    assert "gh api --method PATCH repos/example/pbx-config/issues/comments/1" in calls
    assert (ci.stub_dir / "artifacts" / "sipctl-plan" / "plan.json").exists()
    assert bind.query(f"_sip._udp.{DOMAIN}", "SRV") == [], "planning changed nothing"

    apply = run_github_job(ci, workflow, "apply")
    assert apply.code == 0, apply.output
    assert "Apply complete!" in apply.output
    assert bind.query(f"_sip._udp.{DOMAIN}", "SRV") == [f"10 0 5060 pbx.{DOMAIN}."]
    assert (ci.pbx / "etc" / "asterisk" / "extensions_sipctl.conf").exists()

    drift = run_github_job(ci, workflow, "drift")
    assert drift.code == 0, drift.output
    bind.update(DOMAIN, delete=[("_sip._tcp", "SRV")])
    drift = run_github_job(ci, workflow, "drift")
    assert drift.code == 2, drift.output
    assert f"- SRV _sip._tcp.{DOMAIN}. was removed on the live side" in drift.output
    # one run of drift reads the live side once: its text in the log, its JSON kept
    steps = "\n".join(step.get("run", "") for step in workflow["jobs"]["drift"]["steps"])
    assert steps.count("sipctl drift") == 1, steps
    kept = json.loads((ci.stub_dir / "artifacts" / "sipctl-drift" / "drift.json").read_text())
    assert kept["domains"][0]["status"] == "drifted"


def test_github_pipeline_replaces_the_comment_when_the_plan_fails(ci: FakeCi) -> None:
    """A plan that fails after a good one (here the runner profile, which a pull request
    cannot change, refuses the spec's DNS server) replaces the good plan's comment with
    why, found by the same marker, and the job still fails: the old plan's comment does
    not stay up as the pull request's plan."""
    workflow = _load("github-actions.yml")
    # a person's comment quoting the marker is theirs: never the one updated
    quoted = {"id": 1, "body": f"<!-- sipctl-plan:{DOMAIN} -->\nmine", "user": {"login": "anna"}}
    (ci.stub_dir / "comments.json").write_text(json.dumps({"1": quoted}))
    assert run_github_job(ci, workflow, "plan").code == 0
    assert "SRV" in (ci.stub_dir / "comment-7.md").read_text()
    # the example's profile: not the test's DNS server (its PBX, a dir: target, stays allowed)
    ci.runner_profile = (GITOPS / "runner-profile.yaml").read_text() + f"dir_targets: [{ci.pbx}]\n"
    failed = run_github_job(ci, workflow, "plan")
    assert failed.code == 3, failed.output
    comments = json.loads((ci.stub_dir / "comments.json").read_text())
    assert list(comments) == ["1", "2"] and comments["1"] == quoted, "the same comment, updated"
    body = comments["2"]["body"]
    assert body.startswith(f"<!-- sipctl-plan:{DOMAIN} -->\n"), body
    assert "refused: " in body and "SRV" not in body, body
    assert ci.bind.secret not in body and ci.bind.read_secret not in body
    # a spec that does not validate: Validate fails, the plan still says why there
    ci.merged_later = "not_a_key: 1\n"
    invalid = run_github_job(ci, workflow, "plan")
    assert invalid.code == 1, invalid.output
    comments = json.loads((ci.stub_dir / "comments.json").read_text())
    assert list(comments) == ["1", "2"] and comments["1"] == quoted, "the same comment, updated"
    body = comments["2"]["body"]
    assert body.startswith(f"<!-- sipctl-plan:{DOMAIN} -->\n") and "not\\_a\\_key" in body, body


def test_github_manual_replan_and_apply_of_main(ci: FakeCi, bind: BindServer) -> None:
    workflow = _load("github-actions.yml")
    choice = workflow[True]["workflow_dispatch"]["inputs"]["action"]  # YAML 1.1: on -> True
    assert choice["options"] == ["drift", "replan-and-apply"] and choice["default"] == "drift"
    job = workflow["jobs"]["apply-main"]
    assert "inputs.action == 'replan-and-apply'" in job["if"]
    assert "github.event.repository.default_branch" in job["if"]
    assert "inputs.action == 'drift'" in workflow["jobs"]["drift"]["if"]
    assert job["environment"] == workflow["jobs"]["apply"]["environment"]
    assert job["concurrency"] == workflow["jobs"]["apply"]["concurrency"], "one apply queue"

    applied = run_github_job(ci, workflow, "apply-main")
    assert applied.code == 0, applied.output
    assert bind.query(f"_sip._tcp.{DOMAIN}", "SRV") == [f"10 0 5060 pbx.{DOMAIN}."]
    assert (ci.stub_dir / "artifacts" / "sipctl-plan-main" / "plan.json").exists()
    again = run_github_job(ci, workflow, "apply-main")
    assert again.code == 0 and "No changes" in again.output, again.output


def test_github_pipeline_refuses_a_stale_saved_plan(ci: FakeCi, bind: BindServer) -> None:
    workflow = _load("github-actions.yml")
    assert run_github_job(ci, workflow, "plan").code == 0
    bind.update(DOMAIN, add=[("_sip._udp", 60, "SRV", "5 0 5060 elsewhere.example.net.")])
    before = bind.zone_records(DOMAIN)
    apply = run_github_job(ci, workflow, "apply")
    assert apply.code == 3, apply.output
    assert "stale" in apply.output and "Re-plan" in apply.output
    assert bind.zone_records(DOMAIN) == before, "nothing was applied (the lock is gone too)"


def test_gitlab_pipeline_plans_comments_applies_the_saved_plan_and_checks_drift(
    ci: FakeCi, bind: BindServer
) -> None:
    pipeline = _load("gitlab-ci.yml")
    plan = run_gitlab_job(ci, pipeline, "sipctl-plan", "merge_request_event")
    assert plan.code == 0, plan.output
    assert "SRV" in _note(ci)
    ci.gitlab.calls.clear()

    apply = run_gitlab_job(ci, pipeline, "sipctl-apply", "push")
    assert apply.code == 0, apply.output
    assert bind.query(f"_sip._tcp.{DOMAIN}", "SRV") == [f"10 0 5060 pbx.{DOMAIN}."]
    api = "/api/v4/projects/1"
    assert ci.gitlab.calls == [
        ("GET", f"{api}/repository/commits/0123abcd/merge_requests"),
        ("GET", f"{api}/merge_requests/7/pipelines"),
        ("GET", f"{api}/pipelines/55/jobs?scope[]=success"),
        ("GET", f"{api}/jobs/555/artifacts"),
        ("GET", "/object-storage/555/artifacts.zip"),
    ], "the plan of the merged head SHA's pipeline, found by documented calls"

    assert run_gitlab_job(ci, pipeline, "sipctl-drift", "schedule").code == 0
    drift_report = ci.repo / "drift" / "drift.json"
    report = json.loads(drift_report.read_text())["domains"][0]["drift"]
    assert {t["by"] for t in report["targets"]} == {"gitlab-4242"}, "the record names the job"
    bind.update(DOMAIN, add=[(f"pbx.{DOMAIN}.", 3600, "A", "198.51.100.1")])
    drift = run_gitlab_job(ci, pipeline, "sipctl-drift", "schedule")
    assert drift.code == 2, drift.output
    assert f"~ A pbx.{DOMAIN}. was changed on the live side" in drift.output, drift.output
    report = json.loads(drift_report.read_text())
    assert report["domains"][0]["status"] == "drifted", "one run: the text and the file"
    script = "\n".join(pipeline["sipctl-drift"]["script"])
    assert script.count("sipctl drift") == 1, script


def _note(ci: FakeCi) -> str:
    """The body of the plan's note: the one note of the note token's user."""
    (note,) = ci.gitlab.notes_by(NOTE_BOT)
    return note.body


def _note_calls(ci: FakeCi) -> list[tuple[str, str]]:
    """The calls of the plan job's note step, the query of a listing left out but its page."""
    return [
        (method, re.sub(r"\?(.*&)?(page=\d+).*", r"?\2", path.removeprefix("/api/v4")))
        for method, path in ci.gitlab.calls
    ]


def test_gitlab_plan_note_is_one_per_marker_updated_by_each_pipeline(ci: FakeCi) -> None:
    """The first pipeline of a merge request posts the plan's note; every later one (a
    failed plan's too) updates that note in place, found by its marker among the token's
    own notes, on whichever page of the request's notes it is; a person's note, even one
    quoting the marker, is never touched."""
    pipeline = _load("gitlab-ci.yml")
    marker = f"<!-- sipctl-plan:{DOMAIN} -->\n"
    quoted = ci.gitlab.add_note(marker + "my own plan, hand-made", PEOPLE["anna"])
    ci.gitlab.add_note("added 1 commit", PEOPLE["anna"], system=True)
    notes = "/projects/1/merge_requests/7/notes"

    first = run_gitlab_job(ci, pipeline, "sipctl-plan", "merge_request_event")
    assert first.code == 0, first.output
    (ours,) = ci.gitlab.notes_by(NOTE_BOT)
    assert ours.body.startswith(marker) and "SRV" in ours.body, ours.body
    assert _note_calls(ci) == [("GET", "/user"), ("GET", f"{notes}?page=1"), ("POST", notes)]
    planned = ours.body

    ours.body = marker + "an older plan"
    ci.gitlab.calls.clear()
    second = run_gitlab_job(ci, pipeline, "sipctl-plan", "merge_request_event")
    assert second.code == 0, second.output
    assert _note(ci) == planned, "the same note, updated"
    assert _note_calls(ci)[-1] == ("PUT", f"{notes}/{ours.id}")

    # 250 newer notes: the plan's note is on the third page of 100, the last updated first
    for n in range(250):
        ci.gitlab.add_note(f"review remark {n}", PEOPLE["anna"])
    example = (GITOPS / "runner-profile.yaml").read_text()  # not the test's DNS server
    ci.runner_profile_file.write_text(example + f"dir_targets: [{ci.pbx}]\n")
    ci.gitlab.calls.clear()
    failed = run_gitlab_job(ci, pipeline, "sipctl-plan", "merge_request_event")
    assert failed.code == 3, failed.output
    assert _note_calls(ci) == [
        ("GET", "/user"),
        *[("GET", f"{notes}?page={page}") for page in (1, 2, 3)],
        ("PUT", f"{notes}/{ours.id}"),
    ]
    body = _note(ci)
    assert body.startswith(marker) and "refused: " in body and "hint: " in body, body
    assert ci.gitlab.notes[quoted.id].body == marker + "my own plan, hand-made"
    assert len(ci.gitlab.notes) == 253, "no other note was added"


def test_gitlab_pipeline_posts_the_note_of_a_failed_plan(ci: FakeCi) -> None:
    """A merge request's plan that fails posts a note saying why (the newest note is this
    plan's, not the last good one's), under the domain's marker, and the job fails."""
    pipeline = _load("gitlab-ci.yml")
    example = (GITOPS / "runner-profile.yaml").read_text()  # not the test's DNS server
    ci.runner_profile_file.write_text(example + f"dir_targets: [{ci.pbx}]\n")
    failed = run_gitlab_job(ci, pipeline, "sipctl-plan", "merge_request_event")
    assert failed.code == 3, failed.output
    body = _note(ci)
    assert body.startswith(f"<!-- sipctl-plan:{DOMAIN} -->\n"), body
    assert "refused: " in body and ci.bind.read_secret not in body, body
    # a spec that does not validate: the note says why too, and the job fails
    ci.merged_later = "not_a_key: 1\n"
    invalid = run_gitlab_job(ci, pipeline, "sipctl-plan", "merge_request_event")
    assert invalid.code == 1, invalid.output
    body = _note(ci)
    assert body.startswith(f"<!-- sipctl-plan:{DOMAIN} -->\n") and "not\\_a\\_key" in body, body


def test_gitlab_pipeline_refuses_a_stale_saved_plan(ci: FakeCi, bind: BindServer) -> None:
    pipeline = _load("gitlab-ci.yml")
    assert run_gitlab_job(ci, pipeline, "sipctl-plan", "merge_request_event").code == 0
    bind.update(DOMAIN, add=[(f"pbx.{DOMAIN}.", 3600, "A", "198.51.100.1")])
    apply = run_gitlab_job(ci, pipeline, "sipctl-apply", "push")
    assert apply.code == 3, apply.output
    assert "Re-plan: start sipctl-replan-apply" in apply.output


def test_gitlab_apply_is_a_manual_job_in_an_approval_environment() -> None:
    pipeline = _load("gitlab-ci.yml")
    for name in ("sipctl-apply", "sipctl-replan-apply"):
        apply = pipeline[name]
        assert apply["environment"] == pipeline["sipctl-apply"]["environment"], name
        assert apply["environment"]["deployment_tier"] == "production"
        assert all(rule.get("when") == "manual" for rule in apply["rules"]), name
        assert all("$CI_DEFAULT_BRANCH" in rule["if"] for rule in apply["rules"]), name
        assert apply["resource_group"] == "sipctl", "one queue: GitLab never cancels in it"


def test_gitlab_apply_refuses_without_a_plan_of_the_merged_head(
    ci: FakeCi, bind: BindServer
) -> None:
    pipeline = _load("gitlab-ci.yml")
    assert run_gitlab_job(ci, pipeline, "sipctl-plan", "merge_request_event").code == 0
    before = bind.zone_records(DOMAIN)
    ci.gitlab.no_plan_pipeline = True
    apply = run_gitlab_job(ci, pipeline, "sipctl-apply", "push")
    assert apply.code == 1, apply.output
    assert f"No successful pipeline for {HEAD_SHA}" in apply.output
    assert bind.zone_records(DOMAIN) == before, "nothing was applied"
    assert not [c for c in ci.gitlab.calls if "/jobs/" in c[1]], "no other plan fetched"


def test_example_secrets_are_not_in_the_outputs(ci: FakeCi, bind: BindServer) -> None:
    workflow = _load("github-actions.yml")
    result = run_github_job(ci, workflow, "plan")
    assert result.code == 0, result.output
    assert bind.read_secret not in result.output
    assert bind.read_secret not in (ci.stub_dir / "comment-7.md").read_text()
    assert os.environ.get("SIPCTL_TSIG_SECRET") != bind.secret


# Which credentials each job uses: read-only where a merge request's code runs, the writing
# ones only in the jobs behind the approval.
READ_SECRETS = {"SIPCTL_TSIG_READ_SECRET", "SIPCTL_SSH_READ_KEY"}
WRITE_SECRETS = {"SIPCTL_TSIG_SECRET", "SIPCTL_SSH_KEY"}


def _secrets_named(text: str) -> set[str]:
    return set(re.findall(r"\bSIPCTL_(?:TSIG|SSH)_[A-Z_]+\b", text)) - {"SIPCTL_SSH_READ_ONLY"}


def test_github_jobs_use_read_only_secrets_and_apply_the_environment_s() -> None:
    jobs = _load("github-actions.yml")["jobs"]
    for name, job in jobs.items():
        env = job.get("env", {})
        named = _secrets_named(yaml.safe_dump(job))
        if name in ("apply", "apply-main"):
            assert job["environment"] == "production", name
            assert named == WRITE_SECRETS and env["TSIG_KEY_NAME"] == WRITE_KEY, name
        else:
            assert "environment" not in job, name
            assert named == READ_SECRETS and env["TSIG_KEY_NAME"] == READ_KEY, name


def test_gitlab_jobs_use_unprotected_read_variables_and_apply_the_protected_ones() -> None:
    pipeline = _load("gitlab-ci.yml")
    expected = {
        "sipctl-plan": (READ_KEY, READ_SECRETS),
        "sipctl-drift": (READ_KEY, READ_SECRETS),
        "sipctl-apply": (WRITE_KEY, WRITE_SECRETS),
        "sipctl-replan-apply": (WRITE_KEY, WRITE_SECRETS),
    }
    for name, (key, secrets) in expected.items():
        first = pipeline[name]["script"][0]
        assert first.startswith(f"sipctl_credentials {key} "), (name, first)
        assert _secrets_named(yaml.safe_dump(pipeline[name])) == secrets, name


def test_gitlab_merge_request_plans_with_the_read_only_key(ci: FakeCi, bind: BindServer) -> None:
    """The merge request's pipeline has no protected variable: its plan runs on the read-only
    key (which BIND lets read, not write), and apply on the protected writing key."""
    pipeline = _load("gitlab-ci.yml")
    plan = run_gitlab_job(ci, pipeline, "sipctl-plan", "merge_request_event")
    assert plan.code == 0, plan.output
    assert f'key "{READ_KEY}"' in (ci.repo / ".sipctl" / "tsig.key").read_text()
    assert (ci.repo / ".sipctl" / "ssh_key").read_text() == ci.ssh_read_key.read_text()
    assert ci.known_hosts in (ci.repo.parent / ".ssh" / "known_hosts").read_text()
    assert bind.read_secret not in plan.output
    # The same job given the writing key's job line would find nothing to write with.
    job = dict(pipeline["sipctl-plan"])
    job["script"] = [
        f'sipctl_credentials {WRITE_KEY} "$SIPCTL_TSIG_SECRET" "$SIPCTL_SSH_KEY"',
        *job["script"][1:],
    ]
    wrong = run_gitlab_job(
        ci, {**pipeline, "sipctl-plan": job}, "sipctl-plan", "merge_request_event"
    )
    assert wrong.code == 1 and "credential variables are empty here" in wrong.output, wrong.output


# The read key is tied to the PBX's read gate: the jobs that hold it say so to sipctl, which
# then only sends read requests and refuses to apply; the apply jobs never say it (their
# runs above would be refused).
READ_ONLY = ("SIPCTL_SSH_READ_ONLY", "1")


def test_github_read_key_jobs_use_the_read_only_login() -> None:
    workflow = _load("github-actions.yml")
    assert READ_ONLY[0] not in workflow.get("env", {})
    for name, job in workflow["jobs"].items():
        env = job.get("env", {})
        if "SIPCTL_SSH_READ_KEY" in _secrets_named(yaml.safe_dump(job)):
            assert env.get(READ_ONLY[0]) == READ_ONLY[1], name
        else:
            assert READ_ONLY[0] not in yaml.safe_dump(job), name


def test_gitlab_read_key_jobs_use_the_read_only_login() -> None:
    pipeline = _load("gitlab-ci.yml")
    assert READ_ONLY[0] not in pipeline.get("variables", {})
    assert READ_ONLY[0] not in yaml.safe_dump(pipeline.get("default", {}))
    for name in ("sipctl-plan", "sipctl-drift"):
        assert pipeline[name]["variables"][READ_ONLY[0]] == READ_ONLY[1], name
    assert READ_ONLY[0] not in yaml.safe_dump(pipeline["sipctl-apply"])
    assert READ_ONLY[0] not in yaml.safe_dump(pipeline["sipctl-replan-apply"])


def test_an_apply_given_the_read_only_login_refuses_before_anything(ci: FakeCi) -> None:
    """Were the GitLab apply job given the plan job's variables, it would stop at once."""
    pipeline = _load("gitlab-ci.yml")
    plan = run_gitlab_job(ci, pipeline, "sipctl-plan", "merge_request_event")
    assert plan.code == 0, plan.output
    job = dict(pipeline["sipctl-apply"])
    job["variables"] = {**job.get("variables", {}), READ_ONLY[0]: READ_ONLY[1]}
    result = run_gitlab_job(ci, {**pipeline, "sipctl-apply": job}, "sipctl-apply", "push")
    assert result.code == 3, result.output
    assert "SIPCTL_SSH_READ_ONLY is set" in result.output and "nothing was done" in result.output


# --- the platforms' own rules -------------------------------------------------------------------

CI_SCHEMAS = Path(__file__).parent / "data" / "ci-schemas"  # see its README.md: source, license


def _platform_errors(schema_name: str, data: dict[str, Any]) -> list[str]:
    import jsonschema

    schema = json.loads((CI_SCHEMAS / schema_name).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(data)]


def _github_workflow() -> dict[str, Any]:
    workflow = _load("github-actions.yml")
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key 'on' as true; GitHub does not
    return workflow


def test_the_pipelines_pass_the_platforms_schemas() -> None:
    assert _platform_errors("github-workflows.json", _github_workflow()) == []
    assert _platform_errors("gitlab-ci.json", _load("gitlab-ci.yml")) == []
    # the schemas are strict where it matters here: a misspelt key is caught
    workflow = _github_workflow()
    workflow["jobs"]["apply"]["concurrency"]["queue"] = "forever"
    assert _platform_errors("github-workflows.json", workflow)
    pipeline = _load("gitlab-ci.yml")
    pipeline["sipctl-apply"]["rules"][0]["when"] = "by-hand"
    assert _platform_errors("gitlab-ci.json", pipeline)


def test_github_actions_are_pinned_to_commits() -> None:
    text = (GITOPS / "github-actions.yml").read_text()
    uses = re.findall(r"uses: (\S+)(.*)", text)
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"actions/[a-z-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r"  # v[0-9]+\.[0-9]+\.[0-9]+", comment), (action, comment)


def test_github_apply_starts_on_the_push_of_the_merge_and_queues() -> None:
    workflow = _github_workflow()
    assert "pull_request" in workflow["on"] and workflow["on"]["push"]["branches"]
    assert "closed" not in workflow["on"]["pull_request"]["types"], "no apply from a PR ref"
    assert "concurrency" not in workflow, "a workflow-wide group would cancel waiting runs"
    assert workflow["jobs"]["apply"]["if"] == "github.event_name == 'push'"
    for name in ("apply", "apply-main"):
        group = workflow["jobs"][name]["concurrency"]
        assert group == {"group": "sipctl-apply", "cancel-in-progress": False, "queue": "max"}
    assert "pull_request.number" in workflow["jobs"]["plan"]["concurrency"]["group"]


def test_github_apply_refuses_the_reviewed_plan_of_another_spec(
    ci: FakeCi, bind: BindServer
) -> None:
    """Another merge between the review and this one: the reviewed plan is not the merged
    commit's, and is not applied; the way on is the re-plan of the default branch."""
    workflow = _load("github-actions.yml")
    assert run_github_job(ci, workflow, "plan").code == 0
    ci.merged_later = "# merged after the review\n"
    before = bind.zone_records(DOMAIN)
    apply = run_github_job(ci, workflow, "apply")
    assert apply.code == 3, apply.output
    assert "other spec files than the merged commit's" in apply.output
    assert "replan-and-apply" in apply.output
    assert bind.zone_records(DOMAIN) == before
    applied = run_github_job(ci, workflow, "apply-main")
    assert applied.code == 0, applied.output
    assert bind.query(f"_sip._tcp.{DOMAIN}", "SRV") == [f"10 0 5060 pbx.{DOMAIN}."]


def test_github_apply_of_a_direct_push_applies_nothing(ci: FakeCi, bind: BindServer) -> None:
    workflow = _load("github-actions.yml")
    before = bind.zone_records(DOMAIN)
    apply = run_github_job(ci, workflow, "apply", {"STUB_NO_MERGED_PR": "1"})
    assert apply.code == 1, apply.output
    assert f"no merged pull request for {MERGE_SHA}" in apply.output
    assert bind.zone_records(DOMAIN) == before


def test_gitlab_replans_and_applies_the_default_branch_after_a_stale_plan(
    ci: FakeCi, bind: BindServer
) -> None:
    pipeline = _load("gitlab-ci.yml")
    assert run_gitlab_job(ci, pipeline, "sipctl-plan", "merge_request_event").code == 0
    # another writer added one of the planned records: the reviewed plan is stale
    bind.update(DOMAIN, add=[(f"_sipctl.{DOMAIN}.", 3600, "TXT", '"sipctl-registry=1"')])
    stale = run_gitlab_job(ci, pipeline, "sipctl-apply", "push")
    assert stale.code == 3, stale.output
    replan = run_gitlab_job(ci, pipeline, "sipctl-replan-apply", "push")
    assert replan.code == 0, replan.output
    assert bind.query(f"_sip._tcp.{DOMAIN}", "SRV") == [f"10 0 5060 pbx.{DOMAIN}."]
    assert (ci.repo / "plans" / "plan.json").exists(), "the plan applied is kept"
    again = run_gitlab_job(ci, pipeline, "sipctl-replan-apply", "push")
    assert again.code == 0 and "No changes" in again.output, again.output


def test_gitlab_apply_refuses_the_reviewed_plan_of_another_spec(
    ci: FakeCi, bind: BindServer
) -> None:
    pipeline = _load("gitlab-ci.yml")
    assert run_gitlab_job(ci, pipeline, "sipctl-plan", "merge_request_event").code == 0
    ci.merged_later = "# merged after the review\n"
    apply = run_gitlab_job(ci, pipeline, "sipctl-apply", "push")
    assert apply.code == 3, apply.output
    assert "Start sipctl-replan-apply" in apply.output


def test_gitlab_tokens_are_stated_and_least(ci: FakeCi) -> None:
    """The note token (api, Reporter) is unprotected, so every merge request's author can use
    it: it is optional and used by the plan job only. The apply job's lookups use a
    read_api token that is protected."""
    text = (GITOPS / "gitlab-ci.yml").read_text()
    header = text.split("\nvariables:", 1)[0]
    note = header.split("SIPCTL_NOTE_TOKEN", 1)[1].split("#   SIPCTL_", 1)[0]
    read = header.split("SIPCTL_API_READ_TOKEN", 1)[1].split("#   SIPCTL_", 1)[0]
    assert "NOT protected" in note and "role Reporter, scope api" in note
    assert "PROTECTED" in read and "role" in read and "scope read_api" in read
    pipeline = _load("gitlab-ci.yml")
    for name, job in pipeline.items():
        if not isinstance(job, dict) or "script" not in job:
            continue
        dumped = yaml.safe_dump(job)
        assert ("SIPCTL_NOTE_TOKEN" in dumped) == (name == "sipctl-plan"), name
        assert ("SIPCTL_API_READ_TOKEN" in dumped) == (name == "sipctl-apply"), name
    assert pipeline["sipctl-plan"]["artifacts"]["expose_as"], "the plan is linked without it"
    plan = run_gitlab_job(
        ci, pipeline, "sipctl-plan", "merge_request_event", {"SIPCTL_NOTE_TOKEN": ""}
    )
    assert plan.code == 0, plan.output
    assert not ci.gitlab.notes and not ci.gitlab.calls, "no token: no note, no failure"


# --- a hoster's directory: one file per host and per customer -----------------------------------

SPECS_DIR = {"SIPCTL_SPECS": "specs"}


def _alpha_lines(dialplan: Path) -> list[str]:
    return [line for line in dialplan.read_text().splitlines() if "alpha.example" in line]


def test_github_pipeline_plans_and_applies_a_hoster_s_new_customer(
    ci: FakeCi, bind: BindServer
) -> None:
    workflow = _load("github-actions.yml")
    dialplan = ci.state / "pbx1" / "etc" / "asterisk" / "extensions_sipctl.conf"
    ci.hosting = ["pbx1.yaml", "alpha.example.yaml"]
    main = run_github_job(ci, workflow, "apply-main", SPECS_DIR)
    assert main.code == 0, main.output
    before = _alpha_lines(dialplan)
    assert before and "beta.example" not in dialplan.read_text()

    ci.hosting.append("beta.example.yaml")  # the merge request adds a customer's file
    plan = run_github_job(ci, workflow, "plan", SPECS_DIR)
    assert plan.code == 0, plan.output
    comment = (ci.stub_dir / "comment-7.md").read_text()
    assert "+ user director@beta.example" in comment, comment
    assert "user director@alpha.example" not in comment, "the other customer is not planned"
    kept = ci.stub_dir / "artifacts" / "sipctl-plan"
    assert sorted(p.name for p in kept.iterdir()) == [
        "alpha.example.plan.json",
        "beta.example.plan.json",
        "pbx1.hoster.example.plan.json",
    ]

    apply = run_github_job(ci, workflow, "apply", SPECS_DIR)
    assert apply.code == 0, apply.output
    assert "sipctl-guest-beta.example" in dialplan.read_text()
    assert _alpha_lines(dialplan) == before, "the other customer's lines stay byte for byte"
    assert (ci.state / "beta.example.zone").exists()
    drift = run_github_job(ci, workflow, "drift", SPECS_DIR)  # and merged is live
    assert drift.code == 0, drift.output
    assert [p.name for p in (ci.repo / "drift").iterdir()] == ["drift.json"]
    report = json.loads((ci.repo / "drift" / "drift.json").read_text())
    assert {d["domain"]: d["status"] for d in report["domains"]} == {
        "alpha.example": "no drift",
        "beta.example": "no drift",
        "pbx1.hoster.example": "no drift",
    }, "one document of every domain of the directory"


def test_gitlab_pipeline_plans_and_applies_a_hoster_s_new_customer(
    ci: FakeCi, bind: BindServer
) -> None:
    pipeline = _load("gitlab-ci.yml")
    dialplan = ci.state / "pbx1" / "etc" / "asterisk" / "extensions_sipctl.conf"
    ci.hosting = ["pbx1.yaml", "alpha.example.yaml"]
    main = run_gitlab_job(ci, pipeline, "sipctl-replan-apply", "push", SPECS_DIR)
    assert main.code == 0, main.output
    before = _alpha_lines(dialplan)

    ci.hosting.append("beta.example.yaml")
    plan = run_gitlab_job(ci, pipeline, "sipctl-plan", "merge_request_event", SPECS_DIR)
    assert plan.code == 0, plan.output
    comment = _note(ci)
    assert comment.startswith("<!-- sipctl-plan:specs/ -->\n## "), "the directory's marker"
    assert "+ user director@beta.example" in comment, comment
    assert "user director@alpha.example" not in comment, "the other customer is not planned"

    apply = run_gitlab_job(ci, pipeline, "sipctl-apply", "push", SPECS_DIR)
    assert apply.code == 0, apply.output
    assert "sipctl-guest-beta.example" in dialplan.read_text()
    assert _alpha_lines(dialplan) == before, "the other customer's lines stay byte for byte"


def test_a_hoster_s_reviewed_plans_are_not_applied_after_another_merge(
    ci: FakeCi, bind: BindServer
) -> None:
    """Another merge after the review: a plan whose own file it removed is refused by the
    pipeline's check; a customer file it added, which only the host's plan was made with
    (spec.files), by apply's own staleness check. Nothing is applied either way."""
    workflow = _load("github-actions.yml")
    ci.hosting = ["pbx1.yaml", "alpha.example.yaml"]
    assert run_github_job(ci, workflow, "plan", SPECS_DIR).code == 0
    ci.hosting = ["pbx1.yaml"]  # alpha's file removed by another merge
    apply = run_github_job(ci, workflow, "apply", SPECS_DIR)
    assert apply.code == 3, apply.output
    assert "other spec files than the merged commit's" in apply.output
    ci.hosting = ["pbx1.yaml", "alpha.example.yaml", "beta.example.yaml"]  # beta added
    apply = run_github_job(ci, workflow, "apply", SPECS_DIR)
    assert apply.code == 3, apply.output
    assert "other spec files" not in apply.output and "stale" in apply.output
    assert not (ci.state / "pbx1").exists() and not list(ci.state.glob("*.zone")), "nothing"
