"""Users: search, filter and page through them; one user's usage and the actions on them."""

urlpatterns = []
