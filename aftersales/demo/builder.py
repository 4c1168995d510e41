"""The demo marketplace: two stores with their teams, buyers, products, orders and cases.

Cases are made the way the system makes them, through `create_case`, `transition_case`,
`post_message`, `assign_case` and `rate_case`, each step by the person (or the system, or the
platform's arbiter) who would take it, so the demo shows real timelines and catches a broken service
at once. The state each case should reach is found by walking the transition tables (paths.py).

Loading is all or nothing (one transaction) and happens once: when the demo marketplace exists,
`load_demo_data` changes nothing. Passwords are random, made at load time and kept only in the
git-ignored data directory (DATA_DIR/demo-logins.txt) so that `make run` can show them again.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from aftersales.cases import services as case_services
from aftersales.cases.models import Case, TimelineEntry
from aftersales.cases.states import INITIAL_STATUS, Action, Kind, Status, Transition
from aftersales.catalog.models import Category, Product
from aftersales.core import clock
from aftersales.orders.models import Order, OrderLine, Payment, Shipment
from aftersales.stores import permissions as perm
from aftersales.stores import services as store_services
from aftersales.stores.models import ArbiterMembership, Buyer, Marketplace, PlatformMode, Role, Store
from aftersales.stores.permissions import Actor, arbiter_actor, buyer_actor, staff_actor, system_actor

from .paths import shortest_paths

MARKETPLACE_SLUG = "demo-mall"
ORDERS_PER_STORE = 120
BUYERS_PER_STORE = 15
BUYER_LOGINS_PER_STORE = 2
# Extra cases waiting for the shop's review, so the queues look like a working day and not a museum.
QUEUE_CASES_PER_STORE = 12
LOGINS_FILE = "demo-logins.txt"
API_TOKEN = "api-token"  # the role shown for a store's demo API token in the list of logins


@dataclass(frozen=True)
class ProductSpec:
    sku: str
    name: str
    price: str
    category: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreSpec:
    slug: str
    name: str
    platform_mode: str
    case_prefix: str
    login_prefix: str
    kinds: tuple[str, ...]
    payment_methods: tuple[str, ...]
    carriers: tuple[str, ...]
    products: tuple[ProductSpec, ...]


APPAREL = StoreSpec(
    slug="demo-apparel",
    name="织锦衣妆旗舰店 (apparel & beauty)",
    platform_mode=PlatformMode.TAOBAO,
    case_prefix="TB",
    login_prefix="apparel",
    kinds=(Kind.RETURN_REFUND, Kind.REFUND_ONLY, Kind.EXCHANGE, Kind.COMPLAINT, Kind.INQUIRY),
    payment_methods=("alipay", "alipay", "wechat"),
    carriers=("ZTO", "YTO", "SF"),
    products=(
        ProductSpec("TEE-LINEN-M", "亚麻短袖T恤 M码", "129.00", Category.APPAREL),
        ProductSpec("DRESS-SILK-S", "真丝连衣裙 S码", "699.00", Category.APPAREL),
        ProductSpec("JEANS-32", "直筒牛仔裤 32码", "259.00", Category.APPAREL),
        ProductSpec("SNEAKER-42", "轻跑运动鞋 42码", "399.00", Category.APPAREL),
        ProductSpec("LIPSTICK-R01", "丝绒口红 #R01", "239.00", Category.COSMETICS),
        ProductSpec("CREAM-50ML", "修护面霜 50ml", "480.00", Category.COSMETICS),
        ProductSpec("BOOK-3BODY", "《三体》全集", "168.00", Category.BOOKS),
        ProductSpec("MAG-DUZHE", "《读者》2026年第21期", "8.00", Category.PERIODICALS, {"periodical": True}),
        ProductSpec("CRAB-6", "阳澄湖大闸蟹 6只装", "398.00", Category.FRESH_FOOD, {"perishable": True}),
        ProductSpec("TEE-CUSTOM", "定制印字T恤", "159.00", Category.CUSTOMISED, {"customised": True}),
    ),
)

ELECTRONICS = StoreSpec(
    slug="demo-electronics",
    name="极客数码自营店 (electronics)",
    platform_mode=PlatformMode.JD,
    case_prefix="JD",
    login_prefix="digital",
    kinds=Kind.ALL,
    payment_methods=("wechat", "card", "alipay"),
    carriers=("JD", "SF"),
    products=(
        ProductSpec("PHONE-X12", "星河 X12 手机 256GB", "3999.00", Category.ELECTRONICS,
                    {"sanbao_catalogue": "mobile_phone", "warranty_months": 12}),
        ProductSpec("LAPTOP-14", "轻薄笔记本电脑 14英寸", "5999.00", Category.ELECTRONICS,
                    {"sanbao_catalogue": "computer", "warranty_months": 12}),
        ProductSpec("EARBUDS-P2", "降噪蓝牙耳机", "899.00", Category.ELECTRONICS, {"warranty_months": 12}),
        ProductSpec("COOKER-4L", "智能电饭煲 4L", "599.00", Category.APPLIANCES, {"warranty_months": 12}),
        ProductSpec("SW-OFFICE", "办公软件 盒装版", "398.00", Category.MEDIA, {"sealed_media": True}),
        ProductSpec("BOOK-PYTHON", "《流畅的Python》第2版", "139.00", Category.BOOKS),
        ProductSpec("MAG-PCFAN", "《电脑爱好者》2026年第22期", "12.00", Category.PERIODICALS, {"periodical": True}),
        ProductSpec("CHERRY-2KG", "智利车厘子 2kg", "269.00", Category.FRESH_FOOD, {"perishable": True}),
        ProductSpec("CASE-ENGRAVE", "定制刻字手机壳", "89.00", Category.CUSTOMISED, {"customised": True}),
    ),
)

STORES = (APPAREL, ELECTRONICS)

BUYER_NAMES = ("王芳", "李伟", "张敏", "刘洋", "陈静", "杨磊", "赵丽", "黄强", "周婷", "吴杰", "徐娜", "孙浩",
               "胡军", "朱琳", "高明", "林晓", "何欢", "郭磊", "马超", "罗敏")

# Which goods each kind of request is usually about, and why the buyer asks.
PREFERRED_CATEGORIES = {
    Kind.RETURN_REFUND: (Category.APPAREL, Category.COSMETICS, Category.BOOKS, Category.ELECTRONICS),
    Kind.REFUND_ONLY: (Category.FRESH_FOOD, Category.PERIODICALS, Category.COSMETICS),
    Kind.EXCHANGE: (Category.APPAREL, Category.ELECTRONICS),
    Kind.REPAIR: (Category.ELECTRONICS, Category.APPLIANCES),
}
REASONS = {
    Kind.RETURN_REFUND: ("no_reason", "quality", "not_as_described", "size"),
    Kind.REFUND_ONLY: ("missing_parts", "damaged_in_transit", "late_delivery", "price_drop"),
    Kind.EXCHANGE: ("size", "quality", "wrong_item"),
    Kind.REPAIR: ("quality",),
}
DESCRIPTIONS = {
    "no_reason": "收到后不太喜欢，吊牌还在，申请七天无理由退货。",
    "quality": "用了两天就出现问题，已拍照上传。",
    "not_as_described": "颜色和详情页差别很大。",
    "size": "尺码偏小，想换大一码。",
    "missing_parts": "包裹里少了一件。",
    "damaged_in_transit": "收到时外包装破损，商品压坏了。",
    "late_delivery": "承诺48小时发货，实际一周才发。",
    "price_drop": "买完第二天就降价了，申请价保。",
    "wrong_item": "发错了颜色。",
}
CONVERSATIONS = {
    Kind.COMPLAINT: ("客服回复太慢", "快递员态度差", "发票一直没开", "退款迟迟未到账"),
    Kind.INQUIRY: ("发票怎么开", "会员积分怎么用", "能否指定送货时间", "保修期从哪天算起"),
}


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    role: str
    store: str


@dataclass
class DemoResult:
    created: bool
    logins: list[Login]
    logins_file: Path
    counts: dict[str, int]


def logins_path() -> Path:
    return Path(settings.DATA_DIR) / LOGINS_FILE


def format_logins(logins: Sequence[Login]) -> str:
    headers = ("username", "password", "role", "store")
    rows = [headers, *((x.username, x.password, x.role, x.store) for x in logins)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows) + "\n"


def parse_logins(text: str) -> list[Login]:
    logins = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 4:
            logins.append(Login(parts[0], parts[1], parts[2], " ".join(parts[3:])))
    return logins


def saved_logins() -> list[Login]:
    path = logins_path()
    return parse_logins(path.read_text(encoding="utf-8")) if path.exists() else []


def _save_logins(logins: Sequence[Login]) -> None:
    path = logins_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(format_logins(logins), encoding="utf-8")


def counts() -> dict[str, int]:
    stores = Store.objects.filter(marketplace__slug=MARKETPLACE_SLUG)
    return {
        "stores": stores.count(),
        "products": Product.objects.filter(store__in=stores).count(),
        "buyers": Buyer.objects.filter(store__in=stores).count(),
        "orders": Order.objects.filter(store__in=stores).count(),
        "order_lines": OrderLine.objects.filter(store__in=stores).count(),
        "cases": Case.objects.filter(store__in=stores).count(),
        "timeline_entries": TimelineEntry.objects.filter(store__in=stores).count(),
    }


def load_demo_data(*, seed: int = 1111) -> DemoResult:
    """Builds the demo marketplace unless it exists; returns what is there and the logins known."""
    if Marketplace.objects.filter(slug=MARKETPLACE_SLUG).exists():
        return DemoResult(created=False, logins=saved_logins(), logins_file=logins_path(), counts=counts())
    builder = _Builder(random.Random(seed))
    with transaction.atomic():
        builder.build()
    _save_logins(builder.logins)
    return DemoResult(created=True, logins=builder.logins, logins_file=logins_path(), counts=counts())


def reset_passwords() -> list[Login]:
    """New random passwords for the demo logins, for when the saved list was lost."""
    users = get_user_model().objects
    logins = []
    for login in saved_logins() or _known_logins():
        if login.role == API_TOKEN:
            logins.append(login)  # tokens cannot be re-issued with the same secret; make a new one in the admin
            continue
        user = users.filter(username=login.username).first()
        if user is None:
            continue
        password = _new_password()
        user.set_password(password)
        user.save(update_fields=["password"])
        logins.append(Login(login.username, password, login.role, login.store))
    _save_logins(logins)
    return logins


def _known_logins() -> list[Login]:
    """The demo logins as the builder names them, without passwords."""
    logins = [Login("demo-operator", "", "operator", "-"), Login("mall-arbiter", "", "arbiter", MARKETPLACE_SLUG)]
    for spec in STORES:
        logins += [Login(f"{spec.login_prefix}-{role}", "", role, spec.slug) for role in Role.values]
        logins += [Login(f"{spec.login_prefix}-buyer{n}", "", "buyer", spec.slug)
                   for n in range(1, BUYER_LOGINS_PER_STORE + 1)]
    return logins


def _new_password() -> str:
    # Letters and digits only, so a password copies cleanly from a terminal with a double-click.
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(14))


@dataclass
class _StoreWorld:
    spec: StoreSpec
    store: Store
    staff: dict[str, Actor]
    arbiter: Actor
    buyers: list[Buyer]
    unused_orders: list[Order]
    lines: dict[int, list[OrderLine]]


class _Builder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.now = clock.now()
        self.logins: list[Login] = []
        self._tracking = 0

    # --- people ---------------------------------------------------------------------------------

    def _user(self, username: str, role: str, store: str, **flags: bool) -> Any:
        password = _new_password()
        if flags.get("is_superuser"):
            user = get_user_model().objects.create_superuser(username=username, password=password, email="")
        else:
            user = get_user_model().objects.create_user(username=username, password=password)
        self.logins.append(Login(username, password, role, store))
        return user

    def build(self) -> None:
        # The platform operator signs in to /admin; the shops' own people work in the console and API.
        self._user("demo-operator", "operator", "-", is_superuser=True)
        marketplace = Marketplace.objects.create(name="云集商城 Demo Mall", slug=MARKETPLACE_SLUG)
        arbiter_user = self._user("mall-arbiter", "arbiter", MARKETPLACE_SLUG)
        ArbiterMembership.objects.create(user=arbiter_user, marketplace=marketplace)
        for spec in STORES:
            world = self._store(spec, marketplace, arbiter_user)
            self._orders(world)
            self._cases(world)

    def _store(self, spec: StoreSpec, marketplace: Marketplace, arbiter_user: Any) -> _StoreWorld:
        store = store_services.create_store(
            name=spec.name, slug=spec.slug, timezone="Asia/Shanghai", currency="CNY", platform_mode=spec.platform_mode,
            marketplace=marketplace, case_number_prefix=spec.case_prefix,
        )
        staff = {}
        for role in Role.values:
            username = f"{spec.login_prefix}-{role}"
            password = _new_password()
            user = store_services.create_staff_user(store=store, username=username, password=password, role=role,
                                                    email=f"{username}@example.com")
            self.logins.append(Login(username, password, role, spec.slug))
            staff[role] = staff_actor(store_id=store.pk, user_id=user.pk, role=role, label=username)
        buyers = []
        for n in range(1, BUYERS_PER_STORE + 1):
            name = BUYER_NAMES[(n - 1 + len(spec.slug)) % len(BUYER_NAMES)]
            buyer = store_services.upsert_buyer(
                store=store, external_id=f"{spec.case_prefix}-U{n:04d}", name=name,
                email=f"{spec.login_prefix}.buyer{n}@example.com", phone=f"1380000{n:04d}",
            )
            if n <= BUYER_LOGINS_PER_STORE:
                buyer.user = self._user(f"{spec.login_prefix}-buyer{n}", "buyer", spec.slug)
                buyer.save(update_fields=["user"])
            buyers.append(buyer)
        Product.objects.bulk_create([
            Product(store=store, sku=p.sku, name=p.name, price=Decimal(p.price), category=p.category, **p.attributes)
            for p in spec.products
        ])
        # A token for trying the API from /api/docs; shown with the logins, like them kept only in DATA_DIR.
        _token, raw = store_services.create_api_token(store=store, name="demo", scopes=sorted(perm.TOKEN_SCOPES),
                                                      actor=staff[Role.ADMIN])
        self.logins.append(Login(f"{spec.login_prefix}-token", raw, API_TOKEN, spec.slug))
        arbiter = arbiter_actor(store_id=store.pk, user_id=arbiter_user.pk, label=arbiter_user.username)
        return _StoreWorld(spec, store, staff, arbiter, buyers, [], {})

    # --- orders -----------------------------------------------------------------------------------

    def _orders(self, world: _StoreWorld) -> None:
        """Orders written with the ORM in bulk: they mirror another system, and the importer's job
        (validation of a shop's feed) has nothing to check in data we make ourselves."""
        rng, store, spec = self.rng, world.store, world.spec
        products = list(Product.objects.filter(store=store).order_by("sku"))
        plans = []
        for i in range(ORDERS_PER_STORE):
            signed_at = self.now - dt.timedelta(seconds=rng.uniform(2 * 3600, 30 * 86400))
            placed_at = signed_at - dt.timedelta(hours=rng.uniform(30, 96))
            picked = rng.sample(products, k=rng.choice((1, 1, 1, 2, 2, 3)))
            plans.append((i, world.buyers[i % len(world.buyers)], signed_at, placed_at, picked))
        orders = Order.objects.bulk_create([
            Order(store=store, buyer=buyer, external_id=f"{spec.case_prefix}{placed_at:%Y%m%d}{i:05d}",
                  placed_at=placed_at, currency="CNY", free_shipping_threshold=Decimal("99.00"),
                  channel=spec.platform_mode)
            for i, buyer, _signed, placed_at, _picked in plans
        ])
        lines, payments, shipments = [], [], []
        for order, (i, _buyer, signed_at, placed_at, picked) in zip(orders, plans, strict=True):
            total = Decimal("0")
            for line_no, product in enumerate(picked, start=1):
                quantity = rng.choice((1, 1, 1, 2))
                # Every fifth order used a store coupon, spread over its first line.
                discount = Decimal("10.00") if i % 5 == 0 and line_no == 1 else Decimal("0")
                lines.append(OrderLine(
                    store=store, order=order, line_no=line_no, sku=product.sku, name=product.name, quantity=quantity,
                    unit_price=product.price, discount_allocated=discount, category=product.category,
                    customised=product.customised, perishable=product.perishable,
                    digital_download=product.digital_download, sealed_media=product.sealed_media,
                    periodical=product.periodical, sanbao_catalogue=product.sanbao_catalogue,
                    warranty_months=product.warranty_months,
                ))
                total += product.price * quantity - discount
            shipping_fee = Decimal("0") if total >= Decimal("99") else Decimal("8.00")
            order.shipping_fee, order.total_paid = shipping_fee, total + shipping_fee
            method = spec.payment_methods[i % len(spec.payment_methods)]
            payments.append(Payment(store=store, order=order, method=method, amount=order.total_paid,
                                    reference=f"PAY{placed_at:%Y%m%d}{i:06d}"))
            shipments.append(Shipment(store=store, order=order, carrier=spec.carriers[i % len(spec.carriers)],
                                      tracking_number=self._tracking_number(),
                                      shipped_at=placed_at + dt.timedelta(hours=rng.uniform(4, 20)),
                                      signed_at=signed_at))
        Order.objects.bulk_update(orders, ["shipping_fee", "total_paid"])
        OrderLine.objects.bulk_create(lines)
        Payment.objects.bulk_create(payments)
        Shipment.objects.bulk_create(shipments)
        signed = {s.order_id: s.signed_at or self.now for s in shipments}
        # Requests come mostly about recent deliveries: the newest orders are used first.
        world.unused_orders = sorted(orders, key=lambda o: signed[o.pk], reverse=True)
        for line in OrderLine.objects.filter(store=store).order_by("order_id", "line_no"):
            world.lines.setdefault(line.order_id, []).append(line)

    def _tracking_number(self) -> str:
        self._tracking += 1
        return f"{self.rng.randrange(10**9, 10**10)}{self._tracking:04d}"

    # --- cases ------------------------------------------------------------------------------------

    def _cases(self, world: _StoreWorld) -> None:
        for kind in world.spec.kinds:
            for status, path in sorted(shortest_paths(kind).items()):
                self._case(world, kind, status, path)
        if Kind.REPAIR in world.spec.kinds:
            # 三包: a device that cannot be repaired becomes an exchange or a return (the table's convert rows).
            self._converted(world, Status.DIAGNOSING, "exchange")
            self._converted(world, Status.REPAIRING, "return")
        for n in range(QUEUE_CASES_PER_STORE):
            kind = (Kind.RETURN_REFUND, Kind.REFUND_ONLY, Kind.EXCHANGE)[n % 3]
            self._case(world, kind, Status.PENDING_REVIEW, shortest_paths(kind)[Status.PENDING_REVIEW])

    def _open(self, world: _StoreWorld, kind: str) -> Case:
        n = len(world.unused_orders)
        if kind in Kind.WITH_LINES:
            order, line = self._take_line(world, kind)
            reasons = REASONS[kind]
            reason = reasons[n % len(reasons)]
            buyer = next(b for b in world.buyers if b.pk == order.buyer_id)
            return case_services.create_case(
                actor=self._buyer(buyer), kind=kind, order_id=order.pk, reason_code=reason,
                description=DESCRIPTIONS[reason], channel=("web", "platform", "chat")[n % 3],
                lines=[case_services.LineRequest(order_line_id=line.pk, quantity=1)],
            )
        buyer = world.buyers[n % len(world.buyers)]
        subjects = CONVERSATIONS[kind]
        subject = subjects[n % len(subjects)]
        return case_services.create_case(actor=self._buyer(buyer), kind=kind, subject=subject,
                                         description=f"{subject}？麻烦尽快处理。", channel="chat")

    def _take_line(self, world: _StoreWorld, kind: str) -> tuple[Order, OrderLine]:
        preferred = PREFERRED_CATEGORIES[kind]
        for order in world.unused_orders:
            for line in world.lines[order.pk]:
                if line.category in preferred and (kind != Kind.REPAIR or line.warranty_months > 0):
                    world.unused_orders.remove(order)
                    return order, line
        order = world.unused_orders.pop(0)
        return order, world.lines[order.pk][0]

    def _case(self, world: _StoreWorld, kind: str, status: str, path: list[Transition]) -> Case:
        case = self._open(world, kind)
        if status == INITIAL_STATUS[kind] and case.status != status:
            return self._hold_at_initial(world, case)
        # create_case has already taken the first steps (a request about goods is submitted at once):
        # walk on from where it left the case.
        steps = shortest_paths(kind, case.status).get(status)
        if steps is None:
            raise RuntimeError(f"no way from {case.status} to {status} for {kind}")
        self._converse(world, case, steps)
        for row in steps:
            self._step(world, case, row.action, row.outcome, row.permission)
        if case.status in (Status.CLOSED, Status.RESOLVED) and case.pk % 2 == 0:
            buyer = next(b for b in world.buyers if b.pk == case.buyer_id)
            case_services.rate_case(actor=self._buyer(buyer), case_id=case.pk, rating=self.rng.choice((3, 4, 5, 5)))
        return case

    def _hold_at_initial(self, world: _StoreWorld, case: Case) -> Case:
        # create_case moves a request about goods from `submitted` to review in one transaction, so no
        # service leaves a case resting in `submitted`. The demo puts one there by hand so the screens
        # that list states can be seen with it, and says so on the timeline.
        initial = INITIAL_STATUS[case.kind]
        Case.objects.filter(store=world.store, pk=case.pk).update(status=initial, deadline_at=None, deadline_rule="")
        TimelineEntry.objects.create(
            store=world.store, case=case, at=clock.now(), event="demo_hold", from_status=case.status,
            to_status=initial, actor_kind="system", actor_label="demo-data",
            data={"note": "placed here by the demo data"},
        )
        case.status = initial
        return case

    def _converted(self, world: _StoreWorld, at: str, outcome: str) -> None:
        case = self._case(world, Kind.REPAIR, at, shortest_paths(Kind.REPAIR)[at])
        self._step(world, case, Action.CONVERT, outcome, perm.CASE_REPAIR)

    def _converse(self, world: _StoreWorld, case: Case, steps: list[Transition]) -> None:
        """A message from the buyer, and for cases that got anywhere an agent assigned and replying."""
        buyer = self._buyer(next(b for b in world.buyers if b.pk == case.buyer_id))
        case_services.post_message(actor=buyer, case_id=case.pk, body=case.description or "您好，请帮忙处理。")
        if not steps:
            return
        agent = world.staff[Role.AGENT]
        case_services.assign_case(actor=world.staff[Role.SUPERVISOR], case_id=case.pk, assignee_id=agent.user_id,
                                  rule="demo.round_robin")
        case_services.post_message(actor=agent, case_id=case.pk, body="您好，已收到您的申请，我们会尽快处理。")
        if case.pk % 3 == 0:
            case_services.post_message(actor=agent, case_id=case.pk, body="老客户，优先处理。", visibility="internal")

    def _step(self, world: _StoreWorld, case: Case, action: str, outcome: str | None, permission: str) -> None:
        actor = self._actor_for(world, case, permission)
        moved = case_services.transition_case(actor=actor, case_id=case.pk, action=action, outcome=outcome,
                                              payload=self._payload(world, case, action, outcome),
                                              rule="demo.timeout" if permission == perm.CASE_SYSTEM else "")
        case.status, case.kind = moved.status, moved.kind

    def _actor_for(self, world: _StoreWorld, case: Case, permission: str) -> Actor:
        if permission == perm.CASE_SYSTEM:
            return system_actor(world.store.pk, "system")
        if permission == perm.CASE_BUYER:
            return self._buyer(next(b for b in world.buyers if b.pk == case.buyer_id))
        if permission == perm.CASE_ARBITRATE:
            return world.arbiter
        # The person whose job it is, where the permission is shared (an agent may refund, but finance does).
        preferred = {perm.CASE_REFUND: Role.FINANCE, perm.CASE_WAREHOUSE: Role.WAREHOUSE, perm.CASE_REPAIR: Role.WAREHOUSE,
                     perm.CASE_RESHIP: Role.WAREHOUSE, perm.CASE_REOPEN: Role.SUPERVISOR}.get(permission)
        for role in (preferred, Role.AGENT, Role.WAREHOUSE, Role.FINANCE, Role.SUPERVISOR, Role.ADMIN):
            if role is not None and world.staff[role].can(permission):
                return world.staff[role]
        raise RuntimeError(f"no demo actor holds {permission}")

    def _buyer(self, buyer: Buyer) -> Actor:
        return buyer_actor(store_id=buyer.store_id, buyer_id=buyer.pk, label=buyer.name, user_id=buyer.user_id)

    def _payload(self, world: _StoreWorld, case: Case, action: str, outcome: str | None) -> dict[str, Any]:
        carrier = world.spec.carriers[case.pk % len(world.spec.carriers)]
        if action in (Action.SHIP_RETURN, Action.RESHIP, Action.SHIP_BACK):
            return {"carrier": carrier, "tracking_number": self._tracking_number()}
        if action == Action.REJECT:
            return {"reason": "商品已使用，影响二次销售，不符合退货条件。"}
        if action == Action.COUNTER_OFFER:
            amount = max(Decimal("0.01"), (case_services.claimed_value(case) * Decimal("0.3")).quantize(Decimal("0.01")))
            return {"amount": str(amount), "message": "可以为您部分退款，无需退货，您看可以吗？"}
        if action == Action.QUOTE:
            return {"amount": "350.00", "diagnosis": "主板进液，不在保修范围内。"}
        if action == Action.RECORD_INSPECTION:
            passed = outcome == "passed"
            return {"grade": "A" if passed else "C", "notes": "外观完好，配件齐全。" if passed else "有明显使用痕迹。"}
        return {}
