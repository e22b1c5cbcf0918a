# The Imports list's failed count within a kind or a store node, from an index alone
# (outcome first, so that the newest-first lists keep their (kind|node, created_at) indexes).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('imports', '0002_list_indexes'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='importrecord',
            index=models.Index(fields=['outcome', 'kind'], name='imports_outcome_kind_idx'),
        ),
        migrations.AddIndex(
            model_name='importrecord',
            index=models.Index(fields=['outcome', 'store_node'],
                               name='imports_outcome_node_idx'),
        ),
        # Statistics for the new indexes: without them SQLite takes a new index for very
        # selective and chose (outcome, store_node) plus a sort of 1,000,000 rows for the
        # failed slice of the Imports list (0.4 s) over (outcome, created_at, id) (1 ms).
        migrations.RunSQL("ANALYZE imports_importrecord", migrations.RunSQL.noop),
    ]
