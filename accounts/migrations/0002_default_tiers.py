from django.db import migrations

TIERS = [
    # name, images per day (None = unlimited), highest resolution, concurrent jobs, default
    ("free", 5, "2K", 1, True),
    ("premium", 50, "4K", 3, False),
    ("enterprise", None, "4K", 5, False),
]


def create_tiers(apps, schema_editor):
    Tier = apps.get_model("accounts", "Tier")
    for name, limit, resolution, concurrent, default in TIERS:
        Tier.objects.get_or_create(
            name=name,
            defaults={
                "daily_limit": limit,
                "max_resolution": resolution,
                "max_concurrent_jobs": concurrent,
                "is_default": default,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create_tiers, migrations.RunPython.noop)]
