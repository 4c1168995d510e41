"""Bad facts are refused with a code and the dotted path of the field to fix."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from aftersales.policies.engine import evaluate
from aftersales.policies.facts import FactsError, facts_from_dict
from aftersales.policies.tests import facts, order, request

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str = "cn_taobao_apparel_no_reason.json") -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def broken(change) -> dict[str, Any]:
    data = copy.deepcopy(example())
    change(data)
    return data


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_examples_parse_and_evaluate(name: str) -> None:
    decision = evaluate(facts_from_dict(example(name)))

    assert decision.requested_open


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param(lambda d: d["order"]["lines"][1].update(unit_price="-1.00"), "order.lines[1].unit_price", id="negative-price"),
        pytest.param(lambda d: d["order"]["lines"][0].update(category="spaceship"), "order.lines[0].category", id="unknown-category"),
        pytest.param(lambda d: d["request"]["lines"][0].update(quantity=2), "request.lines[0].quantity", id="more-than-ordered"),
        pytest.param(lambda d: d["request"]["lines"][0].update(line_id="NOPE"), "request.lines[0].line_id", id="unknown-line"),
        pytest.param(lambda d: d["request"].update(kind="teleport"), "request.kind", id="unknown-kind"),
        pytest.param(lambda d: d["request"].update(reason="bored"), "request.reason", id="unknown-reason"),
        pytest.param(lambda d: d["order"].pop("signed_at"), "order.signed_at", id="missing-signing-time"),
        pytest.param(lambda d: d["request"].update(notice_at="2026-03-05T10:00:00"), "request.notice_at", id="naive-datetime"),
        pytest.param(lambda d: d["request"].update(notice_at="next tuesday"), "request.notice_at", id="not-a-datetime"),
        pytest.param(lambda d: d["order"]["payments"][0].update(amount="1.00"), "order.payments", id="payments-do-not-add-up"),
        pytest.param(lambda d: d["order"]["payments"][0].update(amount=True), "order.payments[0].amount", id="bool-is-not-money"),
        pytest.param(lambda d: d["order"].update(singed_at="2026-03-01T10:00:00+08:00"), "order.singed_at", id="typo-field"),
        pytest.param(lambda d: d["store"].update(timezone="Mars/Olympus"), "store.timezone", id="unknown-time-zone"),
        pytest.param(lambda d: d["store"].update(jurisdiction="XX"), "store.jurisdiction", id="unknown-jurisdiction"),
        pytest.param(lambda d: d["order"]["lines"][0].update(quantity=0), "order.lines[0].quantity", id="zero-quantity"),
        pytest.param(lambda d: d["order"]["lines"][0].update(unit_price="abc"), "order.lines[0].unit_price", id="not-a-decimal"),
        pytest.param(lambda d: d.pop("request"), "request", id="missing-request"),
        pytest.param(lambda d: d["request"]["goods"].update(seal_broken="yes"), "request.goods.seal_broken", id="not-a-bool"),
    ],
)
def test_bad_facts_name_the_field(change, field: str) -> None:
    with pytest.raises(FactsError) as caught:
        facts_from_dict(broken(change))

    assert caught.value.code == "invalid_facts"
    assert caught.value.field == field
    assert caught.value.message


def test_facts_built_in_code_are_checked_by_evaluate_too() -> None:
    with pytest.raises(FactsError) as caught:
        evaluate(facts(order(signed_at=None), request()))

    assert caught.value.field == "order.signed_at"
    assert caught.value.as_dict()["code"] == "invalid_facts"


def test_the_root_must_be_an_object() -> None:
    with pytest.raises(FactsError) as caught:
        facts_from_dict([])  # type: ignore[arg-type]

    assert caught.value.field == "facts"


def test_float_amounts_keep_their_decimal_meaning() -> None:
    data = example()
    data["order"]["lines"][1]["unit_price"] = 99.0

    parsed = facts_from_dict(data)

    assert str(parsed.order.lines[1].unit_price) == "99.0"
