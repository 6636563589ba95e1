from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def audience_of_earlier_broadcasts(apps, schema_editor):
    Broadcast = apps.get_model("accounts", "Broadcast")
    Tier = apps.get_model("accounts", "Tier")
    name = Tier.objects.filter(pk=OuterRef("tier_id")).values("name")[:1]
    Broadcast.objects.filter(tier__isnull=False).update(audience=Subquery(name))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_broadcasts"),
    ]

    operations = [
        migrations.AddField(
            model_name="broadcast",
            name="audience",
            field=models.CharField(blank=True, max_length=50),
        ),
        migrations.RunPython(audience_of_earlier_broadcasts, migrations.RunPython.noop, elidable=True),
    ]
