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
from quiver.models.jobs import Job, JobArtifact, JobEvent
from quiver.models.labels import (
    Annotation,
    AnnotationSourceKind,
    DatasetMetric,
    Label,
    Sample,
    VersionAnnotation,
    VersionLabel,
    VersionSample,
)
from quiver.models.lineage import ExternalEntity, LineageEdge, NodeKind
from quiver.models.tables import TableAnalysis
from quiver.models.transfers import BlobGrant, CommitRecord, DirectUpload
from quiver.models.uploads import Upload
from quiver.models.users import ApiKey, Membership, Team, User
from quiver.models.versions import Version, VersionEntry

__all__ = [
    "Annotation",
    "AnnotationSourceKind",
    "ApiKey",
    "Blob",
    "BlobGrant",
    "CommitRecord",
    "Dataset",
    "DatasetFile",
    "DatasetMetric",
    "DatasetShare",
    "DatasetStatus",
    "DatasetTag",
    "DatasetType",
    "DirectUpload",
    "ExternalEntity",
    "ExternalKind",
    "FileTag",
    "Job",
    "JobArtifact",
    "JobEvent",
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
    "VersionAnnotation",
    "VersionEntry",
    "VersionLabel",
    "VersionSample",
    "Visibility",
]
