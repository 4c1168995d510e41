import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_evaluate_prints_the_decision_for_an_example(capsys):
    call_command("policy", "evaluate", str(EXAMPLES / "cn_taobao_apparel_no_reason.json"))

    decision = json.loads(capsys.readouterr().out)
    assert (decision["requested"], decision["requested_open"], decision["basis"]) == (
        "return_refund", True, "no_reason")


def test_bad_facts_print_the_field_and_fail_with_code_2(tmp_path, capsys):
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"order": {}}))

    with pytest.raises(CommandError) as error:
        call_command("policy", "evaluate", str(facts))

    assert error.value.returncode == 2
    assert json.loads(capsys.readouterr().err) == {"code": "invalid_facts", "message": "is required",
                                                   "field": "order.lines"}
