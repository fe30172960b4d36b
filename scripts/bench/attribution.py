#!/usr/bin/env python3
"""Benchmark: every attribution model on 1,000,000 journeys from raw touch rows.

    .venv/bin/python scripts/bench/attribution.py [--persons 1000000] [--seed 7] [--channel str|category]
                                                   [--ts datetime|seconds] [--rows time|shuffled] [--bootstrap 0]
                                                   [--no-memory]

Generates (seeded, numpy Generator) a touch table the way the database would hand it over: one
row per touch in insertion (time) order, ``touch_id``, ``person_id``, ``ts`` (tz-aware UTC by
default), ``channel`` (20 values with a skewed mix, "direct" the most common; Python strings by
default, as a SQL read gives them). About 5 touches a person (1 + Poisson(4)) spread over three
months, so some fall outside the 30-day lookback; about 3 % of persons convert, more often after
some channels than others, a conversion after their last touch, with lead and opportunity
milestones for some.

Prints, per model: wall time of ``attribute()`` from the raw rows (journeys built each time),
the model alone on journeys prepared once, and the peak memory of ``attribute()`` from raw rows
(tracemalloc: what the call allocates beyond its inputs, numpy buffers included, which numpy
reports to it; a separate run, so tracing does not slow the timed one). Then the time to prepare the journeys; the total of
``attribute_many()`` with every model over one preparation, and its peak (the figures the targets
are about: under 5 s, under 2 GiB); the exact order-1 Markov from prepared paths (target: under
0.25 s, ten times faster than ChannelAttribution's simulation, about 2.5 s on such data; CA itself
is not run here), orders 2 and 3; and the process's maxrss (resource.getrusage, data generation
included). ``--bootstrap N`` also times N-replicate Markov and Shapley bootstraps.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from calltrack.attribution import MODELS, attribute, attribute_journeys, attribute_many, prepare  # noqa: E402

START = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
CHANNELS = (
    "direct", "organic_search", "paid_search", "paid_social", "organic_social", "email", "referral", "display",
    "affiliate", "video", "sms", "push", "podcast", "print", "radio", "tv", "billboard", "partner", "events", "other",
)


def generate(persons: int, seed: int, *, channel_as: str, ts_as: str, shuffled: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    per = 1 + rng.poisson(4.0, persons)
    n = int(per.sum())
    person = np.repeat(np.arange(1, persons + 1, dtype=np.int64), per)
    first = np.cumsum(per) - per
    # Each person's first touch somewhere in 90 days, then gaps of ~3 days on average.
    gaps = rng.exponential(3 * DAY, n)
    gaps[first] = rng.uniform(0, 90 * DAY, persons)
    ts = START + np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first] - gaps[first], per)
    mix = 1.0 / np.arange(1, len(CHANNELS) + 1) ** 0.9
    channel = rng.choice(len(CHANNELS), n, p=mix / mix.sum())
    # Conversion: some channels help (paid_search, email, referral), display less so.
    effect = np.zeros(len(CHANNELS))
    effect[[2, 5, 6]] = 0.8
    effect[7] = 0.2
    score = np.bincount(person - 1, weights=effect[channel], minlength=persons)
    p = 1 / (1 + np.exp(-(-4.3 + score)))
    converts = rng.random(persons) < p
    last = first + per - 1
    conv_persons = np.flatnonzero(converts)
    conv_ts = ts[last[conv_persons]] + rng.exponential(DAY, len(conv_persons))
    lead_pick = first[conv_persons] + rng.integers(0, per[conv_persons])
    has_lead = rng.random(len(conv_persons)) < 0.5
    has_opp = rng.random(len(conv_persons)) < 0.4
    conversions = pd.DataFrame(
        {
            "conversion_id": np.arange(1, len(conv_persons) + 1),
            "person_id": conv_persons + 1,
            "ts": conv_ts,
            "value": np.round(rng.lognormal(5, 1, len(conv_persons)), 2),
            "lead_touch_id": np.where(has_lead, lead_pick + 1, np.nan),
            "opportunity_ts": np.where(has_opp, conv_ts - rng.uniform(0, 2 * DAY, len(conv_persons)), np.nan),
        }
    )
    # Rows in insertion (time) order, as a touchpoints table would give them (or shuffled: the
    # worst case, a full sort).
    order = rng.permutation(n) if shuffled else np.argsort(ts, kind="stable")
    touches = pd.DataFrame({"touch_id": np.arange(1, n + 1)[order], "person_id": person[order], "ts": ts[order]})
    names = np.array(CHANNELS, dtype=object)[channel[order]]
    touches["channel"] = pd.Categorical(names, categories=sorted(CHANNELS)) if channel_as == "category" else names
    if ts_as == "datetime":
        touches["ts"] = pd.to_datetime(touches["ts"], unit="s", utc=True)
        conversions["ts"] = pd.to_datetime(conversions["ts"], unit="s", utc=True)
        conversions["opportunity_ts"] = pd.to_datetime(conversions["opportunity_ts"], unit="s", utc=True)
    return touches, conversions


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--persons", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--channel", choices=("str", "category"), default="str")
    p.add_argument("--ts", choices=("datetime", "seconds"), default="datetime")
    p.add_argument("--rows", choices=("time", "shuffled"), default="time", help="touch rows in time order or shuffled")
    p.add_argument("--bootstrap", type=int, default=0, help="also time Markov and Shapley bootstraps with this many replicates")
    p.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    args = p.parse_args()

    (touches, conversions), secs = timed(
        generate, args.persons, args.seed, channel_as=args.channel, ts_as=args.ts, shuffled=args.rows == "shuffled"
    )
    print(f"data: {args.persons:,} persons, {len(touches):,} touches, {len(conversions):,} conversions "
          f"({len(conversions) / args.persons:.1%}), {touches['channel'].nunique()} channels "
          f"[rows in {args.rows} order, channel as {args.channel}, ts as {args.ts}; generated in {secs:.1f} s]")

    journeys, prep = timed(prepare, touches, conversions)
    print(f"prepare journeys: {prep:.2f} s ({journeys.n_journeys:,} converting journeys, {len(journeys.codes):,} touches in them; "
          f"{journeys.n_null:,} non-converting, {len(journeys.null_codes):,} touches; unattributed {journeys.unattributed})")

    measure = not args.no_memory
    print(f"{'model':<16}{'from raw rows':>15}{'on prepared':>13}" + (f"{'peak, from raw':>16}" if measure else ""))
    for model in MODELS:
        _, raw = timed(attribute, touches, conversions, model)
        _, only = timed(attribute_journeys, journeys, model)
        line = f"{model:<16}{raw:>13.2f} s{only:>11.3f} s"
        if measure:
            tracemalloc.start()
            attribute(touches, conversions, model)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            line += f"{peak / 2**20:>12.0f} MiB"
        print(line)

    results, total = timed(attribute_many, touches, conversions, MODELS)
    print(f"all {len(MODELS)} models, attribute_many from raw rows (journeys built once): {total:.2f} s (target < 5 s)")
    if measure:
        del results
        tracemalloc.start()
        results = attribute_many(touches, conversions, MODELS)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"  peak memory of it (tracemalloc; numpy reports its buffers to it): {peak / 2**20:.0f} MiB (target < 2048 MiB)")
    table = pd.DataFrame({m: results[m]["conversions"] for m in ("last_touch", "linear", "markov", "shapley")})
    print("credit, a few models (sanity):")
    print(table.round(1).to_string())
    best = min(timed(attribute_journeys, journeys, "markov")[1] for _ in range(5))
    print(f"markov order 1 from prepared paths: {best * 1000:.0f} ms (best of 5; target < 250 ms)")
    for order in (2, 3):
        _, t = timed(attribute_journeys, journeys, "markov", order=order)
        print(f"markov order {order} from prepared paths: {t:.2f} s")
    if args.bootstrap:
        from calltrack.attribution import bootstrap_journeys

        _, t = timed(bootstrap_journeys, journeys, "markov", n=args.bootstrap)
        print(f"markov bootstrap, {args.bootstrap} replicates on prepared journeys: {t:.1f} s")
        _, t = timed(bootstrap_journeys, journeys, "shapley", n=args.bootstrap)
        print(f"shapley bootstrap, {args.bootstrap} replicates on prepared journeys: {t:.1f} s")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process maxrss (getrusage, includes the generated data): {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
