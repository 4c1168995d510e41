"""The HTTP handler and the CLI around the engine. No database: the endpoint is stateless."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _django_ready() -> None:
    # Ninja reads Django settings on import. Under pytest-django they are set up already; run bare
    # (`-p no:django`), give Django the bare minimum so these tests still run without a database.
    import django
    from django.conf import settings

    if not os.environ.get("DJANGO_SETTINGS_MODULE") and not settings.configured:
        settings.configure(USE_TZ=True, INSTALLED_APPS=[])
    django.setup()


_django_ready()

from aftersales.core.errors import DomainError  # noqa: E402
from aftersales.policies.api import evaluate_facts  # noqa: E402
from aftersales.policies.cli import evaluate_file, main  # noqa: E402
from aftersales.policies.schemas import EVALUATE_EXAMPLE, DecisionOut, FactsIn  # noqa: E402


def test_endpoint_returns_the_decision_for_the_documented_example() -> None:
    body = evaluate_facts(None, FactsIn.model_validate(EVALUATE_EXAMPLE))  # type: ignore[arg-type]

    assert body["requested_open"] is True
    assert body["refund"]["amount"] == "249.00"  # S3 Art 17(2) settlement of the broken 满减
    assert DecisionOut.model_validate(body).refund.amount == "249.00"


def test_endpoint_turns_bad_facts_into_a_422_domain_error_naming_the_field() -> None:
    bad = copy.deepcopy(EVALUATE_EXAMPLE)
    bad["order"]["lines"][1]["unit_price"] = "-1.00"

    with pytest.raises(DomainError) as caught:
        evaluate_facts(None, FactsIn.model_validate(bad))  # type: ignore[arg-type]

    assert caught.value.status == 422
    assert caught.value.code == "invalid_facts"
    assert caught.value.details == {"field": "order.lines[1].unit_price"}


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_every_example_fits_the_request_and_response_schemas(name: str) -> None:
    data = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))

    body = evaluate_facts(None, FactsIn.model_validate(data))  # type: ignore[arg-type]

    DecisionOut.model_validate(body)


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
