"""Read options kept with a working-set file (how to read it as a table); null: sniff."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_table_analyses')]

    initial = False

    operations = [
        ops.AddField(
            model_name='DatasetFile',
            name='read_options',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
