# The Imports list: failures first and its filters as backward scans of
# (column, created_at, id) indexes; deep pages found in an index; the latest retry of a
# page's files by path.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('imports', '0001_initial'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='importrecord',
            name='imports_imp_outcome_0c1666_idx',
        ),
        migrations.AddIndex(
            model_name='importrecord',
            index=models.Index(fields=['outcome', 'created_at', 'id'], name='imports_outcome_idx'),
        ),
        migrations.AddIndex(
            model_name='importrecord',
            index=models.Index(fields=['kind', 'created_at', 'id'], name='imports_kind_idx'),
        ),
        migrations.AddIndex(
            model_name='importrecord',
            index=models.Index(fields=['store_node', 'created_at', 'id'], name='imports_node_idx'),
        ),
        migrations.AddIndex(
            model_name='importrecord',
            index=models.Index(fields=['created_at', 'id', 'outcome'], name='imports_newest_idx'),
        ),
        migrations.AddIndex(
            model_name='importrecord',
            index=models.Index(fields=['path'], name='imports_path_idx'),
        ),
    ]
