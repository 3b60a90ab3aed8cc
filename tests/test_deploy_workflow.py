"""The workflows (.github/workflows: preview.yml; deploy.yml → deploy-stack.yml): who gets
which credential, and their shell steps run as GitHub runs them (`bash -e`, GITHUB_ENV carried
from step to step, `if: always()` after a failure).

Pull-request previews run the pull request's own code, so they run in `<stack>-preview`
environments (read-only identities; `prod-preview` behind approval), never on a fork's behalf on
the self-hosted runners, and never as `pull_request_target`. Deploys run from main only, in the
stack's environment. A kubeconfig is the job's own file under `$RUNNER_TEMP`, never `~/.kube`,
and a last `if: always()` step removes it. docs/pr-previews.md explains the boundaries.

The deploy job's steps also run with the real CLI, policy pack and simulator: a mandatory
violation fails the deploy before anything is applied, with the violation in the job summary; a
clean stack is applied and summarised in image terms from the update's own event stream.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.postgres import psql
from tests.pulumi_cli import PASSPHRASE, ROOT, Stack
from tests.test_engine import dev_config, items
from tests.test_providers import PASSWORD, direct_client

WORKFLOWS = ROOT / ".github" / "workflows"
MAIN = "refs/heads/main"
KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: ci\n  user:\n    token: kube-t0ken\n"
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def all_workflows() -> dict[str, dict]:
    found = {path.name: workflow(path.name) for path in sorted(WORKFLOWS.glob("*.yml"))}
    assert set(found) == {"preview.yml", "deploy.yml", "deploy-stack.yml"}
    return found


def preview_job() -> dict:
    return workflow("preview.yml")["jobs"]["preview"]


def deploy_job() -> dict:
    return workflow("deploy-stack.yml")["jobs"]["deploy"]


def step_named(job: dict, name: str) -> dict:
    (step,) = [s for s in job["steps"] if s.get("name") == name]
    return step


def deploy_step() -> dict:
    (step,) = [s for s in deploy_job()["steps"] if "pulumi up" in s.get("run", "")]
    return step


def bash(script: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """A `run:` step as the runner runs it: `bash -e`, only the environment given (and a PATH)."""
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Runner:
    """A job's `run:` steps in order, as a GitHub runner runs them: `bash -e`; the job's and the step's
    `env`, each `${{ … }}` replaced by the value the test gives for it (one it does not give fails the
    test: a new secret or input is a decision to review); what a step appends to GITHUB_ENV set for
    the later ones; once a step fails, only `if: always()` steps run. Steps that use an action, and
    the ones named in ``skip``, are not run."""

    def __init__(self, tmp_path: Path, values: dict[str, str], env: dict[str, str] | None = None) -> None:
        self.values = values
        self.temp = tmp_path / "runner-temp"  # $RUNNER_TEMP: the runner's per-job folder
        self.home = tmp_path / "home"  # the runner's home, which outlives a job
        for folder in (self.temp, self.home):
            folder.mkdir(exist_ok=True)
        self.github_env = tmp_path / "github-env"
        self.summary = tmp_path / "step-summary.md"
        self.env = {
            "RUNNER_TEMP": str(self.temp),
            "HOME": str(self.home),
            "GITHUB_ENV": str(self.github_env),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_REF": MAIN,
            **(env or {}),
        }
        self.outputs: dict[str, subprocess.CompletedProcess] = {}

    def resolve(self, value: object) -> str:
        def replace(match: re.Match) -> str:
            assert match.group(0) in self.values, f"the test gives no value for {match.group(0)}"
            return self.values[match.group(0)]

        return re.sub(r"\$\{\{.*?\}\}", replace, str(value))

    def exported(self) -> dict[str, str]:
        lines = self.github_env.read_text().splitlines() if self.github_env.exists() else []
        return dict(line.split("=", 1) for line in lines if line)

    def run(self, job: dict, cwd: Path, skip: tuple[str, ...] = ()) -> list[str]:
        """The names of the steps run; their results are in ``outputs``, by name."""
        self.github_env.write_text("")
        self.summary.write_text("")
        failed, ran = False, []
        for step in job["steps"]:
            name = step.get("name") or step["uses"]
            condition = step.get("if")
            assert condition in (None, "always()"), f"{name}: the harness knows no condition {condition!r}"
            if "run" not in step or name in skip or (failed and condition is None):
                continue
            env = {
                **self.env,
                **{key: self.resolve(value) for key, value in (job.get("env") or {}).items()},
                **self.exported(),
                **{key: self.resolve(value) for key, value in (step.get("env") or {}).items()},
            }
            done = bash(step["run"], env, cwd, timeout=900)
            self.outputs[name] = done
            ran.append(name)
            failed = failed or done.returncode != 0
        return ran

    def kubeconfigs(self) -> list[Path]:
        """Every file under $RUNNER_TEMP and ~ that holds the kubeconfig's token."""
        return [
            path
            for folder in (self.temp, self.home)
            for path in folder.rglob("*")
            if path.is_file() and "kube-t0ken" in path.read_text(errors="replace")
        ]


# --- the shape: triggers, environments, runners, tokens ----------------------------------------


def test_deploy_runs_on_main_staging_then_prod_one_run_per_stack_prod_behind_its_environment():
    deploy = workflow("deploy.yml")
    on = deploy[True]  # YAML reads the bare key `on` as true
    assert on["push"]["branches"] == ["main"] and "workflow_dispatch" in on
    assert on["push"]["paths"] == workflow("preview.yml")[True]["pull_request"]["paths"]  # what a PR previews
    jobs = deploy["jobs"]
    assert jobs["staging"]["with"]["stack"] == "staging" and jobs["staging"]["needs"] == "main-only"
    assert jobs["prod"]["with"]["stack"] == "prod" and jobs["prod"]["needs"] == "staging"
    stacks = [job for job in jobs.values() if "uses" in job]
    assert {job["uses"] for job in stacks} == {"./.github/workflows/deploy-stack.yml"}
    assert all((ROOT / "stacks" / f"Pulumi.{job['with']['stack']}.yaml").is_file() for job in stacks)
    assert deploy["permissions"] == {"contents": "read"}

    called = workflow("deploy-stack.yml")
    assert set(called[True]) == {"workflow_call"}
    job = deploy_job()
    assert job["environment"] == "${{ inputs.stack }}"  # the stack's deploy credentials; `prod`'s reviewers
    assert job["concurrency"] == {"group": "deploy-${{ inputs.stack }}", "cancel-in-progress": False}
    assert job["env"]["STACK"] == "${{ inputs.stack }}"
    step = deploy_step()
    # the same pack and config as the pull request's preview
    (previewed,) = [s["run"] for s in preview_job()["steps"] if "preview-summary" in s.get("run", "")]
    assert preview_job()["env"]["STACK"] == "${{ matrix.stack }}"
    pack = '--policy-pack policies --policy-pack-config "policies/$STACK.json"'
    assert pack in previewed
    for command in ("pulumi preview --json", "pulumi up --yes --skip-preview --json"):
        assert command in step["run"]
    assert step["run"].count(pack) == 2


def test_no_workflow_runs_pull_request_code_with_the_base_branchs_secrets_or_splices_expressions_into_shell():
    """`pull_request_target` runs with the base branch's secrets and a write token: with a checkout of
    the PR's code it hands both to that code. And an expression spliced into a script (a branch name,
    a title) is shell the author of that text wrote: values reach the shell through `env` only."""
    for name, document in all_workflows().items():
        triggers = document[True]
        assert "pull_request_target" not in triggers and "workflow_run" not in triggers, name
        for job_name, job in document["jobs"].items():
            for step in job.get("steps", []):
                assert "${{" not in step.get("run", ""), f"{name} {job_name}: {step.get('name')}"
    assert set(workflow("preview.yml")[True]) == {"pull_request"}


def secret_references(node: object) -> set[str]:
    return set(re.findall(r"secrets(?:\.\w+|\[[^\]]*\])", json.dumps(node)))


def test_secrets_come_only_from_environments():
    """A repository secret reaches every workflow on every branch a writer pushes, and a pull
    request's: no job reads a secret unless it runs in an environment (whose secrets, reviewers and
    branch rule hold even against a workflow edited on a branch). One name per secret in every
    environment: no `KUBECONFIG_prod`-style repository secrets picked by an expression."""
    readers = {}
    for name, document in all_workflows().items():
        for job_name, job in document["jobs"].items():
            used = secret_references({key: value for key, value in job.items() if key != "secrets"})
            if used:
                assert job.get("environment"), f"{name} {job_name} reads {used} outside an environment"
                readers[f"{name}:{job_name}"] = used
    names = {"KUBECONFIG", "PULUMI_CONFIG_PASSPHRASE", "VSPHERE_USER", "VSPHERE_PASSWORD", "STATE_DB_PASSWORD"}
    names |= {"STATE_ACCESS_KEY_ID", "STATE_SECRET_ACCESS_KEY"}
    assert readers == {
        "preview.yml:preview": {f"secrets.{n}" for n in names},
        "deploy-stack.yml:deploy": {f"secrets.{n}" for n in names},
    }
    # the called workflow's job resolves its environment's secrets; nothing else is passed
    assert {job.get("secrets") for job in workflow("deploy.yml")["jobs"].values() if "uses" in job} == {"inherit"}


def test_previews_run_in_preview_environments_on_runners_of_their_own_with_a_read_only_token():
    preview = workflow("preview.yml")
    job = preview["jobs"]["preview"]
    stacks = job["strategy"]["matrix"]["stack"]
    assert stacks == ["staging", "prod"]
    assert job["environment"] == "${{ matrix.stack }}-preview" == job["env"]["ENVIRONMENT"]
    previews = {f"{stack}-preview" for stack in stacks}
    deploys = {job["with"]["stack"] for job in workflow("deploy.yml")["jobs"].values() if "uses" in job}
    assert previews == {"staging-preview", "prod-preview"} and deploys == {"staging", "prod"}
    assert deploy_job()["env"]["ENVIRONMENT"] == deploy_job()["environment"]
    # the PR's code may outlive its job on a self-hosted runner: never on one that deploys
    assert "preview" in job["runs-on"] and "deploy" not in job["runs-on"]
    assert "deploy" in deploy_job()["runs-on"] and "preview" not in deploy_job()["runs-on"]
    # the PR's code gets a token that can write nothing, and none left in .git/config
    assert preview["permissions"] == {"contents": "read"} and job["permissions"] == {"contents": "read"}
    for document in (preview, workflow("deploy-stack.yml")):
        checkouts = [
            s
            for j in document["jobs"].values()
            for s in j["steps"]
            if s.get("uses", "").startswith("actions/checkout@")
        ]
        assert checkouts and all(s["with"]["persist-credentials"] is False for s in checkouts)
    # the comment job, the one with a write token, runs none of the PR's code
    comment = preview["jobs"]["comment"]
    assert comment["permissions"] == {"pull-requests": "write"} and "environment" not in comment
    assert not any("checkout" in s.get("uses", "") or "run" in s for s in comment["steps"])


def test_fork_pull_requests_never_reach_the_self_hosted_runners_and_fail_saying_why(tmp_path):
    """GitHub gives a fork's run no secret, but would still run its code on the runners inside the
    network: the preview and comment jobs run for this repository's branches only, and a fork's pull
    request gets a failing job on a GitHub-hosted runner instead of a silently skipped (passing) check."""
    jobs = workflow("preview.yml")["jobs"]
    assert jobs["preview"]["if"] == SAME_REPOSITORY
    assert jobs["comment"]["if"] == f"always() && {SAME_REPOSITORY}"
    fork = jobs["fork"]
    assert fork["if"] == SAME_REPOSITORY.replace("==", "!=")
    assert fork["runs-on"] == "ubuntu-latest" and fork["permissions"] == {} and "environment" not in fork
    runner = Runner(tmp_path, {"${{ github.event.pull_request.number }}": "42"})
    assert runner.run(fork, tmp_path) == ["Fork pull requests are not previewed"]
    done = runner.outputs["Fork pull requests are not previewed"]
    assert done.returncode == 1
    assert "::error::pull request #42 comes from a fork" in done.stdout and "pushes the branch" in done.stdout


# --- the kubeconfig: the job's own file under $RUNNER_TEMP, removed whatever happens ------------

JOBS = {"preview": preview_job, "deploy": deploy_job}


@pytest.mark.parametrize("which", JOBS)
def test_the_kubeconfig_is_the_jobs_own_file_under_runner_temp_and_never_in_home(tmp_path, which):
    job = JOBS[which]()
    text = (WORKFLOWS / "preview.yml").read_text() + (WORKFLOWS / "deploy-stack.yml").read_text()
    assert ".kube" not in text.replace("never ~/.kube", "")  # only in the comment that says so
    write = step_named(job, "Kubeconfig for the stack's Supervisor")
    assert write["env"] == {"KUBECONFIG_CONTENT": "${{ secrets.KUBECONFIG }}"}
    # one implementation: the preview's and the deploy's steps are the same script
    assert write["run"] == step_named(deploy_job(), write["name"])["run"]
    env = {"KUBECONFIG_CONTENT": KUBECONFIG, "ENVIRONMENT": "prod"}
    paths = []
    for _ in range(2):  # two jobs on one runner host: two files, neither overwriting the other
        runner = Runner(tmp_path, {})
        runner.github_env.write_text("")
        done = bash(write["run"], {**runner.env, **env}, tmp_path)
        assert done.returncode == 0, done.stderr
        path = Path(runner.exported()["KUBECONFIG"])
        assert path.parent == runner.temp and path.read_text() == KUBECONFIG
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert not (runner.home / ".kube").exists() and KUBECONFIG not in done.stdout + done.stderr
        paths.append(path)
    assert paths[0] != paths[1] and paths[0].read_text() == KUBECONFIG


@pytest.mark.parametrize("which", JOBS)
def test_an_environment_without_the_kubeconfig_secret_fails_the_job_naming_it(tmp_path, which):
    runner = Runner(tmp_path, {})
    runner.github_env.write_text("")
    env = {**runner.env, "KUBECONFIG_CONTENT": "", "ENVIRONMENT": "prod-preview"}
    done = bash(step_named(JOBS[which](), "Kubeconfig for the stack's Supervisor")["run"], env, tmp_path)
    assert done.returncode == 1
    assert "::error::the environment prod-preview has no KUBECONFIG secret" in done.stdout
    assert runner.exported() == {} and runner.kubeconfigs() == []
    # and outside a runner (no RUNNER_TEMP), nothing is written anywhere
    env.pop("RUNNER_TEMP")
    done = bash(
        step_named(JOBS[which](), "Kubeconfig for the stack's Supervisor")["run"],
        {**env, "KUBECONFIG_CONTENT": KUBECONFIG},
        tmp_path,
    )
    assert done.returncode != 0 and "RUNNER_TEMP is not set" in done.stderr and runner.exported() == {}


@pytest.mark.parametrize("which", JOBS)
def test_the_last_step_removes_the_kubeconfig_whatever_happened_and_only_that_file(tmp_path, which):
    job = JOBS[which]()
    remove = step_named(job, "Remove the kubeconfig")
    assert remove["if"] == "always()" and remove["run"] == step_named(deploy_job(), remove["name"])["run"]
    names = [s.get("name") or s["uses"] for s in job["steps"]]
    users = [
        i for i, s in enumerate(job["steps"]) if "pulumi" in s.get("run", "") or "pulumi/actions" in s.get("uses", "")
    ]
    assert users and names.index(remove["name"]) > max(users)  # after every step that reads it
    runner = Runner(tmp_path, {})
    mine = runner.temp / "kubeconfig.AbCd1234"
    other = tmp_path / "elsewhere" / "config"  # e.g. a KUBECONFIG the runner's service sets
    other.parent.mkdir()
    for path in (mine, other):
        path.write_text(KUBECONFIG)
    done = bash(remove["run"], {**runner.env, "KUBECONFIG": str(mine)}, tmp_path)
    assert done.returncode == 0 and not mine.exists()
    done = bash(remove["run"], {**runner.env, "KUBECONFIG": str(other)}, tmp_path)
    assert done.returncode == 0 and other.exists() and "::warning::KUBECONFIG names" in done.stdout
    done = bash(remove["run"], runner.env, tmp_path)  # the kubeconfig step never ran
    assert done.returncode == 0 and done.stdout == ""


# `pulumi` for the preview job: outputs, and a preview that records the kubeconfig it was given
STUB_PULUMI = """#!/bin/sh
case "$1" in
  login) exit 0 ;;
  stack) echo '{}' ;;
  preview)
    printf '%s %s\\n' "$KUBECONFIG" "$(grep -c kube-t0ken "$KUBECONFIG")" >> "$STUB_LOG"
    echo '{"sequence": 0, "summaryEvent": {"resourceChanges": {"same": 3}}}'
    exit "$PREVIEW_EXIT" ;;
esac
"""


def preview_values(stack: str) -> dict[str, str]:
    """What GitHub would put in the preview job's expressions: the `<stack>-preview` environment's."""
    return {
        "${{ matrix.stack }}": stack,
        "${{ vars.PULUMI_BACKEND_URL }}": "postgres://preview@db.example.test/pulumi",
        "${{ secrets.KUBECONFIG }}": KUBECONFIG,
        "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}": "passphrase",
        "${{ secrets.VSPHERE_USER }}": "svc-vmimage-preview@vsphere.local",
        "${{ secrets.VSPHERE_PASSWORD }}": "read-only",
        "${{ secrets.STATE_DB_PASSWORD }}": "state",
        "${{ secrets.STATE_ACCESS_KEY_ID }}": "",
        "${{ secrets.STATE_SECRET_ACCESS_KEY }}": "",
    }


@pytest.mark.parametrize("preview_exit", [0, 255])
def test_the_preview_job_hands_the_kubeconfig_to_the_preview_then_removes_it_even_when_it_failed(
    tmp_path, preview_exit
):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "pulumi").write_text(STUB_PULUMI)
    (tmp_path / "bin" / "pulumi").chmod(0o755)
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "vmimage").symlink_to(ROOT / "venv" / "bin" / "vmimage")
    log = tmp_path / "pulumi.log"
    runner = Runner(
        tmp_path,
        preview_values("prod"),
        env={
            "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "STUB_LOG": str(log),
            "PREVIEW_EXIT": str(preview_exit),
        },
    )
    ran = runner.run(preview_job(), tmp_path, skip=("Install the project", "The pinned toolchain"))
    assert ran == [
        "Kubeconfig for the stack's Supervisor",
        "The raw preview",
        "The preview in image terms",
        "Remove the kubeconfig",
    ]
    assert runner.outputs["The raw preview"].returncode == 0  # the next step fails the job, with the summary
    assert runner.outputs["The preview in image terms"].returncode == preview_exit
    raw, summarized = log.read_text().splitlines()
    assert raw == summarized
    path, count = raw.split()
    assert Path(path).parent == runner.temp and count == "1"  # each preview read this job's file
    assert runner.kubeconfigs() == [] and not Path(path).exists()
    assert "vmimage catalog · `prod`" in runner.summary.read_text()  # on the run's page for the approver


# --- deploys from main only --------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref", [MAIN, "refs/heads/feature", "refs/heads/main-fix", "refs/tags/v1", "refs/pull/7/merge"]
)
def test_deploys_run_from_main_only(tmp_path, ref):
    """deploy.yml's first job refuses any other ref before an environment is asked for an approval or
    a secret, and deploy-stack.yml checks again before its checkout (it may be called from elsewhere)."""
    guard = workflow("deploy.yml")["jobs"]["main-only"]
    assert guard["runs-on"] == "ubuntu-latest" and guard["permissions"] == {} and "environment" not in guard
    first = deploy_job()["steps"][0]
    assert first["name"] == "Deploys run from main only" and "if" not in first
    assert [s["run"] for s in guard["steps"]] == [first["run"]]
    done = bash(first["run"], {"GITHUB_REF": ref}, tmp_path)
    if ref == MAIN:
        assert done.returncode == 0 and done.stdout == ""
    else:
        assert done.returncode == 1
        assert f"::error::deploys run from main only, and this run is on {ref}" in done.stdout
        # the job's later steps (checkout, secrets, pulumi) do not run
        runner = Runner(tmp_path, deploy_values("prod", "file:///nowhere"), env={"GITHUB_REF": ref})
        assert runner.run(deploy_job(), tmp_path) == ["Deploys run from main only", "Remove the kubeconfig"]


# --- a read-only state login --------------------------------------------------------------------


def test_a_read_only_postgres_login_cannot_open_the_state_so_previews_get_the_stacks_own(postgres, tmp_path):
    """Why docs/pr-previews.md gives each preview environment its stack's own state login (and prod's
    behind approval) rather than a read-only one: the CLI's postgres backend creates its table and
    index "if not exists" whenever it opens the state, which only the table's owner may run, even with
    CREATE on the schema. When a CLI opens it read-only, this fails: give previews a SELECT-only role."""
    url, env = postgres.backend()
    stack = Stack(tmp_path / "stack", name="staging", env={"PULUMI_BACKEND_URL": url, **env})  # creates the table
    table = url.rsplit("&table=", 1)[1]
    role = f"preview_{table}"
    postgres.sql(url, f"CREATE ROLE {role} LOGIN PASSWORD 'read-0nly'; GRANT SELECT ON {table} TO {role}")
    reader = url.split("&table=", 1)[0].replace("vmimage@", f"{role}@")
    assert psql(reader, "read-0nly", f"SELECT count(*) FROM {table}").stdout.strip() != ""  # it can read the rows
    read_only = {"PULUMI_BACKEND_URL": url.replace("vmimage@", f"{role}@"), "PGPASSWORD": "read-0nly"}
    for grant, refusal in (
        ("GRANT USAGE ON SCHEMA public", "permission denied for schema public"),
        ("GRANT USAGE, CREATE ON SCHEMA public", "must be owner of table"),
    ):
        postgres.sql(url, f"{grant} TO {role}")
        done = stack.run("stack", "ls", check=False, env=read_only)
        assert done.returncode != 0 and f"failed to create table {table}: pq: {refusal}" in done.output
    assert "staging" in stack.run("stack", "ls").stdout  # the owner's login opens it


# --- the deploy job, run with the real CLI -----------------------------------------------------


def deploy_values(stack: str, backend: str) -> dict[str, str]:
    """What GitHub would put in the deploy job's expressions: the stack's environment's secrets. The
    vCenter account comes from them, not from the stack file (as stacks/Pulumi.prod.yaml does)."""
    return {
        "${{ inputs.stack }}": stack,
        "${{ vars.PULUMI_BACKEND_URL }}": backend,
        "${{ secrets.KUBECONFIG }}": KUBECONFIG,
        "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}": PASSPHRASE,
        "${{ secrets.VSPHERE_USER }}": "user",
        "${{ secrets.VSPHERE_PASSWORD }}": PASSWORD,
        "${{ secrets.STATE_DB_PASSWORD }}": "",
        "${{ secrets.STATE_ACCESS_KEY_ID }}": "",
        "${{ secrets.STATE_SECRET_ACCESS_KEY }}": "",
    }


def account_free_config(simulator, samples) -> dict:
    """The dev stack without a vCenter account: the job's environment gives it."""
    config = dev_config(simulator, samples)
    config.pop("vsphere:user")
    return config


def run_job(stack: Stack, tmp_path: Path) -> tuple[Runner, list[str]]:
    """The deploy job's steps in the stack's project folder (the pack and venv where a checkout has
    them), with the job's environment: its secrets as the job would get them."""
    for name in ("policies", "venv"):
        link = stack.project_dir / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    env = {
        key: value for key, value in stack.env.items() if key not in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_BACKEND_URL")
    }
    runner = Runner(tmp_path, deploy_values(stack.name, stack.env["PULUMI_BACKEND_URL"]), env=env)
    # the toolchain the job builds is the one the tests' Stack already runs (test_the_pinned_toolchain…)
    ran = runner.run(deploy_job(), stack.project_dir, skip=("Install the project", "The pinned toolchain"))
    return runner, ran


@pytest.mark.vcsim
def test_a_mandatory_violation_fails_the_deploy_before_anything_is_applied(simulator, samples, tmp_path):
    stack = Stack(tmp_path / "prod", name="prod")  # policies/prod.json: sha256 is mandatory
    stack.configure(account_free_config(simulator, samples))
    runner, ran = run_job(stack, tmp_path)
    assert ran == [
        "Deploys run from main only",
        "Kubeconfig for the stack's Supervisor",
        "Preview with the policy pack, then pulumi up",
        "Remove the kubeconfig",  # if: always(), after the failed step
    ]
    done, summary = runner.outputs[ran[2]], runner.summary.read_text()
    assert done.returncode != 0
    assert "::error::pulumi preview of prod failed" in done.stdout and "nothing was applied" in done.stdout
    assert "[mandatory] vmimage-production-sha256" in summary
    assert runner.kubeconfigs() == []
    assert stack.resources() == {}  # no update ran
    with direct_client(simulator) as client:
        assert client.find_libraries("dev-images") == []


@pytest.mark.vcsim
def test_a_clean_stack_is_applied_and_summarised_from_what_was_applied(simulator, samples, tmp_path):
    stack = Stack(tmp_path / "dev", name="dev")
    stack.configure(account_free_config(simulator, samples))
    runner, ran = run_job(stack, tmp_path)
    done, summary = runner.outputs["Preview with the policy pack, then pulumi up"], runner.summary.read_text()
    assert done.returncode == 0, done.stdout + done.stderr
    given = Path(runner.exported()["KUBECONFIG"])  # the deploy had this job's kubeconfig; it is gone
    assert given.parent == runner.temp and not given.exists() and runner.kubeconfigs() == []
    assert ran[-1] == "Remove the kubeconfig"
    assert "**3 added**" in summary
    # the status vCenter's item produced (an update's resOutputsEvents), not "—"
    assert (
        "| ➕ added | photon-5-sample | cluster | vmi-" in summary
        and "vmwarePhoton64Guest | 5.0 | vmx-19 | efi" in summary
    )
    assert set(items(stack)) == {"photon-5-sample", "ubuntu-24.04-sample", "tools-sample"}
    assert PASSWORD not in summary + done.stdout + done.stderr
    assert PASSWORD not in json.dumps(stack.resources())  # the account stays out of the state
    runner, _ = run_job(stack, tmp_path)  # main pushed again with no catalog change
    again, summary = runner.outputs["Preview with the policy pack, then pulumi up"], runner.summary.read_text()
    assert again.returncode == 0 and "No image changes." in summary
    history = stack.run("stack", "history", "--json").stdout
    assert history.count('"kind": "update"') == 2
    stack.env.update(VSPHERE_USER="user", VSPHERE_PASSWORD=PASSWORD)  # the stack file has no account
    stack.destroy()


def test_no_third_party_action_runs_beside_the_stacks_credentials():
    """A job that reads a secret runs only GitHub's own actions (actions/*), the repository's own
    workflows, or an action pinned to a full commit: a tag (pulumi/actions@v6 was one) can be moved
    to other code by whoever controls the action's repository. The Pulumi CLI comes from
    scripts/toolchain, built from the Go module proxy as CI builds it."""
    pinned = re.compile(r"[^@]+@[0-9a-f]{40}")
    found = []
    for file, parsed in all_workflows().items():
        for name, job in parsed["jobs"].items():
            if "secrets." not in json.dumps(job):
                continue
            for step in job.get("steps", []):
                uses = step.get("uses")
                if uses and not (uses.startswith(("actions/", "./")) or pinned.fullmatch(uses)):
                    found.append(f"{file}:{name}: {uses}")
    assert found == []
    names = [s.get("name") for s in deploy_job()["steps"]]
    assert names.index("The pinned toolchain") < names.index(deploy_step()["name"])


def test_the_pinned_toolchain_step_puts_the_built_cli_first(tmp_path):
    """The step as the runner runs it, in this checkout (its Go caches warm: seconds): the PATH and
    environment it hands the next steps name the CLI scripts/toolchain built and its plugins."""
    toolchain = step_named(deploy_job(), "The pinned toolchain")
    assert toolchain == step_named(preview_job(), "The pinned toolchain")
    path_file, env_file = tmp_path / "path", tmp_path / "env"
    env = {"HOME": os.environ["HOME"], "GITHUB_PATH": str(path_file), "GITHUB_ENV": str(env_file)}
    env |= {k: v for k, v in os.environ.items() if k.startswith(("GO", "XDG_"))}
    done = bash(toolchain["run"], env, ROOT, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    (bin_dir,) = path_file.read_text().splitlines()
    assert (Path(bin_dir) / "pulumi").is_file() and Path(bin_dir) == ROOT / ".build" / "toolchain" / "bin"
    exported = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert exported["PULUMI_HOME"] == str(ROOT / ".build" / "pulumi-home")
    assert (Path(exported["PULUMI_HOME"]) / "plugins").is_dir()  # the Kubernetes provider is registered there
