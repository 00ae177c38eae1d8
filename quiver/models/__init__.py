"""Tortoise models, one module per aggregate; nothing here knows about GraphQL."""

from __future__ import annotations

from quiver.models.datasets import Dataset, DatasetShare, DatasetTag
from quiver.models.enums import (
    DatasetStatus,
    DatasetType,
    ExternalKind,
    JobKind,
    JobStatus,
    LabelKind,
    LineageRelation,
    Role,
    SampleStatus,
    Visibility,
)
from quiver.models.files import Blob, DatasetFile, FileTag
from quiver.models.jobs import Job, JobArtifact
from quiver.models.labels import Annotation, Label, Sample
from quiver.models.lineage import ExternalEntity, LineageEdge, NodeKind
from quiver.models.tables import TableAnalysis
from quiver.models.uploads import Upload
from quiver.models.users import ApiKey, Membership, Team, User
from quiver.models.versions import Version, VersionEntry

__all__ = [
    "Annotation",
    "ApiKey",
    "Blob",
    "Dataset",
    "DatasetFile",
    "DatasetShare",
    "DatasetStatus",
    "DatasetTag",
    "DatasetType",
    "ExternalEntity",
    "ExternalKind",
    "FileTag",
    "Job",
    "JobArtifact",
    "JobKind",
    "JobStatus",
    "Label",
    "LabelKind",
    "LineageEdge",
    "LineageRelation",
    "Membership",
    "NodeKind",
    "Role",
    "Sample",
    "SampleStatus",
    "TableAnalysis",
    "Team",
    "Upload",
    "User",
    "Version",
    "VersionEntry",
    "Visibility",
]
