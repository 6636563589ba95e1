"""Cost reports by day, tier, user, model and resolution, with charts and CSV export."""

urlpatterns = []
