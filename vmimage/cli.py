"""The `vmimage` command: IDs, image inspection and the CRDs, from the same core."""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

import click
import yaml

from vmimage.crds import crds
from vmimage.errors import ImageError
from vmimage.ids import vmi_id
from vmimage.image import file_status, image_object
from vmimage.labels import is_label_name
from vmimage.source import default_display_name, read_image_file
from vmimage.table import image_table

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE


def dump_yaml(documents: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False)


def dump_json(document: Any) -> str:
    return json.dumps(document, indent=2)


class _Main(click.Group):
    """Turns core errors into one line on stderr and exit status 2; no tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImageError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except BrokenPipeError:
            sys.exit(0)
        except Exception as exc:  # a bug: say so briefly, full trace only when asked
            if os.environ.get("VMIMAGE_DEBUG"):
                traceback.print_exc()
            click.echo(
                f"error: internal error ({type(exc).__name__}: {exc}); set VMIMAGE_DEBUG=1 for details and report it",
                err=True,
            )
            sys.exit(EXIT_INTERNAL_ERROR)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vmimage")
def main() -> None:
    """VM images for vSphere and VM Operator: VMI IDs, image metadata and CRDs."""


@main.command("id")
@click.argument("uuid")
def id_command(uuid: str) -> None:
    """Print the VMI ID of a content library item UUID."""
    click.echo(vmi_id(uuid))


@main.command()
@click.argument("path", type=click.Path(dir_okay=True, path_type=str))
@click.option("--name", help="Display name (status.name); defaults to the file name without extension.")
@click.option("--item-id", help="Content library item UUID: names the object by its VMI ID.")
@click.option("--content-version", help="Content library item content version (status.providerContentVersion).")
@click.option("--namespace", "-n", help="Namespace of the VirtualMachineImage.")
@click.option("--cluster", is_flag=True, help="Print a ClusterVirtualMachineImage instead.")
@click.option("--capability", "capabilities", multiple=True, metavar="C", help="Declare a capability (repeatable).")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=str),
    help="Manifest (.mf) to check the descriptor against (default: the .mf beside an .ovf, the one inside an OVA).",
)
@click.option("-o", "--output", type=click.Choice(["yaml", "json", "table", "wide"]), default="yaml", show_default=True)
def inspect(
    path: str,
    name: str | None,
    item_id: str | None,
    content_version: str | None,
    namespace: str | None,
    cluster: bool,
    capabilities: tuple[str, ...],
    manifest: str | None,
    output: str,
) -> None:
    """Print the VirtualMachineImage an .ova, .ovf or .iso file would become.

    Reads only the descriptor: a 50 GB OVA inspects as fast as its bare .ovf.
    """
    if cluster and namespace:
        raise click.UsageError("--namespace and --cluster exclude each other: a cluster image has no namespace")
    for capability in capabilities:
        if not is_label_name(capability):
            raise ImageError(
                f"--capability {capability!r}",
                "a capability must be 1-63 letters, digits, '-', '_' or '.', starting and ending alphanumeric",
            )
    if item_id is not None:
        try:
            vmi_id(item_id)
        except ImageError as exc:
            raise ImageError(f"--item-id {item_id!r}", exc.reason) from None
        item_id = item_id.strip().lower()
    image_file = read_image_file(path, manifest)
    status = file_status(
        image_file,
        name=name or default_display_name(path),
        capabilities=capabilities,
        item_id=item_id,
        content_version=content_version,
    )
    image = image_object(status, cluster=cluster, namespace=namespace)
    if output in ("table", "wide"):
        click.echo(image_table([image], wide=output == "wide"))
    elif output == "json":
        click.echo(dump_json(image.wire()))
    else:
        click.echo(dump_yaml([image.wire()]), nl=False)


@main.command("crds")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def crds_command(output: str) -> None:
    """Print the VirtualMachineImage and ClusterVirtualMachineImage CRDs."""
    documents = crds()
    if output == "json":
        click.echo(dump_json({"apiVersion": "v1", "kind": "List", "items": documents}))
    else:
        click.echo(dump_yaml(documents), nl=False)
