"""Evaluate a facts file from the command line: ``python -m aftersales.policies.cli facts.json``.

Prints the decision as indented JSON on stdout (exit 0), or the error as JSON on stderr (exit 2), so
a support engineer can replay a stored case and a script can tell the two apart.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from aftersales.policies.engine import evaluate
from aftersales.policies.facts import FactsError, facts_from_dict

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def _fail(code: str, message: str, field: str | None = None) -> int:
    payload = {"code": code, "message": message}
    if field is not None:
        payload["field"] = field
    print(json.dumps(payload, ensure_ascii=False, indent=2), file=sys.stderr)
    return EXIT_BAD_INPUT


def evaluate_file(path: str) -> int:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        return _fail("unreadable_file", f"cannot read {path}: {exc.strerror or exc}")
    except json.JSONDecodeError as exc:
        return _fail("invalid_json", f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    try:
        decision = evaluate(facts_from_dict(data))
    except FactsError as exc:
        return _fail(exc.code, exc.message, exc.field)
    print(json.dumps(decision.to_dict(), ensure_ascii=False, indent=2))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        return _fail("usage", "usage: python -m aftersales.policies.cli FACTS.json")
    return evaluate_file(args[0])


if __name__ == "__main__":
    sys.exit(main())
