"""Base models and querysets shared by every domain app.

A store-scoped model carries its `store` itself (not only through a parent) so that every query can
name the store directly and use an index that starts with it: that is how isolation is enforced
cheaply and how the tables could later be distributed by store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models

if TYPE_CHECKING:
    from aftersales.stores.models import Store

M = TypeVar("M", bound=models.Model)


class StoreScopedQuerySet(models.QuerySet[M]):
    def for_store(self, store: Store | int) -> StoreScopedQuerySet[M]:
        store_id = store if isinstance(store, int) else store.pk
        return self.filter(store_id=store_id)


class StoreScopedModel(models.Model):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")

    objects: Any = StoreScopedQuerySet.as_manager()

    class Meta:
        abstract = True


class IdempotencyRecord(models.Model):
    """The stored answer to a POST made with an Idempotency-Key, per caller (token or user).

    The unique constraint is what makes a concurrent retry safe: the second insert waits for the first
    transaction and then fails, and the caller replays the stored answer instead of acting twice.
    """

    principal = models.CharField(max_length=80)
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["principal", "key"], name="idempotency_unique_key")]
        # The hourly purge deletes by age: a range scan, not a walk of every key kept for a day.
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_at")]
