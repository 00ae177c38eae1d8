from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    """A team cannot hold two active datasets of one name (a partial index both engines know)."""

    dependencies = [("models", "0001_initial")]

    operations = [
        ops.RunSQL(
            "CREATE UNIQUE INDEX uniq_quiver_dataset_active_name "
            "ON quiver_dataset (owner_team_id, name) WHERE deleted_at IS NULL",
            reverse_sql="DROP INDEX uniq_quiver_dataset_active_name",
        ),
    ]
