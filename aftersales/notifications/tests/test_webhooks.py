import datetime as dt
import json

import pytest
import time_machine
from django.core import mail

from aftersales.cases import services as case_services
from aftersales.notifications import services
from aftersales.notifications.models import Delivery, DeliveryAttempt, WebhookEndpoint
from aftersales.notifications.providers import webhook
from aftersales.testing import factories as f

T0 = dt.datetime(2026, 11, 11, 0, 0, tzinfo=dt.UTC)


def open_inquiry(store):
    return case_services.create_case(actor=f.buyer_of(f.make_buyer(store)), kind="inquiry", subject="问", description="问题")


def signed_by(secret, headers, body):
    return webhook.verify(secret, headers["X-Aftersales-Signature"], body, now=int(headers["X-Aftersales-Timestamp"]))


def test_an_endpoint_that_fails_three_times_gets_the_event_once_signed(store, admin, receiver_factory,
                                                                          django_capture_on_commit_callbacks):
    receiver, url = receiver_factory([500, 500, 500, 200])
    endpoint = services.create_endpoint(actor=admin, url=url, event_types=["case.created"])
    with time_machine.travel(T0, tick=False) as traveller:
        with django_capture_on_commit_callbacks(execute=True):
            case = open_inquiry(store)
        for wait in (30, 60, 120):  # the longest each backoff can be, jitter included
            traveller.shift(dt.timedelta(seconds=wait))
            services.sweep()
        traveller.shift(dt.timedelta(hours=1))
        services.sweep()  # nothing left to send
    [(headers, body)] = receiver.accepted
    assert len(receiver.requests) == 4
    assert set(receiver.event_ids()) == {headers["X-Aftersales-Event-Id"]}
    assert signed_by(endpoint.secret, headers, body)
    assert json.loads(body)["data"]["case_id"] == case.pk
    delivery = Delivery.objects.get(channel="webhook")
    assert (delivery.status, delivery.attempts) == ("sent", 4)
    assert list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("pk")
                .values_list("response_status", "succeeded")) == [(500, False), (500, False), (500, False), (200, True)]


def test_a_worker_killed_between_send_and_mark_sends_again_with_the_same_event_id(
        store, admin, receiver_factory, monkeypatch, django_capture_on_commit_callbacks):
    receiver, url = receiver_factory([200])
    services.create_endpoint(actor=admin, url=url)

    def die(*args, **kwargs):
        raise SystemExit("worker killed")

    with time_machine.travel(T0, tick=False) as traveller:
        with monkeypatch.context() as patch:
            patch.setattr(services, "_record", die)
            with pytest.raises(SystemExit), django_capture_on_commit_callbacks(execute=True):
                open_inquiry(store)
        assert Delivery.objects.get(channel="webhook").status == "pending"
        services.sweep()  # the lease of the dead worker still holds
        assert len(receiver.requests) == 1
        traveller.shift(dt.timedelta(minutes=5))
        services.sweep()
    first, second = receiver.event_ids()
    assert first == second
    assert Delivery.objects.get(channel="webhook").status == "sent"


def test_during_a_rotation_both_secrets_sign(store, admin, receiver_factory, django_capture_on_commit_callbacks):
    receiver, url = receiver_factory([200])
    old = services.create_endpoint(actor=admin, url=url).secret
    new = services.rotate_secret(actor=admin, endpoint_id=WebhookEndpoint.objects.get().pk).secret
    with django_capture_on_commit_callbacks(execute=True):
        open_inquiry(store)
    [(headers, body)] = receiver.accepted
    assert (signed_by(old, headers, body), signed_by(new, headers, body), signed_by("other", headers, body)) == (
        True, True, False)


def test_after_the_overlap_only_the_new_secret_signs(store, admin, receiver_factory, django_capture_on_commit_callbacks):
    receiver, url = receiver_factory([200])
    old = services.create_endpoint(actor=admin, url=url).secret
    with time_machine.travel(T0, tick=False) as traveller:
        new = services.rotate_secret(actor=admin, endpoint_id=WebhookEndpoint.objects.get().pk,
                                     overlap=dt.timedelta(hours=1)).secret
        traveller.shift(dt.timedelta(hours=2))
        with django_capture_on_commit_callbacks(execute=True):
            open_inquiry(store)
    [(headers, body)] = receiver.accepted
    assert (signed_by(old, headers, body), signed_by(new, headers, body)) == (False, True)


def test_after_24_hours_of_failures_the_endpoint_is_failing_and_the_admin_is_told(
        store, receiver_factory, django_capture_on_commit_callbacks):
    admin_user = f.make_staff(store, "admin")
    admin_user.email = "owner@shop.example"
    admin_user.save()
    admin = f.actor_for_user(admin_user, store)
    _, url = receiver_factory([503])
    endpoint = services.create_endpoint(actor=admin, url=url)
    with time_machine.travel(T0, tick=False) as traveller:
        with django_capture_on_commit_callbacks(execute=True):
            open_inquiry(store)
        for _ in range(30):
            traveller.shift(dt.timedelta(hours=3))
            with django_capture_on_commit_callbacks(execute=True):
                services.sweep()
    delivery = Delivery.objects.get(channel="webhook")
    assert delivery.status == "failed"
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).failing_since is not None
    told = [m for m in mail.outbox if m.to == ["owner@shop.example"]]
    assert [m.subject for m in told] == [f"[{store.name}] webhook.endpoint_failing"]


def test_one_slow_endpoint_does_not_hold_the_others(store, admin, receiver_factory, settings,
                                                     django_capture_on_commit_callbacks):
    settings.AFTERSALES_WEBHOOK_TIMEOUT_SECONDS = 0.5
    import socket
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    services.create_endpoint(actor=admin, url=f"http://127.0.0.1:{silent.getsockname()[1]}/slow")
    receiver, url = receiver_factory([200])
    services.create_endpoint(actor=admin, url=url)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            open_inquiry(store)
    finally:
        silent.close()
    assert len(receiver.accepted) == 1
    assert sorted(Delivery.objects.filter(channel="webhook").values_list("status", "attempts")) == [
        ("pending", 1), ("sent", 1)]


def test_a_manual_resend_delivers_again_with_the_same_event_id(store, admin, receiver_factory,
                                                                django_capture_on_commit_callbacks):
    receiver, url = receiver_factory([200])
    services.create_endpoint(actor=admin, url=url)
    with django_capture_on_commit_callbacks(execute=True):
        open_inquiry(store)
    delivery = Delivery.objects.get(channel="webhook")
    with django_capture_on_commit_callbacks(execute=True):
        services.resend_delivery(actor=admin, delivery_id=delivery.pk)
    assert receiver.event_ids() == [str(delivery.event_id)] * 2


def test_only_a_store_admin_manages_endpoints(store):
    from aftersales.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.create_endpoint(actor=f.staff(store, "agent"), url="https://example.com/hook")
    assert WebhookEndpoint.objects.count() == 0


def test_an_endpoint_only_gets_the_events_it_subscribed_to(store, admin, receiver_factory,
                                                            django_capture_on_commit_callbacks):
    receiver, url = receiver_factory([200])
    services.create_endpoint(actor=admin, url=url, event_types=["case.refunded"])
    with django_capture_on_commit_callbacks(execute=True):
        open_inquiry(store)
    assert receiver.requests == []


def test_backoff_doubles_with_jitter_and_is_capped():
    assert [services.backoff(n, rng=lambda: 1.0).total_seconds() for n in (1, 2, 3, 10, 20)] == [
        30.0, 60.0, 120.0, 10800.0, 10800.0]
    assert services.backoff(3, rng=lambda: 0.0).total_seconds() == 60.0
