"""Record how patient identity was hashed; mark the plain SHA-256 digests stored so far.

Nothing is re-keyed: the original values are gone, so studies imported before the site key
keep their SHA-256 digests, marked "sha256", and do not match the HMAC hashes of new
imports of the same patient.
"""

from django.db import migrations, models
from django.db.models import Q

HEX64 = r"^[0-9a-f]{64}$"


def mark_plain_hashes(apps, schema_editor):
    Study = apps.get_model("dose", "Study")
    hashed = (
        Q(patient_id__regex=HEX64) | Q(patient_name__regex=HEX64)
        | Q(patient_birth_date__regex=HEX64)
    )
    Study.objects.filter(hashed).update(identity_hash="sha256")


class Migration(migrations.Migration):

    dependencies = [
        ("dose", "0003_vocabulary"),
    ]

    operations = [
        migrations.AddField(
            model_name="study",
            name="identity_hash",
            field=models.CharField(
                blank=True, default="", max_length=16,
                choices=[
                    ("", "none"), ("sha256", "SHA-256 (unkeyed, older imports)"),
                    ("hmac-sha256", "HMAC-SHA-256 with the site key"),
                ],
            ),
        ),
        migrations.RunPython(mark_plain_hashes, migrations.RunPython.noop),
    ]
