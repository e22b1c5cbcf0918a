from django.db import migrations


def create_row(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("nodes", "DeleteSettings").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("nodes", "0001_initial")]
    operations = [migrations.RunPython(create_row, migrations.RunPython.noop)]
