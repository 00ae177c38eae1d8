"""A multipart upload's verification runs as a VERIFY_UPLOAD job: the upload names its job,
so completing again, or asking the upload's state, follows that job.

Altering ``Job.kind`` makes SQLite rebuild ``quiver_job``, which drops every index on it: they
are made again here (``IF NOT EXISTS``: PostgreSQL keeps them). Anything else attached to the
table (the job-event triggers) must come in a later migration."""

from tortoise import migrations
from tortoise import fields
from tortoise.migrations import operations as ops

from quiver.models import JobKind


class Migration(migrations.Migration):
    dependencies = [("models", "0009_external_entity_team")]

    initial = False

    operations = [
        ops.AddField(
            model_name="DirectUpload",
            name="verify_job_id",
            field=fields.BigIntField(null=True),
        ),
        ops.AlterField(
            model_name="Job",
            name="kind",
            field=fields.CharEnumField(
                description="IMPORT_ARCHIVE: IMPORT_ARCHIVE\nIMPORT_PATH: IMPORT_PATH\nEXPORT_ARCHIVE: EXPORT_ARCHIVE\nEXPORT_TABLE: EXPORT_TABLE\nANALYZE: ANALYZE\nCONVERT: CONVERT\nSYNC: SYNC\nIMPORT_ANNOTATIONS: IMPORT_ANNOTATIONS\nEXPORT_ANNOTATIONS: EXPORT_ANNOTATIONS\nVERIFY_UPLOAD: VERIFY_UPLOAD",
                enum_type=JobKind,
                max_length=24,
            ),
        ),
        *(
            ops.RunSQL(f"CREATE INDEX IF NOT EXISTS {name} ON quiver_job ({columns})", "SELECT 1")
            for name, columns in (
                ('"idx_quiver_job_status_bcbe6f"', '"status", "created_at"'),
                ('"idx_quiver_job_dataset_e6ada0"', '"dataset_id", "created_at"'),
                ('"idx_quiver_job_status_47ea29"', '"status", "available_at"'),
                ('"idx_quiver_job_status_08f9fc"', '"status", "lease_expires_at"'),
            )
        ),
        ops.RunSQL(
            "CREATE UNIQUE INDEX IF NOT EXISTS uniq_quiver_job_idempotency ON quiver_job "
            "(created_by_id, idempotency_key) WHERE idempotency_key IS NOT NULL",
            reverse_sql="SELECT 1",
        ),
    ]
