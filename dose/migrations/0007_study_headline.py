# Each study's headline numbers stored on its row (dose/summary.py), filled here for the
# studies stored before; the indexes are built after the fill.

from typing import Any

from django.db import migrations, models


def fill_headlines(apps: Any, schema_editor: Any) -> None:
    # The current definition (dose/summary.py), not a historical model: the headline is
    # whatever today's rules say, and this runs right after the fields exist.
    from dose import summary

    def progress(done: int, total: int) -> None:
        if total > 20_000:  # a long fill says how far it is
            print(f"  stored the headline of {done:,} of {total:,} studies", flush=True)

    summary.refresh_all(progress)


class Migration(migrations.Migration):

    dependencies = [
        ('dose', '0006_list_indexes'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='study',
            name='dose_study_modalit_955187_idx',
        ),
        migrations.RemoveIndex(
            model_name='study',
            name='dose_study_ct_dlp_idx',
        ),
        migrations.AddField(
            model_name='study',
            name='headline_activity_MBq',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='study',
            name='headline_agd_both_mGy',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='study',
            name='headline_agd_left_mGy',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='study',
            name='headline_agd_right_mGy',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='study',
            name='headline_dap_Gym2',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='study',
            name='headline_dlp_mGycm',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='study',
            name='headline_dose_rp_Gy',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='study',
            name='headline_events',
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name='study',
            name='headline_protocols',
            field=models.TextField(blank=True, default='', help_text="The events' distinct acquisition protocols, one per line: what the Studies page's text search reads."),
        ),
        migrations.RunPython(fill_headlines, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name='study',
            index=models.Index(fields=['modality_type', 'study_date', 'study_time', 'id'], name='dose_study_modality_newest_idx'),
        ),
        migrations.AddIndex(
            model_name='study',
            index=models.Index(fields=['modality_type', 'headline_dlp_mGycm'], name='dose_study_dlp_idx'),
        ),
        migrations.AddIndex(
            model_name='study',
            index=models.Index(fields=['modality_type', 'headline_dap_Gym2'], name='dose_study_dap_idx'),
        ),
        migrations.AddIndex(
            model_name='study',
            index=models.Index(fields=['modality_type', 'headline_activity_MBq'], name='dose_study_activity_idx'),
        ),
        # Statistics for the new indexes (dose 0006 says why).
        migrations.RunSQL("ANALYZE dose_study", migrations.RunSQL.noop),
    ]
