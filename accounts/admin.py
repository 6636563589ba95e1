from django.contrib import admin

from .models import ApiToken, AuditEntry, Ban, BannedKeyword, LedgerEntry, Payment, QuotaUsage, TelegramUser, Tier


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ["name", "daily_limit", "max_resolution", "cooldown_seconds", "max_concurrent_jobs", "is_default"]


class BanInline(admin.TabularInline):
    model = Ban
    fk_name = "user"
    extra = 0
    fields = ["reason", "expires_at", "lifted_at", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]


@admin.register(TelegramUser)
class TelegramUserAdmin(admin.ModelAdmin):
    list_display = ["telegram_id", "username", "first_name", "tier", "is_active", "last_seen_at"]
    list_filter = ["tier", "is_active", "language_code"]
    search_fields = ["=telegram_id", "username", "first_name"]
    list_select_related = ["tier"]
    inlines = [BanInline]


@admin.register(Ban)
class BanAdmin(admin.ModelAdmin):
    list_display = ["user", "reason", "created_at", "expires_at", "lifted_at"]
    list_filter = ["lifted_at"]
    search_fields = ["user__username", "=user__telegram_id", "reason"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_by", "lifted_by"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(BannedKeyword)
class BannedKeywordAdmin(admin.ModelAdmin):
    list_display = ["phrase", "is_active", "note", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["phrase", "note"]


@admin.register(QuotaUsage)
class QuotaUsageAdmin(admin.ModelAdmin):
    list_display = ["user", "day", "used", "reserved"]
    list_filter = ["day"]
    search_fields = ["user__username", "=user__telegram_id"]
    raw_id_fields = ["user"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by their services (the audit log, money): read only, for superusers too. An
    edit here would bypass what keeps them right (a payment's credits, the ledger's kept sum)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_name", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor_name", "target"]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["paid_at", "user", "pack_name", "stars", "images", "status"]
    list_filter = ["status"]
    search_fields = ["=charge_id", "=user__telegram_id", "user__username"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "user", "kind", "images", "state"]
    list_filter = ["kind", "state"]
    search_fields = ["=user__telegram_id", "user__username"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "name", "created_at", "last_used_at"]
    exclude = ["key_hash"]
