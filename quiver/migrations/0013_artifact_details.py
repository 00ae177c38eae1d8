"""What a stored export reported beside its bytes (an annotation export's losses), so the
same export served again reports it too; null: nothing."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [('models', '0012_nfc_paths')]

    initial = False

    operations = [
        ops.AddField(
            model_name='JobArtifact',
            name='details',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
