"""Per-request DataLoaders for labels, samples and annotations (working set and versions).

Built on the visibility querysets of ``access``; lists of samples are keyset pages under
each parent, batched by their arguments, so a page of samples with their annotations,
labels and files costs a fixed number of statements whatever its size.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader
from tortoise.functions import Count
from tortoise.models import Model
from tortoise.queryset import QuerySet

from quiver.auth import Viewer
from quiver.models import (
    Annotation,
    SampleStatus,
    VersionAnnotation,
    VersionLabel,
    VersionSample,
)
from quiver.resolvers.access import (
    visible_annotations,
    visible_labels,
    visible_samples,
    visible_version_annotations,
    visible_version_labels,
    visible_version_samples,
)
from quiver.resolvers.errors import ArgumentError
from quiver.resolvers.pagination import Page, counts_by_parent, keyset_page, keyset_pages
from quiver.resolvers.sample_search import (
    VERSION,
    WORKING,
    LabelCounts,
    MetadataFacet,
    SampleCounts,
    SampleFilter,
    filtered_samples,
    filtered_version_samples,
    label_counts,
    metadata_facets,
    sample_counts,
    status_counts,
)

K = TypeVar("K", bound=Hashable)
M = TypeVar("M", bound=Model)
PairKey = tuple[int, int]


def _grouped(rows: Iterable[M], keys: Sequence[K], key: Callable[[M], K]) -> list[list[M]]:
    groups: dict[K, list[M]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return [groups.get(k, []) for k in keys]


@dataclass(frozen=True)
class SamplePageArgs:
    first: int | None = None
    after: str | None = None
    where: SampleFilter = field(default_factory=SampleFilter)


SampleKey = tuple[int, SamplePageArgs]


def _count_of(
    counts: DataLoader[tuple[int, SampleFilter], int], where: SampleFilter, parent: int
) -> Awaitable[int]:
    return counts.load((parent, where))


def _sample_pages(
    matching: Callable[[SampleFilter], QuerySet[M]], parent: str
) -> DataLoader[SampleKey, Page[M]]:
    """Pages of samples under each parent, ordered by id; totals batched by filter."""

    async def count(keys: list[tuple[int, SampleFilter]]) -> list[int]:
        by_filter: dict[SampleFilter, list[int]] = defaultdict(list)
        for parent_pk, where in keys:
            by_filter[where].append(parent_pk)
        found: dict[tuple[int, SampleFilter], int] = {}
        for where, parents in by_filter.items():
            counts = await counts_by_parent(matching(where), parent=parent, parents=parents)
            found.update(((p, where), n) for p, n in zip(parents, counts, strict=True))
        return [found[key] for key in keys]

    counts: DataLoader[tuple[int, SampleFilter], int] = DataLoader(load_fn=count)

    async def load(keys: list[SampleKey]) -> list[Page[M] | BaseException]:
        by_args: dict[SamplePageArgs, list[int]] = defaultdict(list)
        for parent_pk, args in keys:
            by_args[args].append(parent_pk)
        found: dict[SampleKey, Page[M] | BaseException] = {}
        for args, parents in by_args.items():
            try:
                if len(parents) == 1:
                    # One parent: a plain keyset query stops after the page, where the
                    # window over several parents would test every matching row first.
                    (only,) = parents
                    page = await keyset_page(
                        matching(args.where).filter(**{parent: only}),
                        key="id",
                        descending=False,
                        first=args.first,
                        after=args.after,
                    )
                    page = dataclasses.replace(
                        page, count=functools.partial(_count_of, counts, args.where, only)
                    )
                    found[(only, args)] = page
                    continue
                pages: list[Page[M] | BaseException] = list(
                    await keyset_pages(
                        matching(args.where),
                        parent=parent,
                        parents=parents,
                        key="id",
                        descending=False,
                        first=args.first,
                        after=args.after,
                        count=functools.partial(_count_of, counts, args.where),
                    )
                )
            except ArgumentError as error:
                pages = [error] * len(parents)
            found.update(((p, args), page) for p, page in zip(parents, pages, strict=True))
        return [found[key] for key in keys]

    return DataLoader(load_fn=load)


class LabelLoaders:
    """The labelling loaders of one request."""

    def __init__(self, viewer: Viewer) -> None:
        # Querysets are built when a batch loads, never here: making a request's loaders
        # must not touch the database (requests that need none have none).
        self.label_by_id = self._by_id(lambda: visible_labels(viewer))
        self.sample_by_id = self._by_id(lambda: visible_samples(viewer))
        self.annotation_by_id = self._by_id(lambda: visible_annotations(viewer))
        self.labels_by_dataset_id = self._lists(
            lambda ids: visible_labels(viewer).filter(dataset_id__in=ids).order_by("name", "id"),
            lambda row: row.dataset_id,
        )
        self.labels_by_version_id = self._lists(
            lambda ids: (
                visible_version_labels(viewer)
                .filter(version_id__in=ids)
                .order_by("name", "label_id")
            ),
            lambda row: row.version_id,
        )
        self.annotations_by_sample_id = self._lists(
            lambda ids: visible_annotations(viewer).filter(sample_id__in=ids).order_by("id"),
            lambda row: row.sample_id,
        )
        self.version_label_by_key: DataLoader[PairKey, VersionLabel | None] = DataLoader(
            load_fn=self._pairs(lambda: visible_version_labels(viewer), "label_id")
        )
        self.version_sample_by_key: DataLoader[PairKey, VersionSample | None] = DataLoader(
            load_fn=self._pairs(lambda: visible_version_samples(viewer), "sample_id")
        )
        self.version_annotations_by_key: DataLoader[PairKey, list[VersionAnnotation]] = DataLoader(
            load_fn=self._version_annotations(viewer)
        )
        self.samples_page_by_dataset = _sample_pages(filtered_samples, "dataset_id")
        self.samples_page_by_version = _sample_pages(filtered_version_samples, "version_id")
        self.sample_counts_by_dataset: DataLoader[int, SampleCounts] = self._counts(
            WORKING, sample_counts
        )
        self.sample_counts_by_version: DataLoader[int, SampleCounts] = self._counts(
            VERSION, sample_counts
        )
        self.label_counts_by_dataset: DataLoader[int, list[LabelCounts]] = self._counts(
            WORKING, label_counts
        )
        self.label_counts_by_version: DataLoader[int, list[LabelCounts]] = self._counts(
            VERSION, label_counts
        )
        self.status_counts_by_dataset: DataLoader[int, list[tuple[SampleStatus, int]]] = (
            self._counts(WORKING, status_counts)
        )
        self.status_counts_by_version: DataLoader[int, list[tuple[SampleStatus, int]]] = (
            self._counts(VERSION, status_counts)
        )
        self.metadata_facets_by_dataset: DataLoader[int, list[MetadataFacet]] = self._counts(
            WORKING, metadata_facets
        )
        self.metadata_facets_by_version: DataLoader[int, list[MetadataFacet]] = self._counts(
            VERSION, metadata_facets
        )
        self.counts_by_label_id: DataLoader[int, LabelCounts] = DataLoader(
            load_fn=self._label_counts
        )
        self.counts_by_version_label: DataLoader[PairKey, LabelCounts] = DataLoader(
            load_fn=self._version_label_counts
        )

    @staticmethod
    def _by_id(queryset: Callable[[], QuerySet[M]]) -> DataLoader[int, M | None]:
        async def load(ids: list[int]) -> list[M | None]:
            found = {row.pk: row for row in await queryset().filter(id__in=ids)}
            return [found.get(pk) for pk in ids]

        return DataLoader(load_fn=load)

    @staticmethod
    def _lists(
        rows_of: Callable[[list[int]], QuerySet[M]], key: Callable[[Any], int]
    ) -> DataLoader[int, list[M]]:
        async def load(ids: list[int]) -> list[list[M]]:
            return _grouped(await rows_of(ids), ids, key)

        return DataLoader(load_fn=load)

    @staticmethod
    def _pairs(queryset: Callable[[], QuerySet[M]], column: str) -> Callable[[list[PairKey]], Any]:
        async def load(keys: list[PairKey]) -> list[M | None]:
            versions = sorted({v for v, _ in keys})
            values = sorted({k for _, k in keys})
            rows = await queryset().filter(version_id__in=versions, **{f"{column}__in": values})
            found = {(getattr(row, "version_id"), getattr(row, column)): row for row in rows}  # noqa: B009
            return [found.get(key) for key in keys]

        return load

    @staticmethod
    def _version_annotations(viewer: Viewer) -> Callable[[list[PairKey]], Any]:
        async def load(keys: list[PairKey]) -> list[list[VersionAnnotation]]:
            versions = sorted({v for v, _ in keys})
            samples = sorted({s for _, s in keys})
            rows = (
                await visible_version_annotations(viewer)
                .filter(version_id__in=versions, sample_id__in=samples)
                .order_by("annotation_id")
            )
            return _grouped(rows, keys, lambda row: (row.version_id, row.sample_id))

        return load

    @staticmethod
    def _counts(tables: Any, count: Callable[[Any, list[int]], Any]) -> DataLoader[int, Any]:
        async def load(ids: list[int]) -> list[Any]:
            found = await count(tables, ids)
            return [found[pk] for pk in ids]

        return DataLoader(load_fn=load)

    @staticmethod
    async def _label_counts(ids: list[int]) -> list[LabelCounts]:
        rows = (
            await Annotation.filter(label_id__in=ids)
            .group_by("label_id")
            .annotate(n=Count("id"), samples=Count("sample_id", distinct=True))
            .values("label_id", "n", "samples")
        )
        found = {int(r["label_id"]): (int(r["samples"]), int(r["n"])) for r in rows}
        return [LabelCounts(pk, *found.get(pk, (0, 0))) for pk in ids]

    @staticmethod
    async def _version_label_counts(keys: list[PairKey]) -> list[LabelCounts]:
        versions = sorted({v for v, _ in keys})
        labels = sorted({lb for _, lb in keys})
        rows = (
            await VersionAnnotation.filter(version_id__in=versions, label_id__in=labels)
            .group_by("version_id", "label_id")
            .annotate(n=Count("id"), samples=Count("sample_id", distinct=True))
            .values("version_id", "label_id", "n", "samples")
        )
        found = {
            (int(r["version_id"]), int(r["label_id"])): (int(r["samples"]), int(r["n"]))
            for r in rows
        }
        return [LabelCounts(lb, *found.get((v, lb), (0, 0))) for v, lb in keys]
