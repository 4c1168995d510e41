"""Routing: rules matched on the case's facts, three strategies, nobody away gets work, VIPs to their team."""

from __future__ import annotations

from decimal import Decimal

import pytest

from aftersales.cases import services as case_services
from aftersales.cases.models import Case, TimelineEntry
from aftersales.sla import services
from aftersales.sla.models import RoutingRule, Team, TeamMember
from aftersales.stores.models import Membership
from aftersales.testing import factories as f

from .conftest import open_inquiry, open_return

pytestmark = pytest.mark.django_db


def team_of(store, name, *agents, skills=None):
    team = Team.objects.create(store=store, name=name)
    for agent in agents:
        TeamMember.objects.create(store=store, team=team, user=agent, skills=(skills or {}).get(agent.pk, []))
    return team


def rule(store, team, **fields):
    fields.setdefault("name", f"rule-{team.name}")
    return RoutingRule.objects.create(store=store, team=team, **fields)


def route(store, case):
    return services.route_case(store_id=store.pk, case_id=case.pk)


def test_round_robin_deals_in_turn_and_records_the_rule_in_the_timeline(store):
    a, b, c = (f.make_staff(store) for _ in range(3))
    r = rule(store, team_of(store, "front", a, b, c))
    cases = [open_inquiry(store) for _ in range(4)]

    assert [route(store, case) for case in cases] == [a.pk, b.pk, c.pk, a.pk]
    entry = TimelineEntry.objects.get(case=cases[0], event="assigned")
    assert (entry.actor_kind, entry.data) == ("system", {"from": None, "to": a.pk, "rule": f"routing.{r.pk}:{r.name}"})


def test_routing_again_leaves_an_assigned_case_alone(store):
    a, b = f.make_staff(store), f.make_staff(store)
    rule(store, team_of(store, "front", a, b))
    case = open_inquiry(store)
    assert (route(store, case), route(store, case)) == (a.pk, None)
    assert Case.objects.get(pk=case.pk).assignee_id == a.pk


def test_an_agent_marked_away_receives_nothing(store):
    a, b = f.make_staff(store), f.make_staff(store)
    Membership.objects.filter(user=a, store=store).update(is_away=True)
    rule(store, team_of(store, "front", a, b))
    assert [route(store, open_inquiry(store)) for _ in range(3)] == [b.pk, b.pk, b.pk]


def test_least_loaded_weighs_open_cases_by_priority_and_respects_the_cap(store):
    a, b = f.make_staff(store), f.make_staff(store)
    rule(store, team_of(store, "front", a, b), strategy="least_loaded", max_open_per_agent=2)
    supervisor = f.staff(store, "supervisor")
    urgent = open_inquiry(store, priority=4)
    case_services.assign_case(actor=supervisor, case_id=urgent.pk, assignee_id=a.pk)
    low = [open_inquiry(store, priority=1) for _ in range(2)]
    for case in low:
        case_services.assign_case(actor=supervisor, case_id=case.pk, assignee_id=b.pk)

    # a carries 4 (one urgent case), b carries 2 (two low ones) but is at the cap of 2 open cases.
    assert route(store, open_inquiry(store)) == a.pk
    assert route(store, open_inquiry(store)) is None  # both at the cap: nobody gets it


def test_skills_pick_the_agents_who_have_them(store):
    a, b = f.make_staff(store), f.make_staff(store)
    team = team_of(store, "repairs", a, b, skills={b.pk: ["electronics", "english"]})
    rule(store, team, strategy="skills", required_skills=["electronics"])
    assert route(store, open_inquiry(store)) == b.pk


def test_vip_cases_go_to_the_vip_team(store):
    front, concierge = f.make_staff(store), f.make_staff(store)
    rule(store, team_of(store, "vip", concierge), position=1, buyer_tiers=["vip"])
    rule(store, team_of(store, "front", front), position=2)
    vip = f.make_buyer(store)
    vip.tier = "vip"
    vip.save(update_fields=["tier"])
    assert (route(store, open_inquiry(store, vip)), route(store, open_inquiry(store))) == (concierge.pk, front.pk)


def test_rules_match_on_kind_reason_channel_language_category_and_priority(store):
    general, phones = f.make_staff(store), f.make_staff(store)
    rule(store, team_of(store, "phones", phones), position=1, kinds=["return_refund"], reasons=["quality"],
         channels=["web"], languages=["zh-hans"], sku_categories=["electronics"], priorities=[2])
    rule(store, team_of(store, "general", general), position=2)
    phone_order = f.make_order(store, lines=[{"sku": "P", "name": "手机", "quantity": 1, "unit_price": Decimal("10.00"),
                                              "category": "electronics"}])
    shirt_order = f.make_order(store, lines=[{"sku": "S", "name": "T恤", "quantity": 1, "unit_price": Decimal("10.00"),
                                              "category": "apparel"}])
    assert route(store, open_return(store, phone_order)) == phones.pk
    assert route(store, open_return(store, shirt_order)) == general.pk


def test_a_new_case_is_routed_when_its_creation_commits(store, django_capture_on_commit_callbacks):
    a = f.make_staff(store)
    rule(store, team_of(store, "front", a))
    with django_capture_on_commit_callbacks(execute=True):
        case = open_inquiry(store)
    assert Case.objects.get(pk=case.pk).assignee_id == a.pk
