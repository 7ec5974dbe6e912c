"""The outbox sender as its own process, sending to the fake channel server (tests/fakes/fake_sink.py).

    python tests/fakes/outbox_worker.py --db URL --sink URL --now 2026-11-22T09:00:00+07:00 \
        [--no-idempotent] [--concurrency 4] [--batch 20]

Recovers what a previous (killed) run left in flight, sends everything due, prints one JSON line
({"sent": n, "requeued": n, "in_doubt": n}) and exits. The crash test kills it with SIGKILL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bot.domain.clock import FixedClock  # noqa: E402
from bot.domain.settings import Settings  # noqa: E402
from bot.messaging.outbox import OutboxSender  # noqa: E402
from bot.runtime.bootstrap import bootstrap  # noqa: E402
from tests.fakes.fake_sink import SinkSender  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--now", required=True)
    parser.add_argument("--channel", default="sink")
    parser.add_argument("--no-idempotent", action="store_true")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch", type=int, default=20)
    args = parser.parse_args()
    settings = Settings(database_url=args.db, content_dir=str(ROOT / "content"), _env_file=None)  # type: ignore[call-arg]
    app = bootstrap(settings, FixedClock(datetime.fromisoformat(args.now))).app
    sink = SinkSender(args.sink, channel=args.channel, idempotent=not args.no_idempotent)
    sender = OutboxSender(app, {args.channel: sink}, concurrency=args.concurrency, batch_size=args.batch)
    try:
        recovery = await sender.recover()
        sent = await sender.drain()
    finally:
        await sink.aclose()
        await app.db.dispose()
    sys.stdout.write(
        json.dumps({"sent": sent, "requeued": recovery.requeued, "in_doubt": recovery.in_doubt}) + "\n"
    )


if __name__ == "__main__":
    asyncio.run(main())
