"""The policy engine: pure functions from after-sales facts to a decision.

Layers apply in order: the statutory floor of the store's jurisdiction, the platform overlay when the
order is on a platform, then the store's own promises, which may only be more generous. Sources are
cited by the IDs S1..S25 of the research note `cn-rules.md` in the shared domain folder.

Entry points: `aftersales.policies.engine.evaluate` and `aftersales.policies.facts.facts_from_dict`.
"""
