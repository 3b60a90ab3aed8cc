"""The layers of docs/architecture.md, read from the imports: nothing imports a layer above its own.

Every import counts, also one inside a function (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top. A module may import its own package and any layer below; packages that share a
# layer (cluster and review) may not import each other.
LAYERS: list[set[str]] = [
    {"vmimage.errors"},
    {"vmimage.descriptor"},
    {"vmimage.contract"},
    {"vmimage.cluster", "vmimage.review"},
    {"vmimage.admission"},
    {"vmimage.config", "vmimage.declaration"},
    {"vmimage.catalog"},
    {"vmimage.vsphere"},
    {"vmimage.stackfile"},
    {"vmimage.cli"},
    {"vmimage.__main__"},
    {"providers"},
    {"components"},
    {"__main__"},
]
# What the pure core and its clients never import: the engine, or the layers that adapt them to it.
NEVER_IN_VMIMAGE = ("pulumi", "pulumi_kubernetes", "pulumi_policy", "providers", "components", "policies")


def unit(module: str) -> str | None:
    """The layer unit a dotted module name belongs to (its package, or a top-level module)."""
    parts = module.split(".")
    if parts[0] in {"providers", "components", "__main__"}:
        return parts[0]
    if parts[0] != "vmimage":
        return None
    if parts == ["vmimage"]:
        return "vmimage.errors"  # the package's __init__ re-exports ImageError and nothing else
    return ".".join(parts[:2])


def layer(name: str) -> int:
    for index, units in enumerate(LAYERS):
        if name in units:
            return index
    raise AssertionError(f"{name} is in no layer: add it to LAYERS here and to docs/architecture.md")


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: a relative import; write the full module path"
            found.append((node.lineno, node.module or ""))
            # `from vmimage import x` names a module only when x is one
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names if node.module == "vmimage"]
    return found


def sources() -> list[Path]:
    files = [ROOT / "__main__.py"]
    for folder in ("vmimage", "providers", "components"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def violations(files: list[Path]) -> list[str]:
    found = []
    for path in files:
        here = unit(module_name(path))
        assert here is not None, path
        for line, imported in imports(path):
            where = f"{path.relative_to(ROOT)}:{line} imports {imported}"
            if here.startswith("vmimage") and imported.split(".")[0] in NEVER_IN_VMIMAGE:
                found.append(f"{where}: vmimage/ never imports the engine or its adapters")
                continue
            target = unit(imported)
            if target is None or target == here:
                continue
            if layer(target) > layer(here):
                found.append(f"{where}: {target} is a layer above {here}")
            elif layer(target) == layer(here):
                found.append(f"{where}: {target} and {here} share a layer and may not import each other")
    return found


def test_no_import_runs_up_a_layer() -> None:
    assert violations(sources()) == []


def test_every_package_of_vmimage_has_a_layer() -> None:
    packages = {unit(module_name(path)) for path in (ROOT / "vmimage").rglob("*.py")}
    assert all(layer(package) >= 0 for package in packages)


@pytest.mark.parametrize(
    ("where", "source", "complaint"),
    [
        ("vmimage/descriptor/x.py", "from vmimage.contract.status import image_status\n", "a layer above"),
        ("vmimage/cluster/x.py", "def f():\n    from vmimage.review.lint import lint\n", "share a layer"),
        ("vmimage/contract/x.py", "import pulumi\n", "never imports the engine"),
        ("providers/x.py", "from components.catalog import ImageCatalog\n", "a layer above"),
    ],
)
def test_an_import_up_a_layer_is_named(tmp_path: Path, where: str, source: str, complaint: str) -> None:
    """The check itself can fail: each of these, placed in the tree, is reported with its line."""
    path = ROOT / where
    assert not path.exists()
    try:
        path.write_text(source)
        found = violations([path])
    finally:
        path.unlink()
    assert len(found) == 1 and where in found[0] and complaint in found[0], found
