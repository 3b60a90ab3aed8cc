"""The real Pulumi CLI (built by scripts/toolchain) on a throwaway project, stack and backend.

Each stack lives in its own folder: a ``Pulumi.yaml`` whose ``main`` points back at this
repository, so the engine runs the repository's program while the stack files and the
state (a local ``file://`` backend) stay in the test's temporary folder. The environment is
the one ``scripts/env`` sets up, so the tests use exactly what a user's shell does.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PASSPHRASE = "engine-tests"
# what scripts/env sets for the dev stacks (tests/test_readme_tour.py checks it does)
DEV_STACK_VARIABLES = (
    "VSPHERE_SERVER",
    "VSPHERE_PASSWORD",
    "PULUMI_BACKEND_URL",
    "PULUMI_CONFIG_PASSPHRASE",
    "PGPASSWORD",
    "_VMIMAGE_ENV_BACKEND_URL",
)


@cache
def toolchain_env() -> dict[str, str]:
    """os.environ as `. scripts/env` leaves it, without what it takes for the dev stacks from a
    running dev-up (.build/dev-env) or sets for them: each test names its own server and secrets."""
    dump = subprocess.run(
        ["bash", "-c", f". {ROOT / 'scripts' / 'env'} && env -0"], check=True, capture_output=True
    ).stdout
    env = dict(entry.split("=", 1) for entry in dump.decode().split("\0") if "=" in entry)
    for name in DEV_STACK_VARIABLES:
        env.pop(name, None)
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def pulumi_binary() -> str:
    """The CLI the tests run: the toolchain's, or the one on PATH when the user has one."""
    for folder in toolchain_env()["PATH"].split(os.pathsep):
        candidate = Path(folder) / "pulumi"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RuntimeError("no pulumi CLI: run ./scripts/setup (it builds one into .build/toolchain/bin)")


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class PulumiError(AssertionError):
    pass


class Stack:
    """One stack of the vmimage project, driven through the CLI."""

    def __init__(
        self, workdir: Path, name: str = "test", env: dict[str, str] | None = None, program: Path = ROOT
    ) -> None:
        """``program``: the folder of the Python program the stack runs (default: the repository's)."""
        self.name = name
        self.project_dir = workdir / "project"
        self.project_dir.mkdir(parents=True)
        (workdir / "state").mkdir()
        project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
        project.pop("stackConfigDir", None)
        project["main"] = os.path.relpath(program, self.project_dir)
        project["runtime"]["options"]["virtualenv"] = str(ROOT / "venv")  # whichever program runs
        (self.project_dir / "Pulumi.yaml").write_text(yaml.safe_dump(project))
        self.env = {
            **toolchain_env(),
            # metadata=skip: no attribute sidecar files, whose in-place writes a kill can leave empty
            # (docs/architecture.md, "Where the state lives")
            "PULUMI_BACKEND_URL": f"file://{workdir / 'state'}?metadata=skip",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "VMIMAGE_CACHE_DIR": str(workdir / "cache"),
            "PULUMI_COLOR": "never",
            "PYTHONPATH": str(ROOT),  # where a dynamic provider's pickled class is found again
            **(env or {}),
        }
        self.env.pop("VSPHERE_PASSWORD", None)
        self.run("stack", "init", name, "--secrets-provider", "passphrase")

    def use_program(self, program: Path) -> None:
        """Run another program from now on (e.g. an earlier release's checkout), state and config kept;
        its dynamic providers are unpickled from the same folder."""
        document = yaml.safe_load((self.project_dir / "Pulumi.yaml").read_text())
        document["main"] = os.path.relpath(program, self.project_dir)
        (self.project_dir / "Pulumi.yaml").write_text(yaml.safe_dump(document))
        self.env["PYTHONPATH"] = str(program)

    @property
    def config_file(self) -> Path:
        return self.project_dir / f"Pulumi.{self.name}.yaml"

    def run(self, *args: str, check: bool = True, timeout: float = 900, env: dict[str, str] | None = None) -> Result:
        command = [pulumi_binary(), *args, "--non-interactive"]
        if args[0] not in ("stack", "plugin", "version"):
            command += ["--stack", self.name]
        done = subprocess.run(
            command,
            cwd=self.project_dir,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        result = Result(command, done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            raise PulumiError(f"{' '.join(args)} exited {done.returncode}:\n{result.output}")
        return result

    def configure(self, values: dict[str, Any], secrets: dict[str, str] | None = None) -> None:
        """Replace the stack's plain config with ``values`` (structured values stay structured; secrets
        set earlier stay), then set ``secrets`` the way a user does: `pulumi config set --secret`.
        Deletion protection is off unless ``values`` sets it: most tests remove images on purpose, as
        the dev stacks do (the guard's own tests turn it on)."""
        values = {"vmimage:deletionProtection": False, **values}
        document = yaml.safe_load(self.config_file.read_text()) if self.config_file.exists() else {}
        document = document or {}
        kept = {key: value for key, value in (document.get("config") or {}).items() if isinstance(value, dict)}
        document["config"] = {**kept, **values}  # secrets set earlier stay
        self.config_file.write_text(yaml.safe_dump(document))
        for key, value in (secrets or {}).items():
            self.run("config", "set", "--secret", key, value)

    def preview(self, *args: str, check: bool = True, timeout: float = 900) -> Result:
        return self.run("preview", "--diff", *args, check=check, timeout=timeout)

    def up(self, *args: str, check: bool = True, timeout: float = 900) -> Result:
        return self.run("up", "--yes", "--skip-preview", *args, check=check, timeout=timeout)

    def refresh(self, *args: str, check: bool = True) -> Result:
        return self.run("refresh", "--yes", "--skip-preview", *args, check=check)

    def destroy(self, *args: str, check: bool = True) -> Result:
        return self.run("destroy", "--yes", "--skip-preview", *args, check=check)

    def outputs(self) -> dict[str, Any]:
        return json.loads(self.run("stack", "output", "--json", "--stack", self.name).stdout)

    def resources(self, type_suffix: str = "") -> dict[str, dict[str, Any]]:
        """The state's resources by name (the URN's last part) whose type ends with ``type_suffix``."""
        state = json.loads(self.run("stack", "export", "--stack", self.name).stdout)
        return {
            resource["urn"].rsplit("::", 1)[1]: resource
            for resource in state["deployment"].get("resources") or []
            if resource["type"].endswith(type_suffix)
        }

    def preview_steps(self, *args: str) -> dict[str, str]:
        """`pulumi preview --json`: resource name → its step (create, update, replace, delete, same)."""
        document = json.loads(self.run("preview", "--json", *args).stdout)
        return {step["urn"].rsplit("::", 1)[1]: step["op"] for step in document.get("steps") or []}
