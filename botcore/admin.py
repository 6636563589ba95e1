from django.contrib import admin

from .models import Generation


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "short_prompt", "resolution", "status", "error_code", "cost_usd"]
    list_filter = ["status", "resolution", "kind", "provider", "model", "error_code"]
    search_fields = ["prompt", "user__username", "=user__telegram_id"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    raw_id_fields = ["user"]

    @admin.display(description="prompt")
    def short_prompt(self, obj):
        return obj.prompt[:80]
