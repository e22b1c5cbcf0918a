# The Studies list: newest first without a sort of the whole table, the CT dose range,
# and the live refresh's "changed since" (dose/queries.py, dose/views.py).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('dose', '0005_exportjob'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='study',
            index=models.Index(fields=['study_date', 'study_time', 'id'],
                               name='dose_study_newest_idx'),
        ),
        migrations.AddIndex(
            model_name='study',
            index=models.Index(fields=['modality_type', 'dlp_total_mGycm'],
                               name='dose_study_ct_dlp_idx'),
        ),
        migrations.AddIndex(
            model_name='study',
            index=models.Index(fields=['updated_at'], name='dose_study_updated_idx'),
        ),
        # Statistics for the new indexes: without them SQLite takes a new index for very
        # selective and may pick it over the right one (imports 0003 has the example).
        migrations.RunSQL("ANALYZE dose_study", migrations.RunSQL.noop),
    ]
