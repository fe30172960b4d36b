"""Leasing pool numbers: who gets which number, for how long, and what the lease log keeps.

All on a fake clock (task.Clock) and synchronous database work, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random

from twisted.internet import task

from calltrack.app import App
from tests.conftest import Tenant, make_tenant, resolve
from tests.numbers.helpers import add_numbers, count, make_pool, ping, rows, visit


def test_new_visitors_get_distinct_numbers_least_recently_used_first(app: App, tenant: Tenant, clock: task.Clock) -> None:
    make_pool(app, tenant, "all", 3)
    a = visit(app, tenant, "a")
    clock.advance(1)
    b = visit(app, tenant, "b")
    clock.advance(1)
    c = visit(app, tenant, "c")
    assert [x.outcome for x in (a, b, c)] == ["leased"] * 3
    assert len({a.phone_number, b.phone_number, c.phone_number}) == 3
    # a's lease ends; after hold + cool-down its number is free again, and it is the least
    # recently leased one, so the next new visitor gets it.
    clock.advance(1800 + 300 + 1)
    resolve(app.numbers.sweep_now())
    d = visit(app, tenant, "d")
    assert d.phone_number == a.phone_number


def test_returning_visitor_keeps_its_number_and_the_renewal_is_logged(app: App, tenant: Tenant, clock: task.Clock) -> None:
    make_pool(app, tenant, "all", 2)
    first = visit(app, tenant, "v1")
    clock.advance(120)  # past the in-memory trust interval: a database renewal
    again = visit(app, tenant, "v1")
    assert again.phone_number == first.phone_number
    assert again.outcome == "renewed"
    lease = rows(app, "SELECT id, expires_at, last_seen_at FROM leases")
    assert len(lease) == 1
    assert lease[0].expires_at == clock.seconds() + 1800
    kinds = [r.kind for r in rows(app, "SELECT kind FROM lease_events ORDER BY id")]
    assert kinds == ["start", "renew"]


def test_requests_within_the_trust_interval_are_answered_from_memory(app: App, tenant: Tenant, clock: task.Clock) -> None:
    make_pool(app, tenant, "all", 2)
    first = visit(app, tenant, "v1")
    for _ in range(5):
        clock.advance(10)
        assert visit(app, tenant, "v1").outcome == "cached"
        assert ping(app, tenant, "v1").phone_number == first.phone_number
    assert count(app, "lease_events") == 1  # only the start
    clock.advance(15)  # 65 s since the database confirmed the lease
    assert ping(app, tenant, "v1").outcome == "renewed"
    assert count(app, "lease_events") == 2


def test_a_heartbeat_keeps_the_lease_past_the_hold_time(app: App, tenant: Tenant, clock: task.Clock) -> None:
    make_pool(app, tenant, "all", 1, hold_seconds=600)
    mine = visit(app, tenant, "reader")
    for _ in range(12):  # an hour of reading, pinging every 5 minutes
        clock.advance(300)
        resolve(app.numbers.sweep_now())
        assert ping(app, tenant, "reader").phone_number == mine.phone_number
        assert visit(app, tenant, f"other-{clock.seconds()}").outcome == "exhausted"


def test_an_idle_lease_expires_after_its_hold_and_the_number_cools_down(app: App, tenant: Tenant, clock: task.Clock) -> None:
    pool = make_pool(app, tenant, "all", 1, hold_seconds=600, cooldown_seconds=300)
    first = visit(app, tenant, "early")
    clock.advance(601)
    assert resolve(app.numbers.sweep_now()) == 1
    ended = rows(app, "SELECT ended_at, end_reason, expires_at FROM leases")[0]
    assert ended.end_reason == "expired" and ended.ended_at == ended.expires_at  # logged at the deadline
    # Cooling down: nobody gets the number, the late caller's call still belongs to "early".
    assert visit(app, tenant, "late").outcome == "exhausted"
    assert ping(app, tenant, "early").outcome == "no_lease"
    clock.advance(300)
    later = visit(app, tenant, "later")
    assert later.outcome == "leased" and later.phone_number == first.phone_number
    assert pool.cooldown_seconds == 300


def test_a_lapsed_visitor_coming_back_is_new_again(app: App, tenant: Tenant, clock: task.Clock) -> None:
    make_pool(app, tenant, "all", 2, hold_seconds=600, cooldown_seconds=60)
    first = visit(app, tenant, "v")
    clock.advance(700)  # no sweep ran: the lease is still open in the table, but lapsed
    back = visit(app, tenant, "v")
    assert back.outcome == "leased"
    assert back.phone_number != first.phone_number  # the old one is cooling down
    open_leases = rows(app, "SELECT id FROM leases WHERE ended_at IS NULL AND expires_at > :now", now=clock.seconds())
    assert len(open_leases) == 1


def test_exhausted_pool_answers_the_overflow_number_and_counts_it(app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "all", 1, overflow_number="+14155550181")
    visit(app, tenant, "a")
    b = visit(app, tenant, "b")
    assert b.outcome == "exhausted"
    assert b.phone_number == "+14155550181"
    assert b.to_json()["lease"] is False
    assert count(app, "pool_exhaustions") == 1


def test_exhausted_pool_without_overflow_answers_the_sites_own_number(app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "all", 1)
    visit(app, tenant, "a")
    assert visit(app, tenant, "b").phone_number == tenant.site.own_number


def test_bots_get_the_sites_own_number_and_nothing_is_recorded(app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "all", 1)
    answer = visit(app, tenant, "crawler", bot=True)
    assert answer.phone_number == tenant.site.own_number
    assert answer.outcome == "bot"
    assert count(app, "leases") == 0 and count(app, "touchpoints") == 0


def test_no_pool_serves_the_visit(app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "google only", 1, rules={"utm_source": "google"})
    answer = visit(app, tenant, "v", utm_source="bing")
    assert answer.outcome == "no_pool" and answer.phone_number == tenant.site.own_number
    assert count(app, "touchpoints") == 1  # the visit is still a touchpoint


def test_pools_are_chosen_by_rules_and_precedence(app: App, tenant: Tenant) -> None:
    everyone = make_pool(app, tenant, "everyone", 3, first=10)
    paid = make_pool(app, tenant, "google ads", 3, rules={"channel": "paid_search"}, first=20)
    brand = make_pool(app, tenant, "brand campaign", 3, rules={"utm_campaign": "brand"}, priority=50, first=30)
    assert paid.priority < everyone.priority  # created later, still first: it has rules

    def pool_of(answer: object) -> int:
        number = answer.phone_number  # type: ignore[attr-defined]
        return rows(app, "SELECT pool_id FROM tracking_numbers WHERE e164 = :n", n=number)[0].pool_id

    assert pool_of(visit(app, tenant, "v1", utm_source="google", utm_medium="cpc")) == paid.id
    assert pool_of(visit(app, tenant, "v2", gclid="Cj0KCQ")) == paid.id
    assert pool_of(visit(app, tenant, "v3", ref="https://www.google.com/")) == everyone.id  # organic
    assert pool_of(visit(app, tenant, "v4", utm_source="google", utm_medium="cpc", utm_campaign="Brand")) == brand.id


def test_a_new_touch_on_a_returning_visitor_is_recorded_but_the_number_is_kept(app: App, tenant: Tenant, clock: task.Clock) -> None:
    make_pool(app, tenant, "all", 2)
    first = visit(app, tenant, "v", utm_source="newsletter", utm_medium="email")
    clock.advance(5)
    second = visit(app, tenant, "v", utm_source="newsletter", utm_medium="email")  # same page view tags
    clock.advance(5)
    third = visit(app, tenant, "v", utm_source="google", utm_medium="cpc")  # came back through an ad
    assert first.phone_number == second.phone_number == third.phone_number
    touches = rows(app, "SELECT channel, utm_source FROM touchpoints ORDER BY id")
    assert [(t.channel, t.utm_source) for t in touches] == [("email", "newsletter"), ("paid_search", "google")]


def test_garbage_in_tags_is_stored_cut_and_inert(app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "all", 1)
    evil = "<script>alert(1)</script>\x00\x1b[31m" + "x" * 5000
    visit(app, tenant, "v", utm_source=evil, utm_campaign="'; DROP TABLE leases; --", url="https://acme.example/" + "p" * 9000)
    touch = rows(app, "SELECT utm_source, utm_campaign, url FROM touchpoints")[0]
    assert touch.utm_source.startswith("<script>alert(1)</script>[31m") and len(touch.utm_source) == 200
    assert "\x00" not in touch.utm_source and "\x1b" not in touch.utm_source
    assert touch.utm_campaign == "'; DROP TABLE leases; --"
    assert len(touch.url) == 2048
    assert count(app, "leases") == 1


def test_retiring_a_number_ends_its_lease_and_it_is_never_handed_out_again(app: App, tenant: Tenant, clock: task.Clock) -> None:
    make_pool(app, tenant, "all", 1)
    held = visit(app, tenant, "v")
    number_id = rows(app, "SELECT id FROM tracking_numbers WHERE e164 = :n", n=held.phone_number)[0].id
    retired = resolve(app.numbers.retire_number(tenant.account.id, number_id))
    assert retired.status == "retired"
    lease = rows(app, "SELECT end_reason FROM leases")[0]
    assert lease.end_reason == "retired"
    assert visit(app, tenant, "v").outcome == "exhausted"  # the memory of the lease was dropped too
    clock.advance(10_000)
    assert visit(app, tenant, "w").outcome == "exhausted"


def test_a_retired_pool_serves_nobody(app: App, tenant: Tenant) -> None:
    pool = make_pool(app, tenant, "all", 1)
    resolve(app.numbers.update_pool(tenant.account.id, pool.id, {"retired": True}))
    assert visit(app, tenant, "v").outcome == "no_pool"


def test_same_visitor_ids_on_two_sites_are_two_visitors(app: App, tenant: Tenant) -> None:
    other = make_tenant(app, "Other Co", ("other.example",))
    make_pool(app, tenant, "all", 1)
    make_pool(app, other, "all", 1, first=50)
    assert visit(app, tenant, "same").outcome == "leased"
    assert visit(app, other, "same").outcome == "leased"
    assert count(app, "leases") == 2


def test_a_number_belongs_to_one_account(app: App, tenant: Tenant) -> None:
    import pytest

    from calltrack.numbers.store import Conflict

    other = make_tenant(app, "Other Co", ("other.example",))
    pool = make_pool(app, tenant, "all", 1)
    other_pool = make_pool(app, other, "all", 0)
    with pytest.raises(Conflict):
        add_numbers(app, other, other_pool, ["+14155550010"])
    assert pool.id != other_pool.id


def test_no_number_is_ever_held_by_two_visitors_at_once(app: App, tenant: Tenant, clock: task.Clock) -> None:
    """Random visits, heartbeats, idle gaps, sweeps and retirements; then the lease log must
    show, for every number, leases that never overlap and a cool-down between them."""
    make_pool(app, tenant, "all", 4, hold_seconds=300, cooldown_seconds=120)
    rng = random.Random(20261123)
    visitors = [f"v{i}" for i in range(12)]
    for _ in range(400):
        action = rng.random()
        if action < 0.5:
            visit(app, tenant, rng.choice(visitors))
        elif action < 0.8:
            ping(app, tenant, rng.choice(visitors))
        elif action < 0.97:
            resolve(app.numbers.sweep_now())
        clock.advance(rng.choice([1, 5, 30, 61, 200, 400]))
    resolve(app.numbers.sweep_now())
    spans = rows(
        app,
        "SELECT number_id, vid, started_at, COALESCE(ended_at, expires_at) AS until FROM leases ORDER BY number_id, started_at",
    )
    assert len(spans) > 20
    by_number: dict[int, list[tuple[float, float, str]]] = {}
    for s in spans:
        by_number.setdefault(s.number_id, []).append((s.started_at, s.until, s.vid))
    for number_id, ls in by_number.items():
        for (_s1, e1, v1), (s2, _e2, v2) in zip(ls, ls[1:], strict=False):
            assert s2 >= e1 + 120, f"number {number_id}: {v2} got it at {s2}, {v1} held it until {e1} (+120 s cool-down)"


def test_retiring_a_pool_ends_its_leases(app: App, tenant: Tenant) -> None:
    pool = make_pool(app, tenant, "all", 2)
    visit(app, tenant, "v")
    resolve(app.numbers.update_pool(tenant.account.id, pool.id, {"retired": True}))
    assert rows(app, "SELECT end_reason FROM leases")[0].end_reason == "retired"
    assert visit(app, tenant, "v").outcome == "no_pool"
