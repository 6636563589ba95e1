from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from botcore.views import healthz, scrape, webhook
from nanobot_site.api import api

urlpatterns = [
    path("", include("dashboard.urls")),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("telegram/webhook/", webhook, name="telegram-webhook"),
    path("healthz", healthz, name="healthz"),
    path("metrics", scrape, name="metrics"),
]
