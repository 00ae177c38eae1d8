"""Results of table analyses, kept by content hash."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_versions_lifecycle')]

    initial = False

    operations = [
        ops.CreateModel(
            name='TableAnalysis',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('sha256', fields.CharField(max_length=64)),
                ('kind', fields.CharField(max_length=32)),
                ('arguments', fields.CharField(default='', max_length=64)),
                ('result', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('error', fields.TextField(null=True, unique=False)),
                ('error_line', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'quiver_table_analysis', 'app': 'models', 'unique_together': (('sha256', 'kind', 'arguments'),), 'pk_attr': 'id', 'table_description': 'One analysis (schema, statistics, quality, drift against a baseline…) of a table.'},
            bases=['Model'],
        ),
    ]
