"""Labels and samples from the client: their results, GraphQL operations, the sample filter
a pull narrows its files with, and the plans both clients' label methods run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from quiver.client.errors import QuiverError
from quiver.client.operations import PAGE_INFO, PAGE_SIZE, Operation, _found, _mutation, _page
from quiver.client.operations import _payload as payload_of
from quiver.client.steps import Paging, Plan, each
from quiver.client.types import Json, Page, _time

if TYPE_CHECKING:
    from quiver.client.plans import Plans

LABEL_FIELDS = "id name color kind attributes skeleton parent { name } createdAt"
ANNOTATION_FIELDS = "id label { name } score geometry attributes revision source { kind modelName }"
SAMPLE_FIELDS = f"""id path row status hardExample metadata width height revision createdAt
  annotations {{ {ANNOTATION_FIELDS} }}"""
MATCHES = ("ANY", "ALL", "NONE")
STATUSES = ("UNLABELED", "LABELED", "REVIEWED", "REJECTED")


@dataclass(frozen=True)
class Label:
    id: str
    name: str
    color: str | None
    kind: str
    attributes: Any
    skeleton: Any
    parent: str | None
    created_at: datetime | None

    @classmethod
    def from_json(cls, data: Json) -> Label:
        return cls(
            id=data["id"],
            name=data["name"],
            color=data.get("color"),
            kind=data["kind"],
            attributes=data.get("attributes"),
            skeleton=data.get("skeleton"),
            parent=(data.get("parent") or {}).get("name"),
            created_at=_time(data.get("createdAt")),
        )


@dataclass(frozen=True)
class Annotation:
    id: str
    label: str | None
    score: float | None
    geometry: Any
    attributes: Any
    revision: int
    source: str | None
    model: str | None

    @classmethod
    def from_json(cls, data: Json) -> Annotation:
        source = data.get("source") or {}
        return cls(
            id=data["id"],
            label=(data.get("label") or {}).get("name"),
            score=data.get("score"),
            geometry=data.get("geometry"),
            attributes=data.get("attributes"),
            revision=int(data.get("revision") or 1),
            source=source.get("kind"),
            model=source.get("modelName"),
        )


@dataclass(frozen=True)
class Sample:
    id: str
    path: str | None
    row: int | None
    status: str
    hard_example: bool
    metadata: Any
    width: int | None
    height: int | None
    revision: int
    created_at: datetime | None
    annotations: list[Annotation] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Json) -> Sample:
        return cls(
            id=data["id"],
            path=data.get("path"),
            row=data.get("row"),
            status=data["status"],
            hard_example=bool(data.get("hardExample")),
            metadata=data.get("metadata"),
            width=data.get("width"),
            height=data.get("height"),
            revision=int(data.get("revision") or 1),
            created_at=_time(data.get("createdAt")),
            annotations=[Annotation.from_json(a) for a in data.get("annotations") or []],
        )


def sample_filter(
    *,
    label_ids: list[str] | None = None,
    label_match: str = "ANY",
    status: str | None = None,
    metadata: Json | None = None,
    prefix: str | None = None,
    hard_example: bool | None = None,
) -> Json:
    """A SampleFilter of the conditions given."""
    given: Json = {"labelIds": label_ids, "status": status, "metadata": metadata}
    given |= {"pathPrefix": prefix, "hardExample": hard_example}
    found = {key: value for key, value in given.items() if value is not None}
    if label_ids is not None:
        found["labelMatch"] = label_match.upper()
    return found


# --- operations -------------------------------------------------------------------------


def labels(owner: str, id: str) -> Operation[list[Label]]:
    """The labels of a ``dataset`` or a ``version`` (``owner``)."""
    return Operation(
        f"query($id: ID!) {{ {owner}(id: $id) {{ labels {{ {LABEL_FIELDS} }} }} }}",
        {"id": id},
        lambda data: [Label.from_json(x) for x in _found(data[owner], owner.title())["labels"]],
    )


def samples(
    owner: str, id: str, after: str | None, filter: Json, *, fields: str = SAMPLE_FIELDS
) -> Operation[Page[Json]]:
    """A page of the samples of a ``dataset`` or a ``version`` matching ``filter``."""
    return Operation(
        f"""query($id: ID!, $after: String, $filter: SampleFilter) {{ {owner}(id: $id) {{
  samples(first: {PAGE_SIZE}, after: $after, filter: $filter) {{
    edges {{ node {{ {fields} }} }} {PAGE_INFO} }} }} }}""",
        {"id": id, "after": after, "filter": filter},
        lambda data: _page(_found(data[owner], owner.title())["samples"], dict),
    )


def create_labels(dataset_id: str, values: list[Json]) -> Operation[list[Label]]:
    return Operation(
        _mutation("createLabels", "CreateLabelsInput", f"labels {{ {LABEL_FIELDS} }}"),
        {"input": {"datasetId": dataset_id, "labels": values}},
        lambda data: [Label.from_json(x) for x in payload_of(data, "createLabels")["labels"]],
    )


def _samples_mutation(name: str, input_type: str, values: Json) -> Operation[Json]:
    return Operation(
        _mutation(name, input_type, f"count samples {{ {SAMPLE_FIELDS} }}"),
        {"input": values},
        lambda data: payload_of(data, name),
    )


def add_samples(values: Json) -> Operation[Json]:
    return _samples_mutation("addSamples", "AddSamplesInput", values)


def update_samples(values: Json) -> Operation[Json]:
    return _samples_mutation("updateSamples", "UpdateSamplesInput", values)


def annotate_samples(values: Json) -> Operation[Json]:
    return _samples_mutation("annotateSamples", "AnnotateSamplesInput", values)


# --- plans (see quiver.client.steps): the client methods for labels and samples ---------


def list_labels(plans: Plans, reference: str) -> Plan[list[Label]]:
    """The labels of a dataset (or of a version, ``name@vN``), by name."""
    found: list[Label] = yield labels(*(yield from plans.label_owner(reference)))
    return found


def make_labels(plans: Plans, reference: str, labels: list[str | Json]) -> Plan[list[Label]]:
    """Make labels, all or none: names, or LabelInput objects ({name, kind, color, …})."""
    values = [{"name": given} if isinstance(given, str) else given for given in labels]
    made: list[Label] = yield create_labels((yield from plans.dataset_id(reference)), values)
    return made


def label_ids(plans: Plans, reference: str, names: list[str]) -> Plan[list[str]]:
    """The IDs of labels named ``names``; NOT_FOUND naming any there is not."""
    by_name = {label.name: label.id for label in (yield from list_labels(plans, reference))}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise QuiverError(f"{reference} has no label {', '.join(missing)}", code="NOT_FOUND")
    return [by_name[name] for name in names]


def list_samples(
    plans: Plans,
    reference: str,
    *,
    labels: list[str] | None = None,
    label_match: str = "ANY",
    status: str | None = None,
    metadata: Json | None = None,
    prefix: str | None = None,
    hard_example: bool | None = None,
) -> Plan[Paging[Sample]]:
    """The samples of a dataset (or a version) matching every condition given, with their
    annotations; ``labels`` by name, matched ANY, ALL or NONE."""
    owner, owner_id = yield from plans.label_owner(reference)
    ids = (yield from label_ids(plans, reference, labels)) if labels is not None else None
    filter = sample_filter(
        label_ids=ids,
        label_match=label_match,
        status=status.upper() if status else None,
        metadata=metadata,
        prefix=prefix,
        hard_example=hard_example,
    )
    return Paging(lambda after: each(samples(owner, owner_id, after, filter), Sample.from_json))


def add(
    plans: Plans,
    reference: str,
    paths: list[str] | None = None,
    *,
    all_files: bool = False,
    metadata: Json | None = None,
) -> Plan[list[Sample]]:
    """Make samples of files (``paths``, or every file without one); the samples of
    ``paths`` (none with ``all_files``: list them with ``samples``)."""
    values: Json = {"datasetId": (yield from plans.dataset_id(reference)), "paths": paths}
    values |= {"allFiles": all_files, "metadata": metadata}
    return _samples_of((yield add_samples(values)))


def update(
    plans: Plans,
    sample_ids: list[str],
    *,
    status: str | None = None,
    hard_example: bool | None = None,
    metadata: Json | None = None,
) -> Plan[list[Sample]]:
    """Set the status, hard-example flag or metadata of samples."""
    values: Json = {"ids": sample_ids}
    if status is not None:
        values["status"] = status.upper()
    if hard_example is not None:
        values["hardExample"] = hard_example
    if metadata is not None:
        values["metadata"] = metadata
    return _samples_of((yield update_samples(values)))


def annotate(
    plans: Plans, reference: str, annotations: dict[str, list[Json]]
) -> Plan[list[Sample]]:
    """Replace the annotations of samples (by sample ID), all or none. Each annotation is
    an AnnotationInput ({labelId or label: name, geometry, score, attributes, model})."""
    by_name: dict[str, str] | None = None
    entries: list[Json] = []
    for sample_id, given in annotations.items():
        made = []
        for annotation in given:
            annotation = dict(annotation)
            if "label" in annotation:
                if by_name is None:
                    found = yield from list_labels(plans, reference)
                    by_name = {label.name: label.id for label in found}
                name = annotation.pop("label")
                if name not in by_name:
                    raise QuiverError(f"{reference} has no label {name}", code="NOT_FOUND")
                annotation["labelId"] = by_name[name]
            made.append(annotation)
        entries.append({"sampleId": sample_id, "annotations": made})
    return _samples_of((yield annotate_samples({"samples": entries})))


def _samples_of(payload: Json) -> list[Sample]:
    return [Sample.from_json(found) for found in payload.get("samples") or []]
