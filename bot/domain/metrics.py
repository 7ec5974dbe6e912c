"""What the bot counts, in Prometheus terms; served at /metrics by bot.runtime.metrics.

Each `App` carries its own `Metrics` with its own registry (not prometheus_client's global one),
so that several apps in one process (the tests) count apart. The counters live with the App,
not in bot/runtime, because the code that counts sits in lower layers: the router counts
dialogue steps, the incoming service its errors, the outbox its sends, the channels' rate
limiters the platforms' 429s, the scheduler its leadership. The outbox's depth is read from
the database when /metrics is scraped (bot.runtime.metrics), so every instance reports it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Step latency buckets (seconds): the dialogue target is p95 < 10 ms, reports take longer.
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """The counters and gauges of one app, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.steps = Counter(
            "khuyenhoc_dialogue_steps",
            "Incoming messages handled (one dialogue step each), by channel.",
            ["channel"],
            registry=r,
        )
        self.step_errors = Counter(
            "khuyenhoc_dialogue_errors",
            "Dialogue steps that failed and answered 'something went wrong', by channel.",
            ["channel"],
            registry=r,
        )
        self.step_seconds = Histogram(
            "khuyenhoc_dialogue_step_seconds",
            "Time to handle one incoming message, replies included (not their sending).",
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.sends = Counter(
            "khuyenhoc_outbox_sends",
            "Outbox sends by channel and outcome: sent, retry, rate_limited, blocked, failed.",
            ["channel", "status"],
            registry=r,
        )
        self.rate_limited = Counter(
            "khuyenhoc_platform_rate_limited",
            "429 (flood limit) answers from a platform, by channel, retried or not.",
            ["channel"],
            registry=r,
        )
        self.scheduler_leader = Gauge(
            "khuyenhoc_scheduler_leader",
            "1 while this instance holds the scheduler lease (and so runs the jobs and the outbox sender).",
            ["holder"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "khuyenhoc_outbox_depth",
            "Outbox messages not yet in a final state (queued or sending), by channel; read at scrape time.",
            ["channel"],
            registry=r,
        )
        self.outbox_oldest_due_age = Gauge(
            "khuyenhoc_outbox_oldest_due_age_seconds",
            "How long the oldest unsent message that is due has waited since it became due, by channel.",
            ["channel"],
            registry=r,
        )
