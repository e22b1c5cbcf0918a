from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("dose", "0002_study_from_report"),
    ]

    operations = [
        migrations.AddField(
            model_name="irradiationevent",
            name="laterality_code",
            field=models.CharField(
                blank=True, default="", help_text="L, R or B (both), whatever the source",
                max_length=1,
            ),
        ),
    ]
