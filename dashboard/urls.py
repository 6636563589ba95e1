from django.urls import path

from . import (
    analytics,
    audit,
    broadcasts,
    costs,
    generations,
    moderation,
    packs,
    payments,
    thumbnails,
    tiers,
    users,
    views,
)

app_name = "dashboard"
urlpatterns = [
    path("", views.overview, name="overview"),
    *users.urlpatterns,
    *tiers.urlpatterns,
    *moderation.urlpatterns,
    *generations.urlpatterns,
    *thumbnails.urlpatterns,
    *costs.urlpatterns,
    *payments.urlpatterns,
    *packs.urlpatterns,
    *analytics.urlpatterns,
    *broadcasts.urlpatterns,
    *audit.urlpatterns,
]
