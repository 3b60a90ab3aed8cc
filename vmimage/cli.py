"""The `vmimage` command: IDs, image inspection and the CRDs, from the same core."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click
import yaml

from vmimage.admission.resolve import ResolutionError, check_security, image_reference, resolve
from vmimage.admission.selectors import matches, parse_selector
from vmimage.cluster.snapshot import load_images
from vmimage.cluster.table import format_table, image_row, image_table, kind_columns
from vmimage.contract.crds import crds
from vmimage.contract.ids import content_library_name, vmi_id
from vmimage.contract.image import file_image, image_object
from vmimage.contract.labels import is_label_name
from vmimage.contract.models import CLUSTER_KIND, NAMESPACED_KIND, Image
from vmimage.contract.verify import differences
from vmimage.descriptor.source import cached_file_sha256, default_display_name, pinned_file, read_image_file
from vmimage.errors import ImageError
from vmimage.review.facts import not_compliant_line

if TYPE_CHECKING:
    from vmimage.stackfile import StackFile
    from vmimage.vsphere.published import Published

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE


def dump_yaml(documents: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False)


def sha256_line(digest: str, path: str, pinned: str | None) -> str:
    """The digest a declaration pins, as the line to paste into the image's `vmimage:images` entry."""
    line = f'sha256: "{digest}"'
    if pinned is not None and pinned != path:
        line += f"  # of {os.path.basename(pinned)}, the manifest that pins the descriptor and disks"
    return line


def _trust_option(command):
    return click.option(
        "--trust",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=str),
        metavar="PEM",
        help="Certificates a package's signature must chain to, as vCenter's trusted certificates (repeatable).",
    )(command)


def _trust_bundle(paths: tuple[str, ...]):
    """The certificates of the --trust files; None when none was given (trust is then not checked)."""
    if not paths:
        return None
    from vmimage.descriptor.signing import load_trust_bundle

    return load_trust_bundle(paths)


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
@click.option("--library-id", help="Content library UUID: the object's content-library annotation.")
@click.option("--namespace", "-n", help="Namespace of the VirtualMachineImage.")
@click.option("--cluster", is_flag=True, help="Print a ClusterVirtualMachineImage instead.")
@click.option("--capability", "capabilities", multiple=True, metavar="C", help="Declare a capability (repeatable).")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=str),
    help="Manifest (.mf) to check the descriptor against (default: the .mf beside an .ovf, the one inside an OVA).",
)
@click.option("-o", "--output", type=click.Choice(["yaml", "json", "table", "wide"]), default="yaml", show_default=True)
@_trust_option
def inspect(
    path: str,
    name: str | None,
    item_id: str | None,
    content_version: str | None,
    library_id: str | None,
    namespace: str | None,
    cluster: bool,
    capabilities: tuple[str, ...],
    manifest: str | None,
    output: str,
    trust: tuple[str, ...],
) -> None:
    """Print the VirtualMachineImage an .ova, .ovf or .iso file would become: the object VM
    Operator publishes for it once it is that library item.

    Reads only the descriptor: a 50 GB OVA inspects as fast as its bare .ovf. A package VM
    Operator would not sync prints its NotSynced object, and why on standard error. A signed
    package (or any, with --trust) gets a `signature:` line on standard error: its signer,
    chain and trust (the disks' digests are lint's to check).
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
    if library_id is not None:
        try:
            content_library_name(library_id)
        except ImageError as exc:
            raise ImageError(f"--library-id {library_id!r}", exc.reason) from None
    image_file = read_image_file(path, manifest)
    found = file_image(
        image_file,
        name=name or default_display_name(path),
        capabilities=capabilities,
        item_id=item_id,
        content_version=content_version,
    )
    if found.sync_error:
        click.echo(f"warning: {path}: VM Operator would not sync this package: {found.sync_error}", err=True)
    _echo_signature(path, _trust_bundle(trust))
    image = image_object(found.status, cluster=cluster, namespace=namespace, labels=found.labels, library_id=library_id)
    if output in ("table", "wide"):
        click.echo(image_table([image], image.kind, wide=output == "wide"))
        pinned = pinned_file(path) if output == "wide" else None
        if pinned is not None:  # reads the whole file once (then cached by size and mtime)
            click.echo(sha256_line(cached_file_sha256(pinned, follow=pinned == path), path, pinned))
    elif output == "json":
        click.echo(dump_json(image.wire()))
    else:
        click.echo(dump_yaml([image.wire()]), nl=False)


def _echo_signature(path: str, bundle) -> None:
    """The package's signature, on standard error, when it has one or trust was asked about."""
    from datetime import UTC, datetime

    from vmimage.descriptor.signing import package_signature

    report = package_signature(path, bundle or [], datetime.now(UTC))
    if report is not None and (bundle is not None or report.certificate_file is not None):
        click.echo(f"signature: {report.summary()}", err=True)


@main.command("sign")
@click.argument("package", type=click.Path(dir_okay=False, path_type=str))
@click.option("--key", required=True, type=click.Path(dir_okay=False, path_type=str), help="Private key (PEM).")
@click.option(
    "--cert", required=True, type=click.Path(dir_okay=False, path_type=str), help="The key's certificate (PEM)."
)
@click.option(
    "--chain",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=str),
    metavar="PEM",
    help="Intermediate certificates to ship in the .cert (repeatable), from the signer's issuer up.",
)
@click.option("--passphrase-env", metavar="VAR", help="The environment variable that holds the key's passphrase.")
@click.option("--digest", type=click.Choice(["SHA256", "SHA512", "SHA1"]), default="SHA256", show_default=True)
@click.option(
    "-o", "--output", "out", type=click.Path(dir_okay=False, path_type=str), help="The signed .ova (default: in place)."
)
def sign_command(
    package: str, key: str, cert: str, chain: tuple[str, ...], passphrase_env: str | None, digest: str, out: str | None
) -> None:
    """Sign an .ova or .ovf package with KEY, as ovftool --privateKey does.

    Writes the .cert (the manifest's signature and the certificate chain) and, when the package
    has none, the manifest (SHA256 of every file). A manifest the package has is checked first:
    a file changed since it was packed is refused, never signed. An .ova becomes a new archive
    (descriptor, manifest, certificate, then the disks), written to a temporary file and renamed
    over PACKAGE (or -o) once whole; an .ovf gets its .mf and .cert beside it."""
    from datetime import UTC, datetime

    from vmimage.descriptor.signing import load_signer, sign_package

    password = None
    if passphrase_env is not None:
        if passphrase_env not in os.environ:
            raise ImageError(f"--passphrase-env {passphrase_env}", "the environment variable is not set")
        password = os.environ[passphrase_env].encode()
    signing_key, certificates = load_signer(key, cert, chain, password)
    signal.signal(signal.SIGTERM, _exit_on_signal)  # as Ctrl-C does: the temporary .ova is removed
    signed = sign_package(package, signing_key, certificates, datetime.now(UTC), out=out, algorithm=digest)
    for path in signed.written:
        click.echo(f"wrote {path}")
    report = signed.report
    if report.status == "expired":
        click.echo(f"warning: {package}: {report.message}", err=True)
    click.echo(
        "signature: " + "; ".join(report.details()) + f" (check its trust with: vmimage lint --trust CA.pem {package})"
    )


def _exit_on_signal(signum: int, _frame: object) -> None:
    """A signal that ends the process by unwinding it, so its `finally`s run (exit status 128+N)."""
    raise SystemExit(128 + signum)


@main.command("crds")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def crds_command(output: str) -> None:
    """Print the VirtualMachineImage and ClusterVirtualMachineImage CRDs."""
    documents = crds()
    if output == "json":
        click.echo(dump_json({"apiVersion": "v1", "kind": "List", "items": documents}))
    else:
        click.echo(dump_yaml(documents), nl=False)


# --- listing and resolving images ---------------------------------------------------------

KIND_ALIASES = {
    "vmi": NAMESPACED_KIND,
    "vmimage": NAMESPACED_KIND,
    "virtualmachineimage": NAMESPACED_KIND,
    "virtualmachineimages": NAMESPACED_KIND,
    "cvmi": CLUSTER_KIND,
    "cvmimage": CLUSTER_KIND,
    "clustervmi": CLUSTER_KIND,
    "clustervmimage": CLUSTER_KIND,
    "clustervirtualmachineimage": CLUSTER_KIND,
    "clustervirtualmachineimages": CLUSTER_KIND,
}


@dataclass(frozen=True)
class ImageSourceOptions:
    """Where `get` and `resolve` read images: a file, vCenter through a stack, or a cluster."""

    from_file: str | None
    from_vcenter: bool
    stack: str
    kubeconfig: str | None
    context: str | None

    def images(self, kinds: tuple[str, ...], namespace: str | None) -> list[dict]:
        if self.from_file:
            skipped: list[str] = []
            images = load_images(self.from_file, skipped)
            if skipped:
                click.echo(f"warning: {self.from_file}: ignored what is not an image: {', '.join(skipped)}", err=True)
        elif self.from_vcenter:
            stack = _stack_file(self.stack)
            if stack.declares_nothing:  # nothing to ask vCenter about
                click.echo(f"warning: {stack.path} declares no images and syncs no library", err=True)
                return []
            published = _from_vcenter(stack)
            for absent in published.absent:  # what exists is listed; what the stack misses is said
                if absent.concerns(kinds, namespace):
                    click.echo(f"warning: {absent}", err=True)
            images = published.objects
        else:
            from vmimage.cluster.kube import ImageObjects, KubeTarget

            with ImageObjects(KubeTarget(self.kubeconfig, self.context)) as cluster:
                images = [
                    {**obj, "kind": kind}
                    for kind in kinds
                    for obj in cluster.list(kind, None if kind == CLUSTER_KIND else namespace)
                ]
        return [image for image in images if image.get("kind") in kinds]


_SOURCE_KEYS = ("from_file", "from_vcenter", "stack", "kubeconfig", "context")


def _source_options(command):
    """Add the image-source options, handed to the command as one ``source`` argument."""

    @functools.wraps(command)
    def wrapper(**kwargs):
        source = ImageSourceOptions(**{key: kwargs.pop(key) for key in _SOURCE_KEYS})
        return command(source=source, **kwargs)

    for option in reversed(
        [
            click.option(
                "--from-file",
                "from_file",
                type=click.Path(dir_okay=False, path_type=str),
                help="Read image objects from a YAML/JSON file instead of a cluster.",
            ),
            click.option(
                "--from-vcenter",
                is_flag=True,
                help="What the stack's libraries would publish, read from vCenter (VSPHERE_* settings).",
            ),
            click.option(
                "--stack", default="dev", show_default=True, help="With --from-vcenter: the stack config to read."
            ),
            click.option("--kubeconfig", envvar="KUBECONFIG", help="The cluster's kubeconfig (default: $KUBECONFIG)."),
            click.option("--context", help="The kubeconfig context."),
        ]
    ):
        wrapper = option(wrapper)
    return wrapper


def _stack_file(stack: str) -> StackFile:
    from vmimage.stackfile import read_stack_file

    return read_stack_file(os.path.join("stacks", f"Pulumi.{stack}.yaml"))


def _from_vcenter(stack: StackFile) -> Published:
    """What the stack's libraries hold now, as image objects, and what it declares that vCenter
    does not hold. Any failure to ask vCenter is an error (exit 2), never "nothing there"."""
    from vmimage.vsphere.descriptors import DescriptorCache
    from vmimage.vsphere.listing import VCenterListing
    from vmimage.vsphere.published import published_images

    listing = VCenterListing(stack.connection_settings(os.environ))
    try:
        return published_images(stack.catalog, listing, DescriptorCache())
    finally:
        listing.close()


@main.command("get")
@click.argument("kinds", metavar="vmi|cvmi|vmi,cvmi")
@click.option("-n", "--namespace", default="default", show_default=True, help="Namespace of the VirtualMachineImages.")
@click.option("-A", "--all-namespaces", is_flag=True, help="VirtualMachineImages of every namespace.")
@click.option("-l", "--selector", default="", help="Label selector, as kubectl takes it.")
@click.option("-o", "--output", type=click.Choice(["table", "wide", "json", "yaml"]), default="table")
@_source_options
def get_command(
    kinds: str, namespace: str, all_namespaces: bool, selector: str, output: str, source: ImageSourceOptions
) -> None:
    """List images like `kubectl get vmi|cvmi` (or `vmi,cvmi`), with the reference's columns."""
    wanted = []
    for name in kinds.split(","):
        kind = KIND_ALIASES.get(name.strip().lower())
        if kind is None:
            raise click.BadParameter(f"{name!r}: expected one of {', '.join(sorted(KIND_ALIASES))}", param_hint="KIND")
        if kind not in wanted:
            wanted.append(kind)
    requirements = parse_selector(selector)
    scope = None if all_namespaces else namespace
    found = source.images(tuple(wanted), scope)
    by_kind = {
        kind: sorted(
            (
                image
                for image in found
                if image.get("kind") == kind
                and (scope is None or kind == CLUSTER_KIND or image["metadata"].get("namespace") == scope)
                and matches(requirements, image["metadata"].get("labels"))
            ),
            key=lambda i: (i["metadata"].get("namespace") or "", i["metadata"]["name"]),
        )
        for kind in wanted
    }
    images = [image for kind in wanted for image in by_kind[kind]]
    if output == "json":
        click.echo(dump_json({"apiVersion": "v1", "kind": "List", "items": images}))
    elif output == "yaml":
        click.echo(dump_yaml([{"apiVersion": "v1", "kind": "List", "items": images}]), nl=False)
    elif not images:
        where = "" if wanted == [CLUSTER_KIND] or all_namespaces else f" in {namespace} namespace"
        click.echo(f"No resources found{where}.", err=True)
    else:  # one table a kind, a blank line between them, as kubectl prints several kinds
        tables = [
            _kind_table(kind, by_kind[kind], all_namespaces, output == "wide") for kind in wanted if by_kind[kind]
        ]
        click.echo("\n\n".join(tables))


def _kind_table(kind: str, images: list[dict], all_namespaces: bool, wide: bool) -> str:
    objects = [Image.model_validate(image) for image in images]
    if all_namespaces and kind == NAMESPACED_KIND:
        rows = [[image.metadata.namespace or "", *image_row(image, wide, kind)] for image in objects]
        return format_table(("NAMESPACE", *kind_columns(kind, wide)), rows)
    return image_table(objects, kind, wide=wide)


@main.command("verify")
@click.option("--stack", default="dev", show_default=True, help="The stack config whose images to verify.")
@click.option("--kubeconfig", envvar="KUBECONFIG", help="The cluster's kubeconfig (default: $KUBECONFIG).")
@click.option("--context", help="The kubeconfig context.")
@click.option("-n", "--namespace", help="Only this namespace's images (and no cluster-scoped ones).")
def verify_command(stack: str, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Hold the cluster's image objects to what the stack's items predict: the comparison of
    supervisor mode, outside Pulumi (in CI, or after VM Operator's upgrade).

    Predicts each image of stacks/Pulumi.STACK.yaml from the items vCenter holds now (VSPHERE_*
    settings, as `get --from-vcenter`), reads the object of that name from the cluster, and
    lists every field VM Operator published otherwise. Exit 0: all as predicted, or the stack
    declares nothing; 1: a difference, a missing object, or a declared library or image vCenter
    does not hold; 2: vCenter or the cluster could not be asked, or the stack file is invalid."""
    from vmimage.catalog import supervisor_associations

    stack_file = _stack_file(stack)
    if stack_file.declares_nothing:
        click.echo(f"nothing to verify: {stack_file.path} declares no images and syncs no library")
        return
    declared = supervisor_associations(stack_file.catalog)  # namespace → its libraries
    if namespace is not None and namespace not in declared:
        raise ImageError(
            f"--namespace {namespace}",
            f"{stack_file.path} publishes no image in this namespace (its namespaces: "
            f"{', '.join(declared) or 'none, only cluster scope'})",
        )
    published = _from_vcenter(stack_file)
    predicted = [o for o in published.objects if namespace is None or o["metadata"].get("namespace") == namespace]
    absent = [entry for entry in published.absent if namespace is None or namespace in entry.namespaces]
    live = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
        for o in ImageSourceOptions(None, False, stack, kubeconfig, context).images(
            (NAMESPACED_KIND, CLUSTER_KIND), namespace
        )
    }
    problems = 0
    for obj in predicted:
        meta = obj["metadata"]
        where = f"{meta['namespace']}/" if meta.get("namespace") else ""
        label = f"{obj['kind']} {where}{meta['name']} ({obj['status'].get('name')!r})"
        found = live.get((obj["kind"], meta.get("namespace"), meta["name"]))
        if found is None:
            click.echo(f"{label}: not in the cluster (VM Operator has not published it)")
            problems += 1
            continue
        lines = differences(obj, found)
        if lines:
            problems += 1
            click.echo(f"{label}:\n  " + "\n  ".join(lines))
        if meta["name"] in published.not_compliant:  # as predicted, and no image a VM can use
            click.echo(f"{label}: {not_compliant_line(published.not_compliant[meta['name']])}")
    for entry in absent:
        click.echo(str(entry))
    if problems or absent:
        click.echo(
            f"{problems} of {len(predicted)} images differ from the prediction"
            + (f"; {len(absent)} declared but not in vCenter" if absent else ""),
            err=True,
        )
        sys.exit(1)
    if not predicted:  # cannot happen while the stack declares something; never a pass with nothing checked
        click.echo(f"nothing was verified: stack {stack} predicts no image", err=True)
        sys.exit(1)
    click.echo(f"{len(predicted)} images as predicted")


@main.command("lint")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@_trust_option
@click.option("--require-signed", is_flag=True, help="A package whose signature --trust does not verify is an error.")
def lint_command(files: tuple[str, ...], output: str, trust: tuple[str, ...], require_signed: bool) -> None:
    """Check .ova/.ovf/.iso packages before an upload: manifest, digests, sizes, disks, properties, OS,
    signature.

    Reads each package once (the time of one SHA-256 of it). Exit status 0 when every package
    is clean, 1 when any has findings, 2 when any cannot be read."""
    from vmimage.review.lint import lint_package

    if require_signed and not trust:
        raise click.UsageError("--require-signed needs --trust: the certificates a signature must chain to")
    bundle = _trust_bundle(trust)
    reports, unreadable = [], []
    for path in files:
        try:
            reports.append(lint_package(path, trust=bundle, require_signed=require_signed))
        except ImageError as error:
            unreadable.append({"path": path, "error": str(error)})
    if output == "json":
        click.echo(dump_json({"packages": [r.as_dict() for r in reports], "unreadable": unreadable}))
    else:
        for report in reports:
            status = report.status or {}
            os_info = status.get("osInfo") or {}
            summary = ", ".join(
                str(part)
                for part in (
                    status.get("type"),
                    " ".join(str(v) for v in (os_info.get("type"), os_info.get("version")) if v),
                    f"vmx-{status['hardwareVersion']}" if status.get("hardwareVersion") else None,
                    status.get("firmware"),
                )
                if part
            )
            if report.clean:
                click.echo(f"{report.path}: clean ({summary})")
            else:
                click.echo(f"{report.path}: {len(report.findings)} finding(s) ({summary})")
            if report.sha256 is not None:
                click.echo(f"  {sha256_line(report.sha256, report.path, report.pinned)}")
            if report.signature is not None:
                click.echo(f"  signature: {report.signature.summary()}")
            for finding in report.findings:
                click.echo(f"  {finding.severity:<8} {finding.code:<17} {finding.message}")
        for entry in unreadable:
            click.echo(f"error: {entry['error']}", err=True)
    if unreadable:
        sys.exit(EXIT_USER_ERROR)
    if any(not report.clean for report in reports):
        sys.exit(1)


@main.command("preview-summary")
@click.argument("preview", type=click.File("r"), metavar="PREVIEW_JSON")
@click.option("--stack", "stack_name", help="The stack's name, for the heading (default: read from the preview).")
@click.option(
    "--outputs",
    type=click.File("r"),
    help="`pulumi stack output --json` of the stack before the change: shows whose name resolution moves.",
)
def preview_summary_command(preview, stack_name: str | None, outputs) -> None:
    """Markdown for a pull request: what `pulumi preview --json` (PREVIEW_JSON, or - for stdin)
    does to the catalog's images, in image terms. With PULUMI_ENABLE_STREAMING_JSON_PREVIEW=true
    the preview's event stream also carries the policy pack's violations, which are listed."""
    from vmimage.review.summary import masked, parse_preview, stack_of, summary_markdown

    def load(stream, what: str) -> dict:
        try:
            document = json.load(stream)
        except ValueError as error:
            raise ImageError(stream.name, f"not JSON ({error}); give the output of {what}") from None
        except RecursionError:
            raise ImageError(stream.name, f"nested too deep to be the output of {what}") from None
        if not isinstance(document, dict):
            raise ImageError(stream.name, f"not the output of {what}")
        return masked(document, stream.name)

    document = parse_preview(preview.read(), preview.name)
    if stack_name is None:
        stack_name = stack_of(document)
    click.echo(
        summary_markdown(document, stack_name, load(outputs, "`pulumi stack output --json`") if outputs else None),
        nl=False,
    )


@main.command("resolve")
@click.argument("name")
@click.option("-n", "--namespace", default="default", show_default=True, help="The VM's namespace.")
@click.option("--strict", is_flag=True, help="Also refuse a display name found in both scopes (upstream's rule).")
@click.option("-o", "--output", type=click.Choice(["text", "yaml", "json"]), default="text")
@_source_options
def resolve_command(name: str, namespace: str, strict: bool, output: str, source: ImageSourceOptions) -> None:
    """Print the image a VirtualMachine in NAMESPACE naming NAME gets, as the webhook would pick it."""
    images = source.images((NAMESPACED_KIND, CLUSTER_KIND), namespace)
    try:
        resolved = resolve(name, namespace, images, strict=strict)
        check_security(resolved, f"in namespace {namespace}")  # the webhook refuses it
    except ResolutionError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    spec = {"imageName": resolved.name, "image": image_reference(resolved)}
    if output == "json":
        click.echo(dump_json(spec))
    elif output == "yaml":
        click.echo(dump_yaml([spec]), nl=False)
    else:
        click.echo(
            f"{resolved.kind}/{resolved.name}" + (f" ({resolved.display_name})" if resolved.display_name else "")
        )


@main.command("webhook")
@click.option("--cert", required=True, type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM).")
@click.option("--key", required=True, type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option("--port", default=8443, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option(
    "--images-from",
    "images_from",
    default="kube",
    show_default=True,
    metavar="kube|FILE",
    help="The API server (a watch-backed cache), or a YAML/JSON file of image objects.",
)
@click.option("--kubeconfig", envvar="KUBECONFIG", help="With --images-from kube: a kubeconfig (default: in-cluster).")
@click.option("--context", help="The kubeconfig context.")
@click.option("--strict", is_flag=True, help="Also deny a display name found in both scopes (upstream's rule).")
@click.option(
    "--body-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1), help="Seconds for a review's body."
)
@click.option(
    "--max-connections",
    default=200,
    show_default=True,
    type=click.IntRange(1),
    help="Open connections at most; at the cap a new one replaces the oldest that has had no request answered.",
)
@click.option(
    "--header-timeout",
    default=15.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Seconds for a TLS handshake and for a request's head (also how long an idle connection is kept).",
)
@click.option(
    "--cert-reload-seconds",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="How often to look for a renewed certificate.",
)
@click.option(
    "--stale-after",
    default=None,
    type=click.FloatRange(1),
    help="With --images-from kube: not ready after this many seconds without a successful list or watch "
    "(default: the watch's 300 s plus 60).",
)
def webhook_command(
    cert: str,
    key: str,
    port: int,
    host: str,
    images_from: str,
    kubeconfig: str | None,
    context: str | None,
    strict: bool,
    body_timeout: float,
    max_connections: int,
    header_timeout: float,
    cert_reload_seconds: float,
    stale_after: float | None,
) -> None:
    """Serve the mutating admission webhook that resolves VirtualMachine image names.

    Reviews are at most 3 MiB, 100,000 JSON values and 64 levels deep. Until the image cache
    has synced (or while it is stale), a name it cannot resolve is answered with HTTP 503, so
    the API server applies the webhook's failurePolicy instead of a wrong denial; /readyz says
    the same."""
    from vmimage.admission.webhook import FileImages, serve

    if images_from == "kube":
        from vmimage.cluster.kube import ImageCache, KubeTarget

        source = ImageCache(KubeTarget(kubeconfig, context), stale_after=stale_after).start()
    else:
        source = FileImages(images_from)
    serve(
        source,
        cert,
        key,
        host,
        port,
        strict=strict,
        body_timeout=body_timeout,
        cert_reload_seconds=cert_reload_seconds,
        max_connections=max_connections,
        header_timeout=header_timeout,
    )
