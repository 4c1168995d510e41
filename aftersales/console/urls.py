from django.urls import path

from . import views

app_name = "console"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("bulk/", views.bulk, name="bulk"),
    path("cases/<int:case_id>/", views.case_page, name="case"),
    path("cases/<int:case_id>/live/", views.case_live, name="live"),
    path("cases/<int:case_id>/act/", views.case_act, name="act"),
    path("cases/<int:case_id>/message/", views.case_message, name="message"),
    path("cases/<int:case_id>/assign/", views.case_assign, name="assign"),
    path("cases/<int:case_id>/attach/", views.case_attach, name="attach"),
    path("cases/<int:case_id>/files/<int:attachment_id>/", views.case_file, name="file"),
    path("warehouse/", views.warehouse, name="warehouse"),
    path("supervisor/", views.supervisor, name="supervisor"),
    path("sla/", views.sla_report, name="sla_report"),
    path("webhooks/", views.webhooks, name="webhooks"),
    path("webhooks/deliveries/<int:delivery_id>/resend/", views.webhook_resend, name="webhook_resend"),
]
