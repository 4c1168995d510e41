from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.portal_home, name="home"),
    path("guest/", views.guest_start, name="guest"),
    path("guest/code/", views.guest_verify, name="guest_verify"),
    path("guest/leave/", views.guest_leave, name="guest_leave"),
    path("contact/", views.contact_form, name="contact"),
    path("orders/<int:order_id>/", views.order_page, name="order"),
    path("orders/<int:order_id>/request/", views.request_form, name="request"),
    path("orders/<int:order_id>/preview/", views.request_preview, name="preview"),
    path("cases/<int:case_id>/", views.case_page, name="case"),
    path("cases/<int:case_id>/live/", views.case_live, name="live"),
    path("cases/<int:case_id>/act/", views.case_act, name="act"),
    path("cases/<int:case_id>/return/", views.case_return, name="return"),
    path("cases/<int:case_id>/message/", views.case_message, name="message"),
    path("cases/<int:case_id>/rate/", views.case_rate, name="rate"),
    path("cases/<int:case_id>/files/<int:attachment_id>/", views.case_file, name="file"),
]
