"""The generation log: filters, and one generation in detail with its image."""

urlpatterns = []
