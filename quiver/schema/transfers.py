"""``copyDataset``, ``mergeDatasets`` and ``clearDataset``: their inputs and mutations."""

from __future__ import annotations

import strawberry

from quiver.context import Info
from quiver.resolvers import transfers as ops
from quiver.resolvers.transfers import ConflictPolicy
from quiver.schema.datasets import DatasetPayload, changed_dataset
from quiver.schema.errors import mutation

strawberry.enum(
    ConflictPolicy,
    description="What a merge does with a path both datasets hold with different content.",
)


@strawberry.input(description="Copy a dataset (or a version) to a new dataset, or version it.")
class CopyDatasetInput:
    id: strawberry.ID = strawberry.field(description="The dataset, or a version of one, to copy.")
    new_name: str | None = strawberry.field(
        default=None,
        description="Name of the new dataset. Without it, the copy is the source dataset's "
        "next version instead.",
    )
    only_paths: list[str] | None = strawberry.field(
        default=None, description="Copy only these paths (at most 10,000); all when omitted."
    )
    team_id: strawberry.ID | None = strawberry.field(
        default=None, description="Owner of the new dataset; the caller's personal team if omitted."
    )


@strawberry.input(description="Add one dataset's files to another.")
class MergeDatasetsInput:
    target_id: strawberry.ID = strawberry.field(description="The dataset that receives (WRITE).")
    source_id: strawberry.ID = strawberry.field(description="The dataset that gives (READ).")
    on_conflict: ConflictPolicy = strawberry.field(
        default=ConflictPolicy.FAIL,
        description="FAIL changes nothing and lists the conflicts; KEEP_TARGET, KEEP_SOURCE; "
        "RENAME adds the source's file as name_1.ext. Identical content never conflicts.",
    )
    delete_source: bool = strawberry.field(
        default=False, description="Delete the source afterwards (needs WRITE on it)."
    )
    hard: bool = strawberry.field(
        default=False, description="With deleteSource: remove it for good (needs ADMIN on it)."
    )


@strawberry.input(description="The dataset whose working set to empty.")
class ClearDatasetInput:
    id: strawberry.ID = strawberry.field(description="The dataset.")


@strawberry.type
class TransferMutation:
    @mutation(
        description="Copy a dataset or version into a new dataset (READ on the source), or, "
        "without newName, snapshot it as its next version (WRITE). Rows only: no bytes move."
    )
    async def copy_dataset(self, info: Info, input: CopyDatasetInput) -> DatasetPayload:
        dataset = await ops.copy_dataset(
            info.context.viewer,
            input.id,
            new_name=input.new_name,
            only_paths=input.only_paths,
            team_id=input.team_id,
        )
        return changed_dataset(info, dataset)

    @mutation(description="Add the source's files and labels to the target.")
    async def merge_datasets(self, info: Info, input: MergeDatasetsInput) -> DatasetPayload:
        dataset = await ops.merge_datasets(
            info.context.viewer,
            input.target_id,
            input.source_id,
            on_conflict=input.on_conflict,
            delete_source=input.delete_source,
            hard=input.hard,
        )
        return changed_dataset(info, dataset)

    @mutation(
        description="Remove every file (with metadata and tags) and sample (with annotations) "
        "from the working set. Versions, labels and the dataset's own fields stay."
    )
    async def clear_dataset(self, info: Info, input: ClearDatasetInput) -> DatasetPayload:
        return changed_dataset(info, await ops.clear_dataset(info.context.viewer, input.id))
