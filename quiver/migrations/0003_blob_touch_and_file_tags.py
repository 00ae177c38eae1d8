from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_active_dataset_name_unique')]

    initial = False

    operations = [
        ops.CreateModel(
            name='FileTag',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('file', fields.ForeignKeyField('models.DatasetFile', source_field='file_id', db_constraint=True, to_field='id', related_name='tag_rows', on_delete=OnDelete.CASCADE)),
                ('dataset', fields.ForeignKeyField('models.Dataset', source_field='dataset_id', db_constraint=True, to_field='id', related_name='file_tags', on_delete=OnDelete.CASCADE)),
                ('tag', fields.CharField(max_length=64)),
                ('position', fields.IntField()),
            ],
            options={'table': 'quiver_file_tag', 'app': 'models', 'unique_together': (('file', 'tag'),), 'indexes': [Index(fields=['dataset_id', 'tag', 'file_id'])], 'pk_attr': 'id', 'table_description': 'One tag of a working-set file, as a row so that listings can filter by tag in SQL.'},
            bases=['Model'],
        ),
        ops.RemoveIndex(
            model_name='Blob',
            name=None,
            fields=['created_at'],
        ),
        ops.AddField(
            model_name='Blob',
            name='touched_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='Blob',
            index=Index(fields=['touched_at']),
        ),
        ops.RemoveField(model_name='DatasetFile', name='tags'),
    ]
