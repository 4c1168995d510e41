import django
import pytest

from aftersales import cli


def test_help_lists_each_command_on_one_line(capsys):
    assert cli.main(["--help"]) == 0

    out = capsys.readouterr().out
    command_lines = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    assert command_lines == ["serve", "worker", "migrate", "demo-data", "import-orders", "createstaff",
                             "workflow-diagram", "policy"]


def test_no_arguments_prints_the_help(capsys):
    assert cli.main([]) == 0

    assert capsys.readouterr().out.startswith("usage: aftersales <command>")


@pytest.mark.parametrize(("typed", "django_name"), [
    ("demo-data", "demo_data"), ("import-orders", "import_orders"), ("workflow-diagram", "workflow_diagram"),
    ("serve", "serve"), ("createstaff", "createstaff"),
])
def test_hyphenated_names_map_to_django_command_names(typed, django_name):
    assert cli.django_command(typed) == django_name


def test_a_hyphenated_command_reaches_its_django_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo-data", "--help"])

    assert exit_info.value.code == 0
    assert "--new-passwords" in capsys.readouterr().out


def test_any_other_django_command_is_passed_through(capsys):
    assert cli.main(["version"]) == 0

    assert capsys.readouterr().out.strip() == django.get_version()
