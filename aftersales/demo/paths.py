"""Ways through the transition tables, found by breadth-first search.

The demo data reaches every state of every kind by walking these paths with `transition_case`, so it
follows the tables as they are today rather than a list of steps written down once.
"""

from __future__ import annotations

from collections import deque

from aftersales.cases.states import INITIAL_STATUS, TABLES, Transition


def _rows_from(kind: str, status: str) -> list[Transition]:
    # Rows that turn the case into another kind are left out: the state they lead to belongs to the
    # other kind's table, where its own path reaches it. Sorted so that the paths never change order.
    rows = [t for t in TABLES[kind] if status in t.sources and t.new_kind is None]
    return sorted(rows, key=lambda t: (t.action, t.outcome or "", t.target))


def shortest_paths(kind: str, start: str | None = None) -> dict[str, list[Transition]]:
    """For every state reachable from `start` (the kind's initial state by default), the shortest
    list of rows that leads there without changing kind."""
    origin = start or INITIAL_STATUS[kind]
    paths: dict[str, list[Transition]] = {origin: []}
    queue = deque([origin])
    while queue:
        status = queue.popleft()
        for row in _rows_from(kind, status):
            if row.target not in paths:
                paths[row.target] = [*paths[status], row]
                queue.append(row.target)
    return paths


def resting_states(kind: str) -> set[str]:
    """Every state a case of this kind can be in."""
    return set(shortest_paths(kind))


def all_kind_states() -> set[tuple[str, str]]:
    return {(kind, status) for kind in TABLES for status in resting_states(kind)}
