"""Turning a shop's order into problems we can report: one rulebook for the JSON and the CSV import.

Field rules live on the schemas (pydantic); the few rules that look at several fields at once live in
`check_order`. Every problem carries a stable code and the path of the field it is about, so the API
can answer `lines[2].unit_price` and the CSV import can point at a line of the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from .records import DISCOUNT, LINE_NO, QUANTITY, SHIPPED_AT, SIGNED_AT, UNIT_PRICE, OrderRecord

# Pydantic's error types, folded into the codes we promise to keep stable. A type that is not listed
# keeps its own name, which is already a stable identifier (our own custom errors use our codes).
_CODES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "enum": "invalid_choice",
    "literal_error": "invalid_choice",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "decimal_max_digits": "out_of_range",
    "decimal_max_places": "too_many_decimals",
    "decimal_whole_digits": "out_of_range",
    "decimal_parsing": "invalid_decimal",
    "decimal_type": "invalid_decimal",
    "int_parsing": "invalid_integer",
    "int_from_float": "invalid_integer",
    "int_type": "invalid_integer",
    "bool_parsing": "invalid_boolean",
    "bool_type": "invalid_boolean",
    "string_type": "invalid_string",
    "string_too_short": "required",
    "string_too_long": "too_long",
    "string_pattern_mismatch": "invalid_format",
    "timezone_aware": "naive_datetime",
    "datetime_parsing": "invalid_datetime",
    "datetime_from_date_parsing": "invalid_datetime",
    "datetime_type": "invalid_datetime",
    "list_type": "invalid_list",
    "too_short": "required",
    "too_long": "too_many",
    "model_type": "invalid_object",
    "dict_type": "invalid_object",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an order. `line_index` is set when the problem is about one of its lines."""

    field: str
    code: str
    message: str
    line_index: int | None = None


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def problems_from(error: ValidationError, *, prefix: tuple[int | str, ...] = ()) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        loc = prefix + tuple(item["loc"])
        line_index = loc[1] if len(loc) > 1 and loc[0] == "lines" and isinstance(loc[1], int) else None
        problems.append(Problem(field=field_path(loc), code=_CODES.get(item["type"], item["type"]),
                                message=item["msg"], line_index=line_index))
    return problems


def check_order(order: OrderRecord) -> list[Problem]:
    """The rules that need several fields of an order at once."""
    problems = []
    seen: set[int] = set()
    for index, line in enumerate(order.lines):
        line_no = line[LINE_NO]
        if line_no in seen:
            problems.append(Problem(f"lines[{index}].line_no", "duplicate_line_no",
                                    f"line_no {line_no} appears twice in this order", index))
        seen.add(line_no)
        # The discount is part of what the buyer did not pay for this line; more than the line is worth
        # would make the refundable amount negative.
        if line[DISCOUNT] and line[DISCOUNT] > line[UNIT_PRICE] * line[QUANTITY]:
            problems.append(Problem(f"lines[{index}].discount_allocated", "discount_exceeds_line",
                                    "the discount is larger than unit_price × quantity", index))
    for index, shipment in enumerate(order.shipments):
        shipped_at, signed_at = shipment[SHIPPED_AT], shipment[SIGNED_AT]
        if shipped_at and signed_at and signed_at < shipped_at:
            problems.append(Problem(f"shipments[{index}].signed_at", "signed_before_shipped",
                                    "signed_at is earlier than shipped_at"))
    return problems
