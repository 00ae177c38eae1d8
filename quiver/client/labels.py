"""Labels and samples from the client: their results, GraphQL operations, and the sample
filter a pull narrows its files with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from quiver.client.operations import PAGE_INFO, PAGE_SIZE, Operation, _found, _mutation, _page
from quiver.client.operations import _payload as payload_of
from quiver.client.types import Json, Page, _time

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
