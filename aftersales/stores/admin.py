"""Back-office configuration of stores, people and tokens, for the platform's operators (superusers).

A token is made through `create_api_token`, never by saving a form: the plaintext exists only in the
message shown once after it is created, and only its hash is stored.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import ApiToken, ArbiterMembership, Buyer, Marketplace, Membership, Store
from .permissions import TOKEN_SCOPES, system_actor
from .services import create_api_token, revoke_api_token


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)
    fields = ("user", "role", "is_away", "created_at")
    readonly_fields = ("created_at",)


@admin.register(Marketplace)
class MarketplaceAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(ArbiterMembership)
class ArbiterMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "marketplace")
    list_filter = ("marketplace",)
    autocomplete_fields = ("user",)


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "platform_mode", "marketplace", "jurisdiction", "timezone", "currency", "created_at")
    list_filter = ("platform_mode", "jurisdiction", "marketplace")
    search_fields = ("name", "slug")
    inlines = (MembershipInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Store | None = None) -> tuple[str, ...]:
        # The slug names the store in URLs, headers and tokens' owners' integrations: fixed once made.
        return ("slug", "created_at") if obj is not None else ("created_at",)

    def save_model(self, request: HttpRequest, obj: Store, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        # A new store gets its default reason codes from the service, as any other new store does.
        from .services import create_store

        fields = {f: form.cleaned_data[f] for f in form.cleaned_data if f not in ("name", "slug")}
        created = create_store(name=form.cleaned_data["name"], slug=form.cleaned_data["slug"], **fields)
        obj.pk, obj.created_at = created.pk, created.created_at
        obj._state.adding = False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "store", "role", "is_away", "created_at")
    list_filter = ("store", "role", "is_away")
    search_fields = ("user__username", "store__slug")
    autocomplete_fields = ("user",)


@admin.register(Buyer)
class BuyerAdmin(admin.ModelAdmin):
    list_display = ("external_id", "name", "store", "tier", "email", "phone", "user")
    list_filter = ("store", "tier")
    search_fields = ("external_id", "name", "email", "phone")
    autocomplete_fields = ("user",)
    list_select_related = ("store", "user")


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in TOKEN_SCOPES], widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = ApiToken
        fields = ("store", "name", "scopes")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ("name", "store", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    list_filter = ("store", "revoked_at")
    search_fields = ("name", "prefix")
    actions = ("revoke",)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        # A token's rights are fixed when it is handed out; to change them, make a new one and revoke this.
        return ("store", "scopes", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:  # type: ignore[override]
        if obj is None:
            return ["store", "name", "scopes"]
        return ["store", "name", "scopes", "prefix", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        token, raw = create_api_token(store=form.cleaned_data["store"], name=form.cleaned_data["name"],
                                      scopes=list(form.cleaned_data["scopes"]))
        # The admin goes on with `obj` (its change log, its redirect): make it the row the service wrote.
        for field in ("pk", "prefix", "secret_hash", "scopes", "created_at"):
            setattr(obj, field, getattr(token, field))
        obj._state.adding = False
        messages.warning(request, f"The token is {raw} — copy it now: it is shown only this once and cannot be "
                                  "recovered. Send it as: Authorization: Bearer <token>")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            revoke_api_token(token=token, actor=system_actor(token.store_id, f"admin:{request.user}"))
            count += 1
        self.message_user(request, f"{count} token(s) revoked.")

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        # Revoked, not deleted: the row keeps what a token was and when it stopped working.
        return False
