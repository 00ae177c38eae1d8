"""Label sets per dataset: create (in batches), update, delete, and get-or-create by name.

Annotations point at labels, so renaming, recolouring or changing a label's attribute
schema is one row's update, seen at once on every annotation. Deleting labels deletes
their annotations, and with ``delete_samples`` the samples that only they annotated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from quiver.auth import Viewer
from quiver.ids import decode_global_id
from quiver.models import Annotation, Dataset, Label, LabelKind, Role, Sample, SampleStatus
from quiver.resolvers import sql
from quiver.resolvers.access import label_for, require_role, visible_labels
from quiver.resolvers.errors import ErrorCode, FieldPath, Problem, Refused
from quiver.resolvers.files import ensure_active, writable_dataset
from quiver.resolvers.geometry import check_attribute_schema, check_skeleton
from quiver.resolvers.label_metrics import record_counts
from quiver.resolvers.validation import raise_if_any

MAX_LABELS_PER_CALL = 1000
MAX_LABEL_NAME = 127
COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


@dataclass(frozen=True)
class LabelSpec:
    """A label to create. ``parent``: the name of another label of the dataset (or of one
    earlier in the same batch)."""

    name: str
    kind: LabelKind = LabelKind.CLASSIFICATION
    color: str | None = None
    attributes: Any = None
    parent: str | None = None
    skeleton: Any = None


async def int_column(queryset: QuerySet[Any], column: str) -> list[int]:
    """One integer column of a queryset's rows."""
    return [int(row[column]) for row in await queryset.values(column)]


def check_label_name(name: str, field: FieldPath) -> list[Problem]:
    if not name.strip() or name != name.strip():
        return [
            Problem(field, "A label name is not blank and has no outer spaces", ErrorCode.INVALID)
        ]
    if len(name) > MAX_LABEL_NAME:
        return [
            Problem(
                field, f"A label name has at most {MAX_LABEL_NAME} characters", ErrorCode.INVALID
            )
        ]
    if any(ord(c) < 32 for c in name):
        return [Problem(field, "A label name has no control characters", ErrorCode.INVALID)]
    return []


def check_color(color: str | None, field: FieldPath) -> list[Problem]:
    if color is None or COLOR.match(color):
        return []
    return [Problem(field, "A color is #rgb, #rrggbb or #rrggbbaa", ErrorCode.INVALID)]


def _check_spec(spec: LabelSpec, field: FieldPath) -> list[Problem]:
    return [
        *check_label_name(spec.name, (*field, "name")),
        *check_color(spec.color, (*field, "color")),
        *check_attribute_schema(spec.attributes, (*field, "attributes")),
        *check_skeleton(spec.kind, spec.skeleton, (*field, "skeleton")),
    ]


async def create_labels(viewer: Viewer, dataset_id: str, specs: Sequence[LabelSpec]) -> list[Label]:
    """Create labels in one dataset, all or none (WRITE)."""
    dataset = await writable_dataset(viewer, dataset_id, ("input", "datasetId"))
    async with in_transaction():
        await sql.lock_dataset(dataset.id)
        labels = await add_labels(dataset.id, specs, field=("input", "labels"))
        await record_counts(dataset.id)
    return labels


async def add_labels(
    dataset_pk: int, specs: Sequence[LabelSpec], *, field: FieldPath = ("input", "labels")
) -> list[Label]:
    """Create ``specs`` in a dataset (caller holds its lock in a transaction); names already
    taken are a CONFLICT. Returns them in the order given."""
    if len(specs) > MAX_LABELS_PER_CALL:
        raise Refused.one(
            field, f"At most {MAX_LABELS_PER_CALL} labels per call", ErrorCode.TOO_LARGE
        )
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        problems += _check_spec(spec, (*field, str(i)))
        if spec.name in seen:
            problems.append(
                Problem(
                    (*field, str(i), "name"), f"{spec.name!r} is given twice", ErrorCode.INVALID
                )
            )
        seen.setdefault(spec.name, i)
    raise_if_any(problems)
    existing = {
        label.name: label
        for label in await Label.filter(dataset_id=dataset_pk, name__in=[s.name for s in specs])
    }
    for i, spec in enumerate(specs):
        if spec.name in existing:
            problems.append(
                Problem(
                    (*field, str(i), "name"),
                    f"The dataset already has a label {spec.name!r}",
                    ErrorCode.CONFLICT,
                )
            )
    parents = [spec.parent for spec in specs if spec.parent is not None]
    known = {
        label.name: label for label in await Label.filter(dataset_id=dataset_pk, name__in=parents)
    }
    for i, spec in enumerate(specs):
        if spec.parent is not None and spec.parent not in known and seen.get(spec.parent, i) >= i:
            problems.append(
                Problem(
                    (*field, str(i), "parent"),
                    f"No label {spec.parent!r} in the dataset or earlier in this list",
                    ErrorCode.NOT_FOUND,
                )
            )
    raise_if_any(problems)
    created: list[Label] = []
    for spec in specs:
        parent = known.get(spec.parent) if spec.parent is not None else None
        label = await Label.create(
            dataset_id=dataset_pk,
            name=spec.name,
            kind=spec.kind,
            color=spec.color,
            attributes=spec.attributes,
            parent_id=parent.id if parent is not None else None,
            skeleton=spec.skeleton,
        )
        known[label.name] = label
        created.append(label)
    return created


async def labels_by_name(
    dataset_pk: int, specs: Sequence[LabelSpec], *, field: FieldPath = ("input", "labels")
) -> dict[str, Label]:
    """For importers: the dataset's labels named in ``specs``, creating the missing ones as
    specified (caller holds the dataset's lock in a transaction). Existing labels are
    returned as they are, whatever kind the spec names."""
    names = list(dict.fromkeys(spec.name for spec in specs))
    found = {
        label.name: label for label in await Label.filter(dataset_id=dataset_pk, name__in=names)
    }
    wanted: dict[str, LabelSpec] = {}
    for spec in specs:
        if spec.name not in found:
            wanted.setdefault(spec.name, spec)
    # Parents first, so a spec naming a parent created in the same call finds it.
    ordered = sorted(wanted.values(), key=lambda s: s.parent is not None and s.parent in wanted)
    for label in await add_labels(dataset_pk, ordered, field=field):
        found[label.name] = label
    return found


async def update_label(viewer: Viewer, label_id: str, changes: Mapping[str, Any]) -> Label:
    """Change a label's name, color, attributes, parent or skeleton (WRITE); annotations
    see the change at once."""
    field = ("input", "id")
    label = await label_for(viewer, label_id, Role.WRITE, field)
    dataset = await Dataset.get(id=label.dataset_id)
    ensure_active(dataset, field)
    problems: list[Problem] = []
    if "name" in changes:
        if changes["name"] is None:
            problems.append(Problem(("input", "name"), "A label needs a name", ErrorCode.INVALID))
        else:
            problems += check_label_name(changes["name"], ("input", "name"))
    if "color" in changes:
        problems += check_color(changes["color"], ("input", "color"))
    if "attributes" in changes:
        problems += check_attribute_schema(changes["attributes"], ("input", "attributes"))
    if "skeleton" in changes:
        problems += check_skeleton(label.kind, changes["skeleton"], ("input", "skeleton"))
    raise_if_any(problems)
    async with in_transaction():
        await sql.lock_dataset(dataset.id)
        if "name" in changes and changes["name"] != label.name:
            if await Label.filter(dataset_id=dataset.id, name=changes["name"]).exists():
                raise Refused.conflict(
                    ("input", "name"), f"The dataset already has a label {changes['name']!r}"
                )
            label.name = changes["name"]
        if "parent_id" in changes:
            label.parent_id = await _parent_pk(label, changes["parent_id"])
        for key in ("color", "attributes", "skeleton"):
            if key in changes:
                setattr(label, key, changes[key])
        await label.save()
    return label


async def _parent_pk(label: Label, parent_id: str | None) -> int | None:
    field = ("input", "parentId")
    if parent_id is None:
        return None
    pk = decode_global_id(parent_id, "Label")
    parent = await Label.get_or_none(id=pk, dataset_id=label.dataset_id) if pk else None
    if parent is None:
        raise Refused.not_found(field, "No label with this id in the label's dataset")
    ancestor: Label | None = parent
    while ancestor is not None:
        if ancestor.id == label.id:
            raise Refused.invalid(field, "A label cannot be its own ancestor")
        ancestor = await Label.get_or_none(id=ancestor.parent_id) if ancestor.parent_id else None
    return int(parent.id)


@dataclass(frozen=True)
class DeletedLabels:
    label_ids: list[int]
    sample_count: int


async def delete_labels(
    viewer: Viewer, label_ids: Sequence[str], *, delete_samples: bool
) -> DeletedLabels:
    """Delete labels and their annotations (WRITE on their datasets); with
    ``delete_samples``, also the samples every annotation of which carried those labels.
    Samples left without annotations return to UNLABELED."""
    if len(label_ids) > MAX_LABELS_PER_CALL:
        raise Refused.one(
            ("input", "ids"), f"At most {MAX_LABELS_PER_CALL} labels per call", ErrorCode.TOO_LARGE
        )
    pks = [decode_global_id(gid, "Label") for gid in label_ids]
    wanted = [pk for pk in pks if pk is not None]
    labels = {label.id: label for label in await visible_labels(viewer).filter(id__in=wanted)}
    missing = [
        Problem(("input", "ids", str(i)), "No label with this id", ErrorCode.NOT_FOUND)
        for i, pk in enumerate(pks)
        if pk is None or pk not in labels
    ]
    raise_if_any(missing)
    datasets = {
        d.id: d for d in await Dataset.filter(id__in={lb.dataset_id for lb in labels.values()})
    }
    for dataset in datasets.values():
        await require_role(viewer, dataset, Role.WRITE, ("input", "ids"))
        ensure_active(dataset, ("input", "ids"))
    ids = sorted(labels)
    now = datetime.now(UTC)
    deleted_samples = 0
    async with in_transaction():
        for dataset_pk in sorted(datasets):
            await sql.lock_dataset(dataset_pk)
        touched = await int_column(Annotation.filter(label_id__in=ids).distinct(), "sample_id")
        if delete_samples and touched:
            mixed = Annotation.filter(sample_id__in=touched).exclude(label_id__in=ids)
            others = await int_column(mixed.distinct(), "sample_id")
            doomed = await int_column(Sample.filter(id__in=touched).exclude(id__in=others), "id")
            deleted_samples = len(doomed)
            if doomed:
                await Sample.filter(id__in=doomed).delete()
            touched = sorted(set(touched) - set(doomed))
        await Label.filter(id__in=ids).delete()
        if touched:
            await bump_samples(touched, now)
        for dataset_pk in sorted(datasets):
            await record_counts(dataset_pk, now)
    return DeletedLabels(ids, deleted_samples)


async def bump_samples(sample_pks: Sequence[int], now: datetime) -> None:
    """A new revision for samples whose annotations changed; those left without any are
    UNLABELED again."""
    for start in range(0, len(sample_pks), 1000):
        batch = list(sample_pks[start : start + 1000])
        await Sample.filter(id__in=batch).update(updated_at=now)
        await sql.execute(
            "UPDATE quiver_sample SET revision = revision + 1, status = CASE WHEN EXISTS "
            "(SELECT 1 FROM quiver_annotation a WHERE a.sample_id = quiver_sample.id) "
            "THEN status ELSE ? END WHERE id IN {json_ints}",
            SampleStatus.UNLABELED.value,
            _json(batch),
        )


def _json(values: Sequence[int]) -> str:
    return json.dumps(list(values))
