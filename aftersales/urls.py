from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from django.views.i18n import set_language

from aftersales.api import api, unknown_api_path

urlpatterns = [
    path("", RedirectView.as_view(url="/accounts/home/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    re_path(r"^api/(?P<rest>.*)$", unknown_api_path),
    path("i18n/setlang/", set_language, name="set_language"),
    path("accounts/", include("aftersales.portal.account_urls")),
    path("console/", include("aftersales.console.urls")),
    path("portal/", include("aftersales.portal.urls")),
]
