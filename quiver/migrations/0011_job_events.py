"""A log of every committed job change (``quiver_job_event``), so ``jobProgress`` replays each
state after ``afterSeq`` instead of only the latest one. Triggers write it in the statement that
changes the job (its INSERT, and every UPDATE that moves ``seq``), on both engines; jobs that
existed before have no log and are replayed from their row. Stored job results remember when
they were last reused, so ``quiver gc`` forgets them a retention after that."""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from quiver.models.enums import JobStatus
from tortoise.fields.base import OnDelete
from tortoise import fields

_SQLITE_TRIGGERS = """
CREATE TRIGGER quiver_job_event_on_insert AFTER INSERT ON quiver_job
BEGIN
    INSERT INTO quiver_job_event (job_id, seq, status, attempt, progress, message, detail, at)
    VALUES (NEW.id, NEW.seq, NEW.status, NEW.attempt, NEW.progress, NEW.message,
            NEW.progress_detail, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'));
END;
CREATE TRIGGER quiver_job_event_on_update AFTER UPDATE OF seq ON quiver_job
WHEN NEW.seq <> OLD.seq
BEGIN
    INSERT OR IGNORE INTO quiver_job_event
        (job_id, seq, status, attempt, progress, message, detail, at)
    VALUES (NEW.id, NEW.seq, NEW.status, NEW.attempt, NEW.progress, NEW.message,
            NEW.progress_detail, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'));
END;
"""
_POSTGRES_TRIGGERS = """
CREATE OR REPLACE FUNCTION quiver_job_event_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.seq IS DISTINCT FROM OLD.seq THEN
        INSERT INTO quiver_job_event (job_id, seq, status, attempt, progress, message, detail, at)
        VALUES (NEW.id, NEW.seq, NEW.status, NEW.attempt, NEW.progress, NEW.message,
                NEW.progress_detail, clock_timestamp())
        ON CONFLICT (job_id, seq) DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER quiver_job_event_log AFTER INSERT OR UPDATE ON quiver_job
    FOR EACH ROW EXECUTE FUNCTION quiver_job_event_log();
"""


class LogJobChanges(ops.RunSQL):
    """The triggers, in each engine's dialect."""

    def __init__(self) -> None:
        super().__init__(_SQLITE_TRIGGERS)

    async def database_forward(
        self, app_label: str, old_state: Any, new_state: Any, state_editor: Any = None
    ) -> None:
        if state_editor is None:
            return
        client = state_editor.client
        if client.capabilities.dialect == "sqlite":
            await client.execute_script(_SQLITE_TRIGGERS)
        else:
            await client.execute_script(_POSTGRES_TRIGGERS)


class Migration(migrations.Migration):
    dependencies = [('models', '0010_verify_upload_job')]

    initial = False

    operations = [
        ops.CreateModel(
            name='JobEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('job', fields.ForeignKeyField('models.Job', source_field='job_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.CASCADE)),
                ('seq', fields.IntField()),
                ('status', fields.CharEnumField(description='PENDING: PENDING\nRUNNING: RUNNING\nCANCELLING: CANCELLING\nSUCCEEDED: SUCCEEDED\nFAILED: FAILED\nCANCELLED: CANCELLED', enum_type=JobStatus, max_length=16)),
                ('attempt', fields.IntField(default=0)),
                ('progress', fields.FloatField(default=0.0)),
                ('message', fields.TextField(null=True, unique=False)),
                ('detail', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'quiver_job_event', 'app': 'models', 'unique_together': (('job', 'seq'),), 'pk_attr': 'id', 'table_description': 'One committed change of a job (``seq``), as it was: the log ``jobProgress`` replays'},
            bases=['Model'],
        ),
        LogJobChanges(),
        ops.AddField(
            model_name='JobArtifact',
            name='used_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
