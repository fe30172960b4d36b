"""calltrack/numbers/rules.py: parsing pool rules, matching visits, choosing a pool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calltrack.numbers.channels import CHANNELS, referrer_host
from calltrack.numbers.rules import (
    RULE_KEYS,
    PoolRules,
    RuleError,
    VisitFacts,
    choose_pool,
    parse_rules,
    rules_match,
)


@dataclass(frozen=True)
class FakePool:
    id: int
    priority: int
    rules: PoolRules
    name: str = ""


def facts(channel: str = "direct", **kw: str) -> VisitFacts:
    return VisitFacts(channel=channel, **kw)


# --- parse_rules: accepted ----------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, {}, {"all": True}])
def test_empty_rules_match_everything(raw: Any) -> None:
    rules = parse_rules(raw)
    assert rules == PoolRules()
    assert rules.matches_all
    assert rules.conditions == ()
    assert rules_match(rules, facts("paid_search", utm_source="google"))
    assert rules_match(rules, facts("direct"))


def test_string_value_becomes_single_alternative() -> None:
    rules = parse_rules({"channel": "paid_search"})
    assert rules.conditions == (("channel", frozenset({"paid_search"})),)
    assert not rules.matches_all


def test_values_are_stripped_and_lower_cased() -> None:
    rules = parse_rules({"utm_source": ["  Google ", "BING"], "channel": " Paid_Search "})
    assert dict(rules.conditions) == {
        "utm_source": frozenset({"google", "bing"}),
        "channel": frozenset({"paid_search"}),
    }


def test_conditions_are_sorted_by_key_so_equal_rules_compare_equal() -> None:
    a = parse_rules({"utm_source": "google", "channel": "paid_search", "keyword": "plumber"})
    b = parse_rules({"keyword": "plumber", "channel": "paid_search", "utm_source": "google"})
    assert a == b
    assert [k for k, _ in a.conditions] == ["channel", "keyword", "utm_source"]


def test_all_true_with_other_keys_keeps_the_other_keys() -> None:
    rules = parse_rules({"all": True, "channel": "email"})
    assert rules.conditions == (("channel", frozenset({"email"})),)


@pytest.mark.parametrize("key", RULE_KEYS)
def test_every_documented_key_is_accepted(key: str) -> None:
    value = "email" if key == "channel" else "x"
    assert parse_rules({key: value}).conditions == ((key, frozenset({value})),)


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_channel_is_accepted(channel: str) -> None:
    assert parse_rules({"channel": channel}).conditions == (("channel", frozenset({channel})),)


def test_duplicate_values_collapse() -> None:
    assert parse_rules({"utm_source": ["google", "Google", "GOOGLE "]}).conditions == (
        ("utm_source", frozenset({"google"})),
    )


# --- parse_rules: rejected ----------------------------------------------------------------------


@pytest.mark.parametrize("raw", [[], ["channel"], "channel=paid_search", 5, True])
def test_rules_must_be_an_object(raw: Any) -> None:
    with pytest.raises(RuleError, match="JSON object"):
        parse_rules(raw)


@pytest.mark.parametrize("value", [False, 1, "true", None, {}])
def test_all_may_only_be_true(value: Any) -> None:
    with pytest.raises(RuleError, match="'all'"):
        parse_rules({"all": value})


@pytest.mark.parametrize("key", ["source", "utm_term", "Channel", "referrer", ""])
def test_unknown_key_is_named(key: str) -> None:
    with pytest.raises(RuleError) as ei:
        parse_rules({key: "x"})
    assert repr(key) in str(ei.value)
    assert "unknown rule key" in str(ei.value)


@pytest.mark.parametrize(
    "value", ["", "   ", [], [""], ["google", ""], ["google", 5], 5, None, True, {"a": "b"}, ("google",)]
)
def test_bad_values_name_the_key(value: Any) -> None:
    with pytest.raises(RuleError) as ei:
        parse_rules({"utm_source": value})
    assert "'utm_source'" in str(ei.value)


def test_unknown_channel_is_named() -> None:
    with pytest.raises(RuleError) as ei:
        parse_rules({"channel": ["paid_search", "telepathy"]})
    assert "'telepathy'" in str(ei.value)
    assert "channel" in str(ei.value)


def test_rule_error_is_a_value_error() -> None:
    assert issubclass(RuleError, ValueError)


# --- to_json ------------------------------------------------------------------------------------


def test_empty_rules_serialise_to_all_true() -> None:
    assert PoolRules().to_json() == {"all": True}
    assert parse_rules({}).to_json() == {"all": True}
    assert parse_rules(None).to_json() == {"all": True}


def test_to_json_single_value_is_a_string_several_a_sorted_list() -> None:
    rules = parse_rules({"channel": "paid_search", "utm_source": ["Bing", "google", "duckduckgo"]})
    assert rules.to_json() == {"channel": "paid_search", "utm_source": ["bing", "duckduckgo", "google"]}


_value = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFXYZ0123456789._- ", min_size=1, max_size=12).filter(
    lambda s: s.strip() != ""
)
_values = st.one_of(_value, st.lists(_value, min_size=1, max_size=4))
_raw_rules = st.fixed_dictionaries(
    {},
    optional={
        "channel": st.one_of(st.sampled_from(CHANNELS), st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3)),
        "utm_source": _values,
        "utm_medium": _values,
        "utm_campaign": _values,
        "keyword": _values,
        "referrer_domain": _values,
        "all": st.just(True),
    },
)


@settings(max_examples=150, deadline=None)
@given(_raw_rules)
def test_to_json_round_trips(raw: dict[str, Any]) -> None:
    rules = parse_rules(raw)
    js = rules.to_json()
    assert parse_rules(js) == rules
    assert parse_rules(js).to_json() == js
    if rules.matches_all:
        assert js == {"all": True}
    else:
        assert "all" not in js
        assert set(js) == {k for k in raw if k != "all"}


# --- rules_match --------------------------------------------------------------------------------


def test_all_conditions_must_hold() -> None:
    rules = parse_rules({"channel": "paid_search", "utm_source": "google"})
    assert rules_match(rules, facts("paid_search", utm_source="google"))
    assert not rules_match(rules, facts("paid_search", utm_source="bing"))
    assert not rules_match(rules, facts("organic_search", utm_source="google"))
    assert not rules_match(rules, facts("paid_search"))


def test_several_values_are_alternatives() -> None:
    rules = parse_rules({"utm_source": ["google", "bing"]})
    assert rules_match(rules, facts(utm_source="google"))
    assert rules_match(rules, facts(utm_source="bing"))
    assert not rules_match(rules, facts(utm_source="yahoo"))
    assert not rules_match(rules, facts(utm_source=""))


def test_upper_case_rule_values_match_lower_case_facts() -> None:
    # VisitFacts are lower case (the service lower-cases tags); rules are normalised to match.
    rules = parse_rules({"utm_campaign": "Spring_SALE", "keyword": "Emergency Plumber"})
    assert rules_match(rules, facts(utm_campaign="spring_sale", keyword="emergency plumber"))


def test_values_match_exactly_not_as_substrings() -> None:
    rules = parse_rules({"utm_campaign": "sale", "utm_medium": "cpc"})
    assert not rules_match(rules, facts(utm_campaign="spring_sale", utm_medium="cpc"))
    assert not rules_match(rules, facts(utm_campaign="sale", utm_medium="cpc2"))


@pytest.mark.parametrize(
    ("referrer_domain", "expected"),
    [
        ("facebook.com", True),
        ("m.facebook.com", True),
        ("l.m.facebook.com", True),
        ("notfacebook.com", False),
        ("facebook.com.evil.example", False),
        ("facebook.co", False),
        ("", False),
    ],
)
def test_referrer_domain_matches_host_and_subdomains(referrer_domain: str, expected: bool) -> None:
    rules = parse_rules({"referrer_domain": "Facebook.com"})
    assert rules_match(rules, facts("organic_social", referrer_domain=referrer_domain)) is expected


def test_referrer_domain_subdomain_rule_does_not_match_parent() -> None:
    rules = parse_rules({"referrer_domain": "news.example.org"})
    assert rules_match(rules, facts(referrer_domain="news.example.org"))
    assert not rules_match(rules, facts(referrer_domain="example.org"))
    assert not rules_match(rules, facts(referrer_domain="sports.example.org"))


def test_referrer_domain_with_referrer_host() -> None:
    rules = parse_rules({"referrer_domain": "yelp.com"})
    assert rules_match(rules, facts("referral", referrer_domain=referrer_host("https://www.yelp.com/biz/acme")))
    assert rules_match(rules, facts("referral", referrer_domain=referrer_host("https://m.yelp.com/biz/acme")))


def test_referrer_domain_rule_with_www_matches_that_referrer() -> None:
    rules = parse_rules({"referrer_domain": "www.yelp.com"})
    host = referrer_host("https://www.yelp.com/biz/acme")
    assert rules_match(rules, facts("referral", referrer_domain=host))


# --- choose_pool --------------------------------------------------------------------------------


def test_no_pools_no_match() -> None:
    assert choose_pool([], facts()) is None


def test_no_matching_pool() -> None:
    pools = [FakePool(1, 100, parse_rules({"channel": "paid_search"}))]
    assert choose_pool(pools, facts("email")) is None


def test_lowest_priority_number_wins() -> None:
    catch_all = FakePool(1, 1000, parse_rules(None), "everyone")
    google = FakePool(2, 100, parse_rules({"channel": "paid_search"}), "google")
    google_brand = FakePool(3, 50, parse_rules({"channel": "paid_search", "utm_campaign": "brand"}), "brand")
    pools = [catch_all, google, google_brand]
    assert choose_pool(pools, facts("paid_search", utm_campaign="brand")) is google_brand
    assert choose_pool(pools, facts("paid_search", utm_campaign="generic")) is google
    assert choose_pool(pools, facts("direct")) is catch_all
    # The order of the input does not matter.
    assert choose_pool(list(reversed(pools)), facts("paid_search", utm_campaign="brand")) is google_brand


def test_equal_priority_lowest_id_wins() -> None:
    older = FakePool(7, 100, parse_rules({"utm_source": "google"}), "older")
    newer = FakePool(9, 100, parse_rules({"utm_source": ["google", "bing"]}), "newer")
    assert choose_pool([newer, older], facts(utm_source="google")) is older
    assert choose_pool([older, newer], facts(utm_source="google")) is older
    assert choose_pool([newer, older], facts(utm_source="bing")) is newer


def test_negative_priorities_come_first() -> None:
    a = FakePool(1, 0, parse_rules(None))
    b = FakePool(2, -5, parse_rules(None))
    assert choose_pool([a, b], facts()) is b


def test_a_non_matching_higher_precedence_pool_is_skipped() -> None:
    first = FakePool(1, 10, parse_rules({"channel": "email", "utm_campaign": "newsletter"}))
    second = FakePool(2, 20, parse_rules({"channel": "email"}))
    # channel holds for `first` but the campaign does not: all conditions must hold.
    assert choose_pool([first, second], facts("email", utm_campaign="promo")) is second


_facts = st.builds(
    VisitFacts,
    channel=st.sampled_from(CHANNELS),
    utm_source=st.sampled_from(["", "google", "bing", "facebook"]),
    utm_medium=st.sampled_from(["", "cpc", "email"]),
    utm_campaign=st.sampled_from(["", "brand", "spring"]),
    keyword=st.sampled_from(["", "plumber"]),
    referrer_domain=st.sampled_from(["", "google.com", "m.facebook.com", "yelp.com"]),
)
_pool_rules = st.sampled_from(
    [
        {},
        {"channel": "paid_search"},
        {"channel": ["email", "direct"]},
        {"utm_source": ["google", "bing"]},
        {"utm_source": "facebook", "utm_medium": "cpc"},
        {"utm_campaign": "brand"},
        {"referrer_domain": "facebook.com"},
        {"keyword": "plumber", "channel": "paid_search"},
    ]
)


@settings(max_examples=100, deadline=None)
@given(
    pools=st.lists(st.tuples(st.integers(-3, 3), _pool_rules), max_size=6),
    visit=_facts,
)
def test_choose_pool_is_the_minimum_matching_pool(pools: list[tuple[int, dict[str, Any]]], visit: VisitFacts) -> None:
    candidates = [FakePool(i + 1, prio, parse_rules(raw)) for i, (prio, raw) in enumerate(pools)]
    chosen = choose_pool(candidates, visit)
    matching = [p for p in candidates if rules_match(p.rules, visit)]
    if not matching:
        assert chosen is None
    else:
        assert chosen is min(matching, key=lambda p: (p.priority, p.id))
