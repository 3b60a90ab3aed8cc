"""The catalog's policy pack: `pulumi preview --policy-pack policies [--policy-pack-config FILE]`.

The rules live in vmimage/review/governance.py (and vmimage/review/lint.py); this module adapts them to the
engine. Each policy's enforcement level (advisory, mandatory, disabled) and options come from
the stack's policy config, e.g. policies/prod.json:

    {"vmimage-production-sha256": {"production": true},
     "vmimage-production-signed": {"production": true},
     "vmimage-image-floors": {"enforcementLevel": "mandatory", "minHardwareVersion": 19, "requireEfi": true}}
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: vmimage/

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from providers import lifeline  # noqa: F401  (the pack's host exits when the engine is gone: providers/lifeline.py)
from vmimage.admission.resolve import (
    REQUIRED_CAPABILITIES_ANNOTATION,
    ResolutionError,
    UnknownImage,
    check_capabilities,
    parse_capabilities,
    resolve,
)
from vmimage.contract.ids import vmi_id
from vmimage.contract.image import file_image
from vmimage.descriptor.source import read_image_file
from vmimage.errors import ImageError
from vmimage.review.governance import (
    below_floors,
    duplicate_display_names,
    library_without_security_policy,
    missing_sha256,
    unsigned_image,
    unverified_ssl,
)
from vmimage.review.guard import ALLOW_ENV, blocked, guard_message
from vmimage.review.lint import lint_package

ITEM = "pulumi-python:dynamic/vmimage:ContentLibraryItem"
IMAGE = "pulumi-python:dynamic/vmimage:VirtualMachineImage"
CLUSTER_IMAGE = "pulumi-python:dynamic/vmimage:ClusterVirtualMachineImage"
GUARD = "pulumi-python:dynamic/vmimage:DeletionGuard"
LIBRARY = "pulumi-python:dynamic/vmimage:ContentLibrary"


def _local_source(args: ResourceValidationArgs) -> str | None:
    source = args.props.get("source")
    if not isinstance(source, str) or source.lower().startswith("https://"):
        return None
    return source


def production_sha256(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != ITEM or not args.get_config().get("production"):
        return
    for problem in missing_sha256(args.props):
        report_violation(problem)


def production_signed(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Each item's package signed by a trusted certificate (its ``becomes.signature``, read in the
    item's check), each library the stack creates with a security policy. A value the preview cannot
    know yet is judged by `up`, which runs the pack again on the resolved inputs."""
    if args.resource_type not in (ITEM, LIBRARY) or not args.get_config().get("production"):
        return
    try:
        if args.resource_type == ITEM:
            problems = unsigned_image(str(args.props.get("name")), args.props.get("source"), args.props.get("becomes"))
        else:
            problems = library_without_security_policy(str(args.props.get("name")), args.props.get("security_policy"))
    except UnknownValueError:
        return
    for problem in problems:
        report_violation(problem)


def no_unverified_ssl(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != ITEM or args.get_config().get("dev") or args.provider is None:
        return
    for problem in unverified_ssl(args.provider.props):
        report_violation(problem)


def image_floors(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != ITEM:
        return
    status = args.props.get("image")
    if not isinstance(status, dict) or not status.get("type"):  # not published yet: read the source
        source = _local_source(args)
        if source is None:
            return
        try:
            status = file_image(read_image_file(source), name=str(args.props.get("name"))).status.wire()
        except ImageError as error:
            report_violation(str(error))
            return
    config = args.get_config()
    for problem in below_floors(
        str(args.props.get("name")),
        status,
        min_hardware_version=config.get("minHardwareVersion"),
        require_efi=bool(config.get("requireEfi")),
        allowed_os_types=config.get("allowedOsTypes") or (),
    ):
        report_violation(problem)


def package_lint(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != ITEM or (source := _local_source(args)) is None:
        return
    try:
        report = lint_package(source, name=str(args.props.get("name")))
    except ImageError as error:
        report_violation(str(error))
        return
    severities = set(args.get_config().get("severities") or ["error"])
    for finding in report.findings:
        if finding.severity in severities:
            report_violation(f"{finding.code}: {finding.message}")


def _known(props, key: str):
    """A property's value, or None while the preview cannot know it yet."""
    try:
        return props.get(key)
    except UnknownValueError:
        return None


# The stack rules judge each resource on its own: one whose value a preview cannot know yet is
# left out alone (the next preview sees it), never the whole rule for the whole stack.


def _image_objects(resources) -> list[dict]:
    """The stack's image resources as the objects they publish (name, scope, status, capabilities)."""
    objects = []
    for resource in resources:
        if resource.resource_type not in (IMAGE, CLUSTER_IMAGE):
            continue
        props = resource.props
        try:
            item_id = _known(props, "item_id")
            name = _known(props, "vmi_id") or (vmi_id(item_id) if isinstance(item_id, str) and item_id else None)
            if not name:
                continue
            status = dict(_known(props, "status") or {})
            status.setdefault("name", props.get("display_name"))
            status.setdefault("capabilities", list(_known(props, "capabilities") or []))
            status["conditions"] = [dict(c) for c in status.get("conditions") or []]
            metadata = {"name": name}
            if resource.resource_type == IMAGE:
                kind, metadata["namespace"] = "VirtualMachineImage", props.get("namespace")
            else:
                kind = "ClusterVirtualMachineImage"
        except UnknownValueError:
            continue
        objects.append({"kind": kind, "metadata": metadata, "status": status, "resource": resource.name})
    return objects


class _VirtualMachine(NamedTuple):
    namespace: str
    name: str
    image: str | None  # the name in spec.image.name or spec.imageName; None while unknown
    required: list[str]  # vmimage.io/required-capabilities; empty while unknown


def _virtual_machines(resources) -> list[_VirtualMachine]:
    """The stack's VirtualMachines whose namespace and name the preview knows."""
    machines = []
    for resource in resources:
        kind = resource.resource_type
        if not (kind.startswith("kubernetes:vmoperator.vmware.com/") and kind.endswith(":VirtualMachine")):
            continue
        try:
            metadata = resource.props.get("metadata") or {}
            namespace, name = metadata.get("namespace") or "default", metadata.get("name") or resource.name
        except UnknownValueError:
            continue
        try:
            spec = resource.props.get("spec") or {}
            image = (spec.get("image") or {}).get("name") or spec.get("imageName")
            annotations = metadata.get("annotations") or {}
            required = parse_capabilities(annotations.get(REQUIRED_CAPABILITIES_ANNOTATION) or "")
        except UnknownValueError:
            image, required = None, []
        machines.append(_VirtualMachine(str(namespace), str(name), image if isinstance(image, str) else None, required))
    return machines


def vm_capabilities(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    images = _image_objects(args.resources)
    for vm in _virtual_machines(args.resources):
        if not vm.required or vm.image is None:
            continue
        try:
            image = resolve(vm.image, vm.namespace, images)
            check_capabilities(image, vm.required, f"{vm.namespace}/{vm.name}")
        except UnknownImage:
            continue  # an image this stack does not publish: the webhook checks it in the cluster
        except ResolutionError as error:
            report_violation(str(error))


def not_ready_where_vms_run(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    namespaces = {vm.namespace for vm in _virtual_machines(args.resources)}
    for image in _image_objects(args.resources):
        namespace = image["metadata"].get("namespace")
        ready = [c for c in image["status"].get("conditions") or [] if c.get("type") == "Ready"]
        if namespace in namespaces and ready and ready[0].get("status") != "True":
            report_violation(
                f"image {image['status'].get('name')!r} ({image['metadata']['name']}) is not Ready "
                f"({ready[0].get('message') or ready[0].get('reason')}) in namespace {namespace}, where VMs run: "
                "fix its library item, or publish it to a namespace without VMs"
            )


def unique_display_names(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    entries = []
    for resource in args.resources:
        if resource.resource_type not in (IMAGE, CLUSTER_IMAGE):
            continue
        try:
            namespace = resource.props.get("namespace") if resource.resource_type == IMAGE else None
            entries.append((namespace, str(resource.props.get("display_name")), resource.name))
        except UnknownValueError:
            continue
    for problem in duplicate_display_names(sorted(entries, key=lambda e: e[2])):  # in a stable order
        report_violation(problem)


def deletions_allowed(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The deletion guard's rule as a policy: what the guard's check found this run deletes
    (``removing``), unless allowed by name. ``protected`` in the policy config holds a stack to it
    whatever its own vmimage:deletionProtection says (a pull request may change the stack file)."""
    if args.resource_type != GUARD:
        return
    props = args.props
    protected = args.get_config().get("protected")
    protection = bool(props.get("protection")) if protected is None else bool(protected)
    removing = props.get("removing")
    if not isinstance(removing, Mapping):  # the pack sees props through read-only proxies
        return
    plain = {str(name): [str(part) for part in entry] for name, entry in removing.items()}
    refused = blocked(plain, [str(name) for name in props.get("allowed") or []], protection, os.environ.get(ALLOW_ENV))
    if refused:
        report_violation(guard_message(refused))


PolicyPack(
    name="vmimage",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        StackValidationPolicy(
            name="vmimage-vm-capabilities",
            description="A VirtualMachine's image has the capabilities it requires (vmimage.io/required-capabilities).",
            validate=vm_capabilities,
        ),
        StackValidationPolicy(
            name="vmimage-not-ready-where-vms-run",
            description="An image that is not Ready is not published to a namespace where VMs run.",
            validate=not_ready_where_vms_run,
        ),
        StackValidationPolicy(
            name="vmimage-unique-display-names",
            description="A display name is published once per scope, so VMs' names resolve.",
            validate=unique_display_names,
        ),
        ResourceValidationPolicy(
            name="vmimage-deletions-allowed",
            description="A run deletes no library item or image object that vmimage:allowDelete does not name.",
            validate=deletions_allowed,
            config_schema=PolicyConfigSchema(properties={"protected": {"type": "boolean"}}),
        ),
        ResourceValidationPolicy(
            name="vmimage-production-sha256",
            description="Images in a production stack pin their content with sha256.",
            validate=production_sha256,
            config_schema=PolicyConfigSchema(properties={"production": {"type": "boolean", "default": False}}),
        ),
        ResourceValidationPolicy(
            name="vmimage-production-signed",
            description=(
                "Images in a production stack are signed by a trusted certificate, and its libraries have a "
                "security policy."
            ),
            validate=production_signed,
            config_schema=PolicyConfigSchema(properties={"production": {"type": "boolean", "default": False}}),
        ),
        ResourceValidationPolicy(
            name="vmimage-no-unverified-ssl",
            description="TLS to vCenter is verified (vsphere:allowUnverifiedSsl) outside dev stacks.",
            validate=no_unverified_ssl,
            config_schema=PolicyConfigSchema(properties={"dev": {"type": "boolean", "default": False}}),
        ),
        ResourceValidationPolicy(
            name="vmimage-image-floors",
            description="Images meet the platform's floors: hardware version, EFI firmware, allowed OS types.",
            validate=image_floors,
            enforcement_level=EnforcementLevel.ADVISORY,
            config_schema=PolicyConfigSchema(
                properties={
                    "minHardwareVersion": {"type": "integer"},
                    "requireEfi": {"type": "boolean", "default": False},
                    "allowedOsTypes": {"type": "array", "items": {"type": "string"}},
                }
            ),
        ),
        ResourceValidationPolicy(
            name="vmimage-package-lint",
            description="A local package passes `vmimage lint` before its upload (manifest, digests, sizes).",
            validate=package_lint,
            enforcement_level=EnforcementLevel.ADVISORY,
            config_schema=PolicyConfigSchema(
                properties={"severities": {"type": "array", "items": {"type": "string", "enum": ["error", "warning"]}}}
            ),
        ),
    ],
)
