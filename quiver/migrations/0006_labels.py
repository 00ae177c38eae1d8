"""Labels, samples and annotations become writable; versions snapshot them; dataset metrics.

The label, sample and annotation tables had no writer before, so they are rebuilt."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from quiver.models.enums import LabelKind, SampleStatus
from quiver.models.labels import AnnotationSourceKind
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0005_file_read_options')]

    initial = False

    operations = [
        # The three working tables had no writer before this migration: rebuilt, not altered.
        ops.DeleteModel(name='Annotation'),
        ops.DeleteModel(name='Sample'),
        ops.DeleteModel(name='Label'),
        ops.CreateModel(
            name='Label',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('dataset', fields.ForeignKeyField('models.Dataset', source_field='dataset_id', db_constraint=True, to_field='id', related_name='labels', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=127)),
                ('color', fields.CharField(null=True, max_length=32)),
                ('kind', fields.CharEnumField(default=LabelKind.CLASSIFICATION, description='CLASSIFICATION: CLASSIFICATION\nMULTI_LABEL: MULTI_LABEL\nBOUNDING_BOX: BOUNDING_BOX\nPOLYGON: POLYGON\nKEYPOINTS: KEYPOINTS\nSEGMENTATION_MASK: SEGMENTATION_MASK\nNAMED_ENTITY: NAMED_ENTITY\nTEXT_SPAN: TEXT_SPAN', enum_type=LabelKind, max_length=24)),
                ('attributes', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('parent', fields.ForeignKeyField('models.Label', source_field='parent_id', null=True, db_constraint=True, to_field='id', related_name='children', on_delete=OnDelete.SET_NULL)),
                ('skeleton', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'quiver_label', 'app': 'models', 'unique_together': (('dataset', 'name'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Sample',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('dataset', fields.ForeignKeyField('models.Dataset', source_field='dataset_id', db_constraint=True, to_field='id', related_name='samples', on_delete=OnDelete.CASCADE)),
                ('file', fields.ForeignKeyField('models.DatasetFile', source_field='file_id', db_constraint=True, to_field='id', related_name='samples', on_delete=OnDelete.CASCADE)),
                ('row', fields.BigIntField(null=True)),
                ('status', fields.CharEnumField(default=SampleStatus.UNLABELED, description='UNLABELED: UNLABELED\nLABELED: LABELED\nREVIEWED: REVIEWED\nREJECTED: REJECTED', enum_type=SampleStatus, max_length=16)),
                ('hard_example', fields.BooleanField(default=False)),
                ('metadata', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('width', fields.IntField(null=True)),
                ('height', fields.IntField(null=True)),
                ('revision', fields.IntField(default=1)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'quiver_sample', 'app': 'models', 'indexes': [Index(fields=['dataset_id', 'id']), Index(fields=['dataset_id', 'status']), Index(fields=['dataset_id', 'hard_example']), Index(fields=['file_id', 'row'])], 'pk_attr': 'id', 'table_description': 'A file (or one row of a table file, ``row`` 0-based) and its annotations.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Annotation',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('dataset', fields.ForeignKeyField('models.Dataset', source_field='dataset_id', db_constraint=True, to_field='id', related_name='annotations', on_delete=OnDelete.CASCADE)),
                ('sample', fields.ForeignKeyField('models.Sample', source_field='sample_id', db_constraint=True, to_field='id', related_name='annotations', on_delete=OnDelete.CASCADE)),
                ('label', fields.ForeignKeyField('models.Label', source_field='label_id', db_constraint=True, to_field='id', related_name='annotations', on_delete=OnDelete.CASCADE)),
                ('score', fields.FloatField(null=True)),
                ('geometry', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('attributes', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('source', fields.CharEnumField(default=AnnotationSourceKind.HUMAN, description='HUMAN: HUMAN\nMODEL: MODEL\nIMPORT: IMPORT', enum_type=AnnotationSourceKind, max_length=8)),
                ('model_name', fields.CharField(null=True, max_length=255)),
                ('model_version', fields.CharField(null=True, max_length=255)),
                ('job_id', fields.BigIntField(null=True)),
                ('created_by', fields.ForeignKeyField('models.User', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='annotations', on_delete=OnDelete.SET_NULL)),
                ('revision', fields.IntField(default=1)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'quiver_annotation', 'app': 'models', 'indexes': [Index(fields=['sample_id', 'id']), Index(fields=['label_id', 'sample_id']), Index(fields=['dataset_id', 'label_id', 'sample_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DatasetMetric',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('dataset', fields.ForeignKeyField('models.Dataset', source_field='dataset_id', db_constraint=True, to_field='id', related_name='metrics', on_delete=OnDelete.CASCADE)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('file_count', fields.IntField()),
                ('sample_count', fields.IntField()),
                ('labeled_count', fields.IntField()),
                ('hard_example_count', fields.IntField()),
                ('annotation_count', fields.IntField()),
                ('label_count', fields.IntField()),
            ],
            options={'table': 'quiver_dataset_metric', 'app': 'models', 'indexes': [Index(fields=['dataset_id', 'at'])], 'pk_attr': 'id', 'table_description': "Counts of a dataset at a moment, written whenever one of them changes."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='VersionAnnotation',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('version', fields.ForeignKeyField('models.Version', source_field='version_id', db_constraint=True, to_field='id', related_name='annotations', on_delete=OnDelete.CASCADE)),
                ('annotation_id', fields.BigIntField()),
                ('sample_id', fields.BigIntField()),
                ('label_id', fields.BigIntField()),
                ('score', fields.FloatField(null=True)),
                ('geometry', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('attributes', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('source', fields.CharEnumField(description='HUMAN: HUMAN\nMODEL: MODEL\nIMPORT: IMPORT', enum_type=AnnotationSourceKind, max_length=8)),
                ('model_name', fields.CharField(null=True, max_length=255)),
                ('model_version', fields.CharField(null=True, max_length=255)),
                ('job_id', fields.BigIntField(null=True)),
                ('created_by_id', fields.BigIntField(null=True)),
                ('revision', fields.IntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'quiver_version_annotation', 'app': 'models', 'indexes': [Index(fields=['version_id', 'sample_id', 'annotation_id']), Index(fields=['version_id', 'label_id'])], 'pk_attr': 'id', 'table_description': "An annotation as a version holds it, with the ids of the working rows."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='VersionLabel',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('version', fields.ForeignKeyField('models.Version', source_field='version_id', db_constraint=True, to_field='id', related_name='labels', on_delete=OnDelete.CASCADE)),
                ('label_id', fields.BigIntField()),
                ('name', fields.CharField(max_length=127)),
                ('color', fields.CharField(null=True, max_length=32)),
                ('kind', fields.CharEnumField(description='CLASSIFICATION: CLASSIFICATION\nMULTI_LABEL: MULTI_LABEL\nBOUNDING_BOX: BOUNDING_BOX\nPOLYGON: POLYGON\nKEYPOINTS: KEYPOINTS\nSEGMENTATION_MASK: SEGMENTATION_MASK\nNAMED_ENTITY: NAMED_ENTITY\nTEXT_SPAN: TEXT_SPAN', enum_type=LabelKind, max_length=24)),
                ('attributes', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('parent_id', fields.BigIntField(null=True)),
                ('skeleton', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'quiver_version_label', 'app': 'models', 'unique_together': (('version', 'label_id'),), 'pk_attr': 'id', 'table_description': 'A label as a version holds it (``label_id``: the working label it was).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='VersionSample',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('version', fields.ForeignKeyField('models.Version', source_field='version_id', db_constraint=True, to_field='id', related_name='samples', on_delete=OnDelete.CASCADE)),
                ('sample_id', fields.BigIntField()),
                ('path', fields.CharField(max_length=1024)),
                ('row', fields.BigIntField(null=True)),
                ('status', fields.CharEnumField(description='UNLABELED: UNLABELED\nLABELED: LABELED\nREVIEWED: REVIEWED\nREJECTED: REJECTED', enum_type=SampleStatus, max_length=16)),
                ('hard_example', fields.BooleanField()),
                ('metadata', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('width', fields.IntField(null=True)),
                ('height', fields.IntField(null=True)),
                ('revision', fields.IntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'quiver_version_sample', 'app': 'models', 'unique_together': (('version', 'sample_id'),), 'indexes': [Index(fields=['version_id', 'path'])], 'pk_attr': 'id', 'table_description': 'A sample as a version holds it, tied to its file by path.'},
            bases=['Model'],
        ),
    ]
