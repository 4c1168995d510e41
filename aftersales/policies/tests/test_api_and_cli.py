"""The HTTP handler and the CLI around the engine. No database: the endpoint is stateless."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from aftersales.policies.cli import evaluate_file, main
from aftersales.policies.schemas import EVALUATE_EXAMPLE, DecisionOut, FactsIn
from aftersales.stores.services import create_api_token
from aftersales.testing import factories as f

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
URL = "/api/v1/policy/evaluate"


def _post(client, facts, scopes=("policy:evaluate",)):
    _, raw = create_api_token(store=f.make_store(), name="shop site", scopes=list(scopes))
    return client.post(URL, data=json.dumps(facts), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.mark.django_db
def test_endpoint_returns_the_decision_for_the_documented_example(client) -> None:
    response = _post(client, EVALUATE_EXAMPLE)

    assert response.status_code == 200
    body = response.json()
    assert body["requested_open"] is True
    assert body["refund"]["amount"] == "249.00"  # S3 Art 17(2) settlement of the broken 满减
    assert DecisionOut.model_validate(body).refund.amount == "249.00"


@pytest.mark.django_db
def test_endpoint_turns_bad_facts_into_a_422_naming_the_field(client) -> None:
    bad = copy.deepcopy(EVALUATE_EXAMPLE)
    bad["order"]["lines"][1]["unit_price"] = "-1.00"

    response = _post(client, bad)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_facts"
    assert response.json()["details"] == {"field": "order.lines[1].unit_price"}


@pytest.mark.django_db
def test_a_token_without_the_policy_scope_is_refused(client) -> None:
    response = _post(client, EVALUATE_EXAMPLE, scopes=("cases:read",))

    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_every_example_fits_the_request_and_response_schemas(client, name: str) -> None:
    data = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    FactsIn.model_validate(data)

    response = _post(client, data)

    assert response.status_code == 200
    DecisionOut.model_validate(response.json())


def test_request_schema_refuses_misspelt_fields() -> None:
    bad = copy.deepcopy(EVALUATE_EXAMPLE)
    bad["order"]["singed_at"] = bad["order"].pop("signed_at")

    with pytest.raises(ValueError, match="singed_at"):
        FactsIn.model_validate(bad)


def test_cli_prints_the_decision_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = evaluate_file(str(EXAMPLES / "cn_sanbao_phone_repair.json"))

    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["requested_open"] is True
    assert out["remedies_open"][0]["rule_id"] == "cn.sanbao.warranty_repair"


def test_cli_reports_bad_facts_on_stderr_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads((EXAMPLES / "eu_withdrawal.json").read_text(encoding="utf-8"))
    data["request"]["kind"] = "teleport"
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(data), encoding="utf-8")

    code = evaluate_file(str(path))

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert json.loads(captured.err)["field"] == "request.kind"


def test_cli_reports_unreadable_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "facts.json"
    path.write_text("{not json", encoding="utf-8")

    assert main([str(path)]) == 2
    assert json.loads(capsys.readouterr().err)["code"] == "invalid_json"
