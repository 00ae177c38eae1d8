"""Enumerations stored in the database; their values are the GraphQL enum names."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    READ = "READ"
    WRITE = "WRITE"
    ADMIN = "ADMIN"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def includes(self, other: Role) -> bool:
        """Whether holding this role grants everything ``other`` grants."""
        return self.rank >= other.rank


_ROLE_RANK = {Role.READ: 1, Role.WRITE: 2, Role.ADMIN: 3}


class Visibility(StrEnum):
    PRIVATE = "PRIVATE"
    PUBLIC = "PUBLIC"


class DatasetType(StrEnum):
    TEXT = "TEXT"
    IMAGE = "IMAGE"
    AUDIO = "AUDIO"
    VIDEO = "VIDEO"
    TABULAR = "TABULAR"
    OTHER = "OTHER"


class DatasetStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DELETED = "DELETED"


class LabelKind(StrEnum):
    CLASSIFICATION = "CLASSIFICATION"
    MULTI_LABEL = "MULTI_LABEL"
    BOUNDING_BOX = "BOUNDING_BOX"
    POLYGON = "POLYGON"
    KEYPOINTS = "KEYPOINTS"
    SEGMENTATION_MASK = "SEGMENTATION_MASK"
    NAMED_ENTITY = "NAMED_ENTITY"
    TEXT_SPAN = "TEXT_SPAN"


class SampleStatus(StrEnum):
    UNLABELED = "UNLABELED"
    LABELED = "LABELED"
    REVIEWED = "REVIEWED"
    REJECTED = "REJECTED"


class JobKind(StrEnum):
    IMPORT_ARCHIVE = "IMPORT_ARCHIVE"
    IMPORT_PATH = "IMPORT_PATH"
    EXPORT_ARCHIVE = "EXPORT_ARCHIVE"
    EXPORT_TABLE = "EXPORT_TABLE"
    ANALYZE = "ANALYZE"
    CONVERT = "CONVERT"
    SYNC = "SYNC"
    IMPORT_ANNOTATIONS = "IMPORT_ANNOTATIONS"
    EXPORT_ANNOTATIONS = "EXPORT_ANNOTATIONS"
    VERIFY_UPLOAD = "VERIFY_UPLOAD"


class JobStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    CANCELLING = "CANCELLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        """SUCCEEDED, FAILED or CANCELLED: nothing will change the job any more but a retry."""
        return self in _FINISHED


_FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class LineageRelation(StrEnum):
    COPIED_FROM = "COPIED_FROM"
    MERGED_FROM = "MERGED_FROM"
    VERSION_OF = "VERSION_OF"
    CONVERTED_FROM = "CONVERTED_FROM"
    USED_BY = "USED_BY"
    PRODUCED = "PRODUCED"


class ExternalKind(StrEnum):
    EXPERIMENT = "EXPERIMENT"
    MODEL = "MODEL"
    DEPLOYMENT = "DEPLOYMENT"
