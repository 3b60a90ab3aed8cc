"""requirements.lock (scripts/lock) is what every install uses, and it covers pyproject.toml.

pip installs a locked package only when its file's SHA-256 is one the lock lists; a dependency
added to pyproject.toml without the lock rewritten would be missing from it, and a setup from it
would fail later, in an import.
"""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.pulumi_cli import ROOT

ENTRY = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})+)", re.M)


def locked() -> dict[str, tuple[Version, int]]:
    """Name → (version, how many hashes)."""
    text = (ROOT / "requirements.lock").read_text()
    return {canonicalize_name(n): (Version(v), hashes.count("--hash=")) for n, v, hashes in ENTRY.findall(text)}


def test_every_entry_of_the_lock_is_pinned_with_hashes():
    text = (ROOT / "requirements.lock").read_text()
    names = [line.split("==")[0] for line in text.splitlines() if line and not line[0].isspace() and line[0] != "#"]
    assert names and len(names) == len(locked()), "an entry without ==version and --hash lines"
    options = [line for line in text.splitlines() if line.startswith("-")]
    assert options == []  # no --find-links or --index-url: nothing of the machine that wrote it


def test_the_lock_holds_every_dependency_of_pyproject_in_a_version_it_allows():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["test"],
        *project["build-system"]["requires"],  # setup installs the project with --no-build-isolation
    ]
    pins = locked()
    problems = []
    for line in wanted:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement.name} is not in requirements.lock")
        elif not requirement.specifier.contains(pins[name][0], prereleases=True):
            problems.append(
                f"{requirement.name}=={pins[name][0]} is locked, pyproject.toml asks {requirement.specifier}"
            )
    assert problems == [], "run scripts/lock: " + "; ".join(problems)


def test_setup_and_the_workflows_install_from_the_lock_only():
    for path in ("scripts/setup", ".github/workflows/deploy-stack.yml", ".github/workflows/preview.yml"):
        lines = [line.strip() for line in (ROOT / path).read_text().splitlines()]
        installs = [line for line in lines if not line.startswith("#") and re.search(r"\bpip install\b", line)]
        assert installs, path
        for line in installs:
            assert "--require-hashes -r requirements.lock" in line or "--no-deps" in line, f"{path}: {line.strip()}"
