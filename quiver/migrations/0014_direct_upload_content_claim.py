"""A multipart upload may write straight to its blob's content key (no copy afterwards):
``content_claim`` names that sha256 while the object there is unverified; unique, so at
most one upload at a time claims a content key (every other goes to a staging key)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0013_artifact_details')]

    initial = False

    operations = [
        ops.AddField(
            model_name='DirectUpload',
            name='content_claim',
            field=fields.CharField(null=True, unique=True, max_length=64),
        ),
    ]
