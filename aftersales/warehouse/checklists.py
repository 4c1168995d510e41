"""The default inspection checklist per product category; a store may replace one in ChecklistTemplate.

Why these: a seal matters for goods sold sealed (cosmetics, media, food), tags for apparel,
activation for electronics (an activated phone is no longer new under 三包 resale rules); every
parcel is checked for being the item we sold and not empty, the two commonest return frauds.
"""

from __future__ import annotations

from .models import Check, ChecklistTemplate

_ALWAYS = [Check.COMPLETE, Check.DAMAGE, Check.WRONG_ITEM, Check.EMPTY_PARCEL]

DEFAULTS: dict[str, list[str]] = {
    "apparel": [Check.TAGS, *_ALWAYS],
    "electronics": [Check.SEAL, Check.ACTIVATION, *_ALWAYS],
    "appliances": [Check.SEAL, Check.ACTIVATION, *_ALWAYS],
    "cosmetics": [Check.SEAL, *_ALWAYS],
    "food": [Check.SEAL, *_ALWAYS],
    "media": [Check.SEAL, *_ALWAYS],
    "jewellery": [Check.TAGS, *_ALWAYS],
}


def checks_for(store_id: int, categories: list[str]) -> list[str]:
    """The union of the checklists of the case's categories, in a stable order."""
    custom: dict[str, list[str]] = dict(ChecklistTemplate.objects.filter(store_id=store_id, category__in=categories)
                  .values_list("category", "checks"))
    wanted: set[str] = set()
    for category in categories or ["other"]:
        wanted.update(custom.get(category) or DEFAULTS.get(category) or _ALWAYS)
    return [c for c in Check.values if c in wanted]
