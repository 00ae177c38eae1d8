"""Jobs get an API (and stored export results): leases, fencing attempts, a per-job change sequence, idempotency keys.

Rows from before have no available_at; they become claimable at their creation time."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from quiver.models.enums import JobKind, JobStatus
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0006_labels')]

    initial = False

    operations = [
        ops.CreateModel(
            name='JobArtifact',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('blob_id', fields.CharField(max_length=64)),
                ('size', fields.BigIntField()),
                ('file_name', fields.CharField(max_length=255)),
                ('content_type', fields.CharField(max_length=127)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'quiver_job_artifact', 'app': 'models', 'pk_attr': 'key', 'table_description': 'A stored job result (an export) under the key of what produced it, so the same export'},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='Job',
            options={'table': 'quiver_job', 'app': 'models', 'indexes': [Index(fields=['status', 'created_at']), Index(fields=['dataset_id', 'created_at']), Index(fields=['status', 'available_at']), Index(fields=['status', 'lease_expires_at'])], 'pk_attr': 'id', 'table_description': 'One unit of background work.'},
        ),
        ops.RenameField(
            model_name='Job',
            old_name='attempts',
            new_name='attempt',
        ),
        ops.AlterField(
            model_name='Job',
            name='kind',
            field=fields.CharEnumField(description='IMPORT_ARCHIVE: IMPORT_ARCHIVE\nIMPORT_PATH: IMPORT_PATH\nEXPORT_ARCHIVE: EXPORT_ARCHIVE\nEXPORT_TABLE: EXPORT_TABLE\nANALYZE: ANALYZE\nCONVERT: CONVERT\nSYNC: SYNC\nIMPORT_ANNOTATIONS: IMPORT_ANNOTATIONS\nEXPORT_ANNOTATIONS: EXPORT_ANNOTATIONS', enum_type=JobKind, max_length=24),
        ),
        ops.AlterField(
            model_name='Job',
            name='status',
            field=fields.CharEnumField(default=JobStatus.PENDING, description='PENDING: PENDING\nRUNNING: RUNNING\nCANCELLING: CANCELLING\nSUCCEEDED: SUCCEEDED\nFAILED: FAILED\nCANCELLED: CANCELLED', enum_type=JobStatus, max_length=16),
        ),
        ops.AddField(
            model_name='Job',
            name='available_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Job',
            name='checkpoint',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Job',
            name='idempotency_key',
            field=fields.CharField(null=True, max_length=255),
        ),
        ops.AddField(
            model_name='Job',
            name='lease_expires_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Job',
            name='max_attempts',
            field=fields.IntField(default=3, db_default=3),
        ),
        ops.AddField(
            model_name='Job',
            name='progress_detail',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Job',
            name='seq',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='Job',
            name='worker',
            field=fields.CharField(null=True, max_length=128),
        ),
        ops.AddIndex(
            model_name='Job',
            index=Index(fields=['status', 'available_at']),
        ),
        ops.AddIndex(
            model_name='Job',
            index=Index(fields=['status', 'lease_expires_at']),
        ),
        # SQLite rebuilds the table to alter the enum columns, dropping the indexes 0001 made.
        ops.RunSQL(
            'CREATE INDEX IF NOT EXISTS "idx_quiver_job_status_bcbe6f" '
            'ON "quiver_job" ("status", "created_at")',
            reverse_sql="SELECT 1",
        ),
        ops.RunSQL(
            'CREATE INDEX IF NOT EXISTS "idx_quiver_job_dataset_e6ada0" '
            'ON "quiver_job" ("dataset_id", "created_at")',
            reverse_sql="SELECT 1",
        ),
        ops.RunSQL(
            "UPDATE quiver_job SET available_at = created_at WHERE available_at IS NULL",
            reverse_sql="SELECT 1",
        ),
        # A caller's key names one job whatever its kind; keys of different callers never meet.
        ops.RunSQL(
            "CREATE UNIQUE INDEX uniq_quiver_job_idempotency "
            "ON quiver_job (created_by_id, idempotency_key) WHERE idempotency_key IS NOT NULL",
            reverse_sql="DROP INDEX uniq_quiver_job_idempotency",
        ),
    ]
