"""Blob grants, direct-to-S3 uploads and commit idempotency keys (the transfer API)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0007_jobs')]

    initial = False

    operations = [
        ops.CreateModel(
            name='BlobGrant',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('blob', fields.ForeignKeyField('models.Blob', source_field='blob_id', db_constraint=True, to_field='sha256', related_name='grants', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='blob_grants', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'quiver_blob_grant', 'app': 'models', 'unique_together': (('user', 'blob'),), 'pk_attr': 'id', 'table_description': 'Bytes a user sent, so may read and commit before any file they can read names them.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CommitRecord',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('dataset', fields.ForeignKeyField('models.Dataset', source_field='dataset_id', db_constraint=True, to_field='id', related_name='commits', on_delete=OnDelete.CASCADE)),
                ('idempotency_key', fields.CharField(max_length=200)),
                ('input_digest', fields.CharField(max_length=64)),
                ('version', fields.ForeignKeyField('models.Version', source_field='version_id', null=True, db_constraint=True, to_field='id', related_name='commits', on_delete=OnDelete.SET_NULL)),
                ('result', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'quiver_commit', 'app': 'models', 'unique_together': (('dataset', 'idempotency_key'),), 'indexes': [Index(fields=['created_at'])], 'pk_attr': 'id', 'table_description': 'A commitFiles that succeeded with an idempotency key: a retry gets its result back.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DirectUpload',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='direct_uploads', on_delete=OnDelete.CASCADE)),
                ('dataset', fields.ForeignKeyField('models.Dataset', source_field='dataset_id', db_constraint=True, to_field='id', related_name='direct_uploads', on_delete=OnDelete.CASCADE)),
                ('sha256', fields.CharField(max_length=64)),
                ('size', fields.BigIntField()),
                ('transfer', fields.CharField(max_length=16)),
                ('key', fields.CharField(max_length=255)),
                ('multipart_id', fields.TextField(null=True, unique=False)),
                ('part_size', fields.BigIntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'quiver_direct_upload', 'app': 'models', 'indexes': [Index(fields=['user_id', 'sha256']), Index(fields=['expires_at'])], 'pk_attr': 'id', 'table_description': 'Bytes on their way from a client straight to S3, verified before they are visible.'},
            bases=['Model'],
        ),
    ]
