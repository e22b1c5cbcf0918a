# A failed record's retry is claimed with one conditional UPDATE (issue 14, "claims").

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('imports', '0003_outcome_count_indexes'),
    ]

    operations = [
        migrations.AddField(
            model_name='importrecord',
            name='retry_state',
            field=models.CharField(blank=True, choices=[('', 'not retried'), ('queued', 'retry queued'), ('started', 'retry started')], default='', max_length=8),
        ),
    ]
