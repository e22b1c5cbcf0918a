# The Imports list's failed count within a kind or a store node, from an index alone.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('imports', '0002_list_indexes'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='importrecord',
            index=models.Index(fields=['kind', 'outcome'], name='imports_kind_outcome_idx'),
        ),
        migrations.AddIndex(
            model_name='importrecord',
            index=models.Index(fields=['store_node', 'outcome'],
                               name='imports_node_outcome_idx'),
        ),
    ]
