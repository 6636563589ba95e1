# DaySummary and SummarizedDay now belong to botcore (its migration 0006 takes them over); their
# tables stay as they are.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("dashboard", "0001_day_summaries"),
        ("botcore", "0006_day_summaries_from_dashboard"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="DaySummary"),
                migrations.DeleteModel(name="SummarizedDay"),
            ],
        ),
    ]
