# The day summaries are the generation log's own aggregate: the bot writes them, so they belong to
# botcore. The tables stay where the dashboard app made them; only Django's idea of their app moves.

from django.db import migrations, models

MOVED = ["daysummary", "summarizedday"]


def relabel_content_types(source, target):
    """Their content types (and so their permissions) move too, instead of being made anew."""

    def relabel(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        ContentType.objects.filter(app_label=source, model__in=MOVED).update(app_label=target)

    return relabel


class Migration(migrations.Migration):

    dependencies = [
        ("botcore", "0005_generation_model_turn"),
        ("dashboard", "0001_day_summaries"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SummarizedDay",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("day", models.DateField(unique=True)),
                    ],
                    options={"db_table": "dashboard_summarizedday"},
                ),
                migrations.CreateModel(
                    name="DaySummary",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("day", models.DateField()),
                        ("tier", models.CharField(blank=True, max_length=50)),
                        ("model", models.CharField(blank=True, max_length=100)),
                        ("resolution", models.CharField(blank=True, max_length=2)),
                        ("status", models.CharField(max_length=10)),
                        ("error_code", models.CharField(blank=True, max_length=32)),
                        ("cache_hit", models.BooleanField(default=False)),
                        ("images", models.PositiveIntegerField()),
                        ("spend", models.DecimalField(decimal_places=4, max_digits=14)),
                        ("latency_buckets", models.JSONField(blank=True, default=list)),
                    ],
                    options={
                        "db_table": "dashboard_daysummary",
                        "indexes": [models.Index(fields=["day"], name="dashboard_d_day_a95c58_idx")],
                    },
                ),
            ],
        ),
        migrations.RunPython(relabel_content_types("dashboard", "botcore"), relabel_content_types("botcore", "dashboard")),
    ]
