"""How many policy decisions per second one core makes for a typical three-line order.

    python benchmarks/policy_engine.py [--seconds 3]

The engine is re-run whenever facts change and for what-if previews, so it must stay well above
20,000 decisions/s. Facts are built once; the loop measures `evaluate` alone, then parsing + evaluate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# Run as a plain script from anywhere: the package lives one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aftersales.policies.engine import evaluate
from aftersales.policies.facts import facts_from_dict

TARGET = 20_000

TYPICAL = {
    "order": {
        "order_id": "BENCH-1",
        "currency": "CNY",
        "lines": [
            {"line_id": "L1", "sku": "DRESS-RED-M", "category": "apparel", "quantity": 1, "unit_price": "299.00"},
            {"line_id": "L2", "sku": "SCARF-GREY", "category": "apparel", "quantity": 2, "unit_price": "49.50",
             "discount_allocated": "10.00"},
            {"line_id": "L3", "sku": "EARBUDS-2", "category": "electronics", "quantity": 1, "unit_price": "199.00"},
        ],
        "payments": [
            {"method": "alipay", "amount": "507.00"},
            {"method": "coupon", "amount": "20.00"},
            {"method": "points", "amount": "10.00"},
        ],
        "free_shipping_threshold": "99.00",
        "standard_shipping_fee": "8.00",
        "full_reductions": [{"threshold": "500.00", "amount": "50.00"}],
        "shipped_at": "2026-02-28T09:00:00+08:00",
        "signed_at": "2026-03-01T23:50:00+08:00",
    },
    "request": {
        "kind": "return_refund",
        "reason": "no_reason",
        "lines": [{"line_id": "L1", "quantity": 1}],
        "notice_at": "2026-03-06T12:00:00+08:00",
        "goods": {"packaging_opened": True},
    },
    "store": {"jurisdiction": "CN", "platform_mode": "taobao", "timezone": "Asia/Shanghai",
              "promises": {"shipping_insurance": True, "shipping_insurance_cap": "12.00"}},
}


def rate(run, seconds: float, rounds: int = 5) -> float:
    """Decisions per second of CPU time, best of `rounds` (as timeit does): one core, and as fair as
    we can be on a machine that is busy with other work, which only ever slows a round down."""
    run()  # warm caches (time zones, holiday look-ups)
    best = 0.0
    for _ in range(rounds):
        count = 0
        start = time.process_time()
        deadline = start + seconds / rounds
        while True:
            for _ in range(200):
                run()
            count += 200
            now = time.process_time()
            if now >= deadline:
                break
        best = max(best, count / (now - start))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--facts", type=Path, help="a facts JSON file instead of the built-in order")
    args = parser.parse_args()
    data = json.loads(args.facts.read_text(encoding="utf-8")) if args.facts else TYPICAL
    facts = facts_from_dict(data)

    engine_only = rate(lambda: evaluate(facts), args.seconds)
    with_parsing = rate(lambda: evaluate(facts_from_dict(data)), args.seconds)
    print(f"evaluate:               {engine_only:,.0f} decisions/s")
    print(f"facts_from_dict + eval: {with_parsing:,.0f} decisions/s")
    print(f"target:                 {TARGET:,} decisions/s -> {'ok' if engine_only >= TARGET else 'TOO SLOW'}")
    return 0 if engine_only >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
