"""The staff JSON API at /api/ (docs at /api/docs, for signed-in staff).

Authentication, tried in this order:
- an API token (`manage.py create_api_token`): `Authorization: Bearer <key>` or `X-API-Key: <key>`;
- the dashboard's session cookie, with Django's CSRF check on unsafe methods (X-CSRFToken header).
No credentials, or a key we don't know: 401. A valid token or session of anyone but active staff: 403.
"""

from django.utils import timezone
from ninja import NinjaAPI
from ninja.errors import AuthorizationError
from ninja.security import APIKeyHeader, HttpBearer, SessionAuth

from accounts.api import invalid, keywords
from accounts.api import router as accounts_router
from accounts.models import ApiToken, hash_key
from accounts.staff import StaffError
from botcore.api import router as botcore_router
from dashboard.access import staff_required
from dashboard.api import router as dashboard_router
from dashboard.payments_api import router as payments_router


def staff_or_403(user):
    if not user.is_staff:
        raise AuthorizationError(message="Staff only.")
    return user


def token_user(key):
    """The token's user (active staff), noting the token's use; None for an unknown key."""
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_key(key or "")).first()
    if token is None or not token.user.is_active:
        return None
    staff_or_403(token.user)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user


class BearerToken(HttpBearer):
    def authenticate(self, request, token):
        return token_user(token)


class HeaderToken(APIKeyHeader):
    param_name = "X-API-Key"

    def authenticate(self, request, key):
        return token_user(key)


class StaffSession(SessionAuth):
    """ninja's django_auth (CSRF checked), for staff. Anonymous requests are passed over before the
    CSRF check, so they read 401 rather than 403."""

    def __call__(self, request):
        return super().__call__(request) if request.user.is_authenticated else None

    def authenticate(self, request, key):
        user = super().authenticate(request, key)
        return staff_or_403(user) if user else None


api = NinjaAPI(
    title="NanoBot API",
    version="1",
    description=__doc__,
    urls_namespace="api",
    auth=[BearerToken(), HeaderToken(), StaffSession(csrf=True)],
    docs_decorator=staff_required,
)


@api.exception_handler(StaffError)
def staff_refusal(request, refusal):
    """A staff service's refusal: 422, shaped like a schema error, naming the field at fault."""
    return api.on_exception(request, invalid(refusal.field or "__all__", str(refusal)))


api.add_router("/", accounts_router)
api.add_router("/", keywords)
api.add_router("/", botcore_router)
api.add_router("/", dashboard_router)
api.add_router("/", payments_router)
