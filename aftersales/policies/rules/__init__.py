"""Rules by layer: `cn_law` and `eu_uk_us` (statutory floors), `platforms` (overlays),
`store_promises` (more generous only), `refund_math` and `calendar` (shared arithmetic)."""
