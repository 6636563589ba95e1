"""Banned keywords (with a box to test a prompt against them) and bans."""

urlpatterns = []
