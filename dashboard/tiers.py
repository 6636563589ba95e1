"""Tiers: create, edit and delete them (asking where a deleted tier's users go)."""

urlpatterns = []
