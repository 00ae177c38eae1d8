"""External entities belong to a team: (team, kind, externalId) names one, so no tenant can
overwrite another's. Entities recorded before have no team (and nobody can change them)."""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.migrations.constraints import UniqueConstraint

# SQLite cannot drop a UNIQUE written inside CREATE TABLE: the table is rebuilt without it.
_SQLITE_REBUILD = """
CREATE TABLE "quiver_external_entity_rebuilt" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "kind" VARCHAR(16) NOT NULL,
    "external_id" VARCHAR(255) NOT NULL,
    "name" VARCHAR(255),
    "attributes" JSON,
    "created_at" TIMESTAMP NOT NULL
);
INSERT INTO "quiver_external_entity_rebuilt" (id, kind, external_id, name, attributes, created_at)
    SELECT id, kind, external_id, name, attributes, created_at FROM "quiver_external_entity";
DROP TABLE "quiver_external_entity";
ALTER TABLE "quiver_external_entity_rebuilt" RENAME TO "quiver_external_entity";
"""
_POSTGRES_DROP = (
    'ALTER TABLE "quiver_external_entity" DROP CONSTRAINT "uid_quiver_exte_kind_64667a"'
)


class RemoveGlobalKindExternalIdUnique(ops.RemoveConstraint):
    async def database_forward(
        self, app_label: str, old_state: Any, new_state: Any, state_editor: Any = None
    ) -> None:
        if state_editor is None:
            return
        client = state_editor.client
        if client.capabilities.dialect == "sqlite":
            await client.execute_script(_SQLITE_REBUILD)
        else:
            await client.execute_script(_POSTGRES_DROP)


class Migration(migrations.Migration):
    dependencies = [('models', '0008_transfers')]

    initial = False

    operations = [
        RemoveGlobalKindExternalIdUnique(
            model_name='ExternalEntity',
            name=None,
            fields=['kind', 'external_id'],
        ),
        ops.AddField(
            model_name='ExternalEntity',
            name='owner_team',
            field=fields.ForeignKeyField('models.Team', source_field='owner_team_id', null=True, db_constraint=True, to_field='id', related_name='external_entities', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddConstraint(
            model_name='ExternalEntity',
            constraint=UniqueConstraint(fields=('owner_team', 'kind', 'external_id'), name=None),
        ),
    ]
