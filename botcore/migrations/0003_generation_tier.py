from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def tiers_of_today(apps, schema_editor):
    """Earlier generations get their user's tier now: the best guess, and what reports showed before."""
    Generation = apps.get_model("botcore", "Generation")
    TelegramUser = apps.get_model("accounts", "TelegramUser")
    tier = TelegramUser.objects.filter(pk=OuterRef("user_id")).values("tier__name")[:1]
    Generation.objects.update(tier=Subquery(tier))


class Migration(migrations.Migration):
    dependencies = [
        ("botcore", "0002_inputs_results_cache"),
    ]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="tier",
            field=models.CharField(blank=True, max_length=50),
        ),
        migrations.RunPython(tiers_of_today, migrations.RunPython.noop, elidable=True),
    ]
