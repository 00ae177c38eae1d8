"""Versions: numbers never reused, deletion kept for lineage, timestamps in manifests.

Version entries had no writer before this migration, so their new NOT NULL columns
need no default."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_active_dataset_name_unique')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Dataset',
            name='last_version_number',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='Version',
            name='deleted_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='VersionEntry',
            name='created_at',
            field=fields.DatetimeField(auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='VersionEntry',
            name='updated_at',
            field=fields.DatetimeField(auto_now=False, auto_now_add=False),
        ),
    ]
