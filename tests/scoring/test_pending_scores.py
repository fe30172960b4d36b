"""Scores pending in a process's memory survive its stop: a graceful stop scores them before it
exits, and a process that starts scores the recent leads a dead one left unscored."""

from __future__ import annotations

from calltrack.app import build_app
from tests.conftest import make_config, resolve
from tests.numbers.helpers import rows
from tests.telephony.helpers import STATIC_NUMBER, setup_phones, twilio_post, voice_params


def test_a_graceful_stop_scores_the_leads_still_pending(app, http, tenant, clock):
    setup_phones(app, tenant)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "3" * 32, to=STATIC_NUMBER))
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "4" * 32, caller="+14155550123", to=STATIC_NUMBER))
    assert [r[0] for r in rows(app, "SELECT scored_at FROM leads")] == [None, None]  # due in a second
    resolve(app.scoring.drain())
    assert all(r[0] is not None for r in rows(app, "SELECT scored_at FROM leads ORDER BY id"))
    clock.advance(5)  # the cancelled flush never runs; nothing is left to score
    assert app.scoring._dirty == {}


def test_a_start_scores_recent_leads_a_dead_process_left_unscored(app, http, engine, tenant, clock):
    setup_phones(app, tenant)

    def call_then_die(sid: str, caller: str) -> None:
        twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(sid, caller=caller, to=STATIC_NUMBER))
        app.scoring._call.cancel()  # the process is killed before its scoring second is up
        app.scoring._call, app.scoring._dirty = None, {}

    call_then_die("CA" + "5" * 32, "+14155550123")
    clock.advance(2 * 86400)
    call_then_die("CA" + "6" * 32, "+14155550124")
    assert [r[0] for r in rows(app, "SELECT scored_at FROM leads ORDER BY id")] == [None, None]

    restarted = build_app(make_config(), reactor=clock, clock=clock, engine=engine, synchronous_db=True)
    assert resolve(restarted.scoring.catch_up()) == 1
    old, recent = rows(app, "SELECT scored_at, score FROM leads ORDER BY id")
    assert recent.scored_at is not None and recent.score is not None
    assert old.scored_at is None  # older than a day: left to `calltrack scoring backfill`
    assert resolve(restarted.scoring.catch_up()) == 0
    restarted.numbers.stop()


def test_a_graceful_stop_waits_for_a_scoring_run_under_way(app):
    from twisted.internet import defer

    under_way: defer.Deferred[None] = defer.Deferred()
    app.scoring.in_background(under_way, "a scoring run")
    stopped = defer.ensureDeferred(app.scoring.drain())
    assert not stopped.called  # its leads would be left unscored were the process to exit now
    under_way.callback(None)
    assert stopped.called and not app.scoring._running
