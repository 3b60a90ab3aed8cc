"""pulumi-kubernetes' copies of the stack's kubeconfig, removed when the provider host exits.

The Kubernetes provider that installs the CRDs, given a kubeconfig (the stack's
`vmimage:kubernetes.kubeconfig`, or $KUBECONFIG, which its SDK passes when the program gives none),
writes it whole, client key or token included, to `$TMPDIR/kubeconfig<digits>` in every Configure
(for Helm, which vmimage does not use) and never removes it: pulumi-kubernetes'
`writeKubeconfigToFile`. That is a copy of the cluster's credentials per `preview`, `up` and
`destroy`, outliving a key's rotation, on every machine and runner that ran one. No setting of the
provider stops it, and the program cannot give the provider another temporary folder (plugins get
the CLI's environment). The dynamic provider host runs in those same commands and exits after the
Kubernetes provider's Configure; at its exit (`atexit`, and the lifeline's: providers/lifeline.py)
it removes each such copy that holds a credential of a kubeconfig the stack uses. Other files stay:
a name Go does not give, a link, a file of another user, a copy of another kubeconfig,
and the stack's kubeconfig itself (which may have such a name).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from vmimage.cluster.kube import KubeTarget

COPY_NAME = re.compile(r"kubeconfig\d+")  # Go's os.CreateTemp("", "kubeconfig")
_SECRET_KEYS = ("client-key-data", "token", "password")
_MAX_BYTES = 1 << 20


def go_temp_dir() -> Path:
    """Where Go's os.TempDir() puts temporary files on Unix: $TMPDIR, else /tmp."""
    return Path(os.environ.get("TMPDIR") or "/tmp")


def stack_kubeconfig(value: Any) -> str | None:
    """The kubeconfig a stack's `vmimage:kubernetes` value (JSON, as a dynamic provider's Configure
    gets it) names, or the default one ($KUBECONFIG, ~/.kube/config); None for a stack without it."""
    if value is None:
        return None
    with contextlib.suppress(TypeError, ValueError):
        value = json.loads(value) if isinstance(value, str) else value
    named = value.get("kubeconfig") if isinstance(value, dict) else None
    return KubeTarget(named if isinstance(named, str) and named else None).kubeconfig_name()


def credentials(document: Any) -> set[str]:
    """The secrets a kubeconfig's users hold: client keys, tokens, passwords, an auth provider's
    values (OIDC tokens, client secrets)."""
    found: set[str] = set()
    users = document.get("users") if isinstance(document, dict) else None
    for entry in users if isinstance(users, list) else []:
        user = entry.get("user") if isinstance(entry, dict) else None
        if not isinstance(user, dict):
            continue
        values = [user.get(key) for key in _SECRET_KEYS]
        provider = user.get("auth-provider")
        config = provider.get("config") if isinstance(provider, dict) else None
        values += list(config.values()) if isinstance(config, dict) else []
        found |= {value for value in values if isinstance(value, str) and value}
    return found


def _load(text: bytes) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _read_own_file(path: Path) -> Any:
    """A regular file of this user's, read without following a link; None for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        found = os.fstat(file.fileno())
        if not stat.S_ISREG(found.st_mode) or found.st_uid != os.geteuid() or found.st_size > _MAX_BYTES:
            return None
        return _load(file.read(_MAX_BYTES))


def _identity(entry: os.DirEntry) -> tuple[int, int] | None:
    with contextlib.suppress(OSError):
        found = entry.stat(follow_symlinks=False)
        return found.st_dev, found.st_ino
    return None


def remove_copies(kubeconfigs: Iterable[str], directory: Path | None = None) -> list[Path]:
    """Remove pulumi-kubernetes' copies of ``kubeconfigs`` from ``directory`` (Go's temporary
    folder); the removed files. A kubeconfig of the stack's own that lives there under such a
    name (`$TMPDIR/kubeconfig2`, a link's target) is what the stack uses, no copy: it stays."""
    wanted: set[str] = set()
    kept: set[tuple[int, int]] = set()  # the kubeconfigs themselves: one may have a name Go gives
    for name in kubeconfigs:
        with contextlib.suppress(OSError):
            wanted |= credentials(_load(Path(name).expanduser().read_bytes()))
            found = Path(name).expanduser().stat()
            kept.add((found.st_dev, found.st_ino))
    if not wanted:
        return []
    try:
        entries = list(os.scandir(directory or go_temp_dir()))
    except OSError:
        return []
    removed = []
    for entry in entries:
        path = Path(entry.path)
        if not COPY_NAME.fullmatch(entry.name) or _identity(entry) in kept:
            continue
        if credentials(_read_own_file(path)) & wanted:
            try:
                path.unlink()
            except OSError:
                continue
            removed.append(path)
    return removed
