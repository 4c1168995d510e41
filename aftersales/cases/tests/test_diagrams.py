from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from aftersales.cases import diagrams
from aftersales.cases.states import Kind

# The committed pages, found from this file so the test does not depend on the current directory.
DOCS = Path(__file__).resolve().parents[3] / "docs" / "workflows"


def test_the_committed_diagrams_match_the_transition_tables():
    pages = diagrams.render_all()

    committed = {path.name: path.read_text(encoding="utf-8") for path in sorted(DOCS.glob("*.md"))}

    assert sorted(committed) == sorted(pages)
    stale = [name for name, content in pages.items() if committed[name] != content]
    assert stale == [], "run `aftersales workflow-diagram` and commit docs/workflows"


def test_there_is_one_page_per_kind_and_an_index():
    assert sorted(diagrams.render_all()) == [
        "README.md", "complaint.md", "exchange.md", "inquiry.md", "refund_only.md", "repair.md", "return_refund.md",
    ]


def test_an_edge_names_action_outcome_and_permission():
    text = diagrams.mermaid(Kind.RETURN_REFUND)

    assert "    pending_review --> awaiting_return : approve (case.decide)\n" in text
    assert "    inspecting --> refunding : record_inspection [passed] (case.warehouse)\n" in text
    assert "    rejected --> in_arbitration : escalate (case.buyer) platform only\n" in text


def test_a_state_is_labelled_in_chinese_and_english():
    text = diagrams.mermaid(Kind.EXCHANGE)

    assert '    state "换货已发出<br/>Replacement shipped" as reshipped\n' in text


def test_a_conversion_points_at_the_other_kinds_state_and_is_noted_there():
    repair = diagrams.mermaid(Kind.REPAIR)
    exchange = diagrams.mermaid(Kind.EXCHANGE)

    assert "    repairing --> exchange__reshipping : convert [exchange] (case.repair) → exchange\n" in repair
    assert "    note left of reshipping\n        A repair case converted by\n" in exchange


def test_a_conversion_target_is_not_counted_as_a_state_of_the_converting_kind():
    assert "reshipping" not in diagrams.own_states(Kind.REPAIR)
    assert "refunding" not in diagrams.own_states(Kind.REPAIR)


def test_the_diagram_starts_at_the_initial_state_and_ends_at_terminal_ones():
    lines = diagrams.mermaid(Kind.COMPLAINT).splitlines()

    assert lines[:2] == ["stateDiagram-v2", "    direction TB"]
    assert "    [*] --> open" in lines
    assert [line for line in lines if line.endswith("--> [*]")] == ["    cancelled --> [*]", "    closed --> [*]"]


def test_the_command_writes_every_page(tmp_path):
    call_command("workflow_diagram", output=str(tmp_path))

    written = {path.name: path.read_text(encoding="utf-8") for path in tmp_path.iterdir()}
    assert written == diagrams.render_all()


def test_check_passes_on_pages_that_match(tmp_path):
    call_command("workflow_diagram", output=str(tmp_path))

    call_command("workflow_diagram", output=str(tmp_path), check=True)


def test_check_exits_1_and_lists_each_difference(tmp_path, capsys):
    call_command("workflow_diagram", output=str(tmp_path))
    (tmp_path / "repair.md").write_text("edited by hand\n", encoding="utf-8")
    (tmp_path / "inquiry.md").unlink()
    (tmp_path / "teleport.md").write_text("a kind that no longer exists\n", encoding="utf-8")

    with pytest.raises(CommandError) as error:
        call_command("workflow_diagram", output=str(tmp_path), check=True)

    assert error.value.returncode == 1
    assert capsys.readouterr().err.splitlines() == [
        "missing: inquiry.md", "out of date: repair.md", "not generated: teleport.md",
    ]


def test_check_writes_nothing(tmp_path):
    with pytest.raises(CommandError):
        call_command("workflow_diagram", output=str(tmp_path / "docs"), check=True)

    assert not (tmp_path / "docs").exists()
