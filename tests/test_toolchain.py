"""The toolchain scripts/toolchain built agrees with what the project pins."""

from __future__ import annotations

import re
import subprocess
import tomllib

from tests.pulumi_cli import ROOT, pulumi_binary, toolchain_env


def pins() -> dict[str, str]:
    text = (ROOT / "tools" / "toolchain" / "versions").read_text()
    return dict(re.findall(r"^([A-Z_]+)=(\S+)$", text, flags=re.MULTILINE))


def test_the_python_sdks_are_the_releases_the_toolchain_builds():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    versions = pins()
    assert f"pulumi=={versions['PULUMI_VERSION']}" in dependencies
    assert f"pulumi-kubernetes=={versions['PULUMI_KUBERNETES_VERSION']}" in dependencies


def test_the_built_tools_say_the_pinned_versions():
    versions = pins()
    env = toolchain_env()
    cli = subprocess.run([pulumi_binary(), "version"], capture_output=True, text=True, env=env, check=True)
    assert cli.stdout.strip() == f"v{versions['PULUMI_VERSION']}"
    plugins = subprocess.run(
        [pulumi_binary(), "plugin", "ls", "--json"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert f'"version": "{versions["PULUMI_KUBERNETES_VERSION"]}"' in plugins.replace('":"', '": "')
    kubectl = ROOT / ".build" / "toolchain" / "bin" / "kubectl"
    client = subprocess.run([str(kubectl), "version", "--client"], capture_output=True, text=True, check=True)
    assert f"v{versions['KUBERNETES_VERSION']}" in client.stdout  # the version ldflags took


def test_a_second_toolchain_run_builds_nothing():
    done = subprocess.run(
        [str(ROOT / "scripts" / "toolchain")], capture_output=True, text=True, timeout=120, check=True
    )
    assert "building" not in done.stdout
    assert done.stdout.count("is up to date") + done.stdout.count("using the Pulumi CLI at") == 6
