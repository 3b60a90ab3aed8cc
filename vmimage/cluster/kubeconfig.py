"""A kubeconfig setting checked before anything reads it: a path, never the contents."""

from __future__ import annotations


def kubeconfig_problem(value: str) -> str | None:
    """Why a kubeconfig setting is not a path, or None. Contents (YAML or JSON, with a token or a
    client key) would be kept in the state and quoted in errors: only a path is taken, and the
    answer never repeats what was given."""
    head = value.lstrip()[:64]
    if "\n" in value or len(value) > 4096 or head.startswith(("{", "apiVersion", "kind:", "clusters:", "users:")):
        return (
            "is a kubeconfig's contents, not a path: write them to a file only you can read "
            "(chmod 600) and give its path"
        )
    return None
