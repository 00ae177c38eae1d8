"""A multipart upload's verification runs as a VERIFY_UPLOAD job: the upload names its job,
so completing again, or asking the upload's state, follows that job."""

from tortoise import migrations
from tortoise import fields
from tortoise.migrations import operations as ops

from quiver.models import JobKind


class Migration(migrations.Migration):
    dependencies = [('models', '0009_external_entity_team')]

    initial = False

    operations = [
        ops.AddField(
            model_name='DirectUpload',
            name='verify_job_id',
            field=fields.BigIntField(null=True),
        ),
        ops.AlterField(
            model_name='Job',
            name='kind',
            field=fields.CharEnumField(description='IMPORT_ARCHIVE: IMPORT_ARCHIVE\nIMPORT_PATH: IMPORT_PATH\nEXPORT_ARCHIVE: EXPORT_ARCHIVE\nEXPORT_TABLE: EXPORT_TABLE\nANALYZE: ANALYZE\nCONVERT: CONVERT\nSYNC: SYNC\nIMPORT_ANNOTATIONS: IMPORT_ANNOTATIONS\nEXPORT_ANNOTATIONS: EXPORT_ANNOTATIONS\nVERIFY_UPLOAD: VERIFY_UPLOAD', enum_type=JobKind, max_length=24),
        ),
    ]
