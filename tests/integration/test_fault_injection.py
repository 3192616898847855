"""Fault injection with real processes on loopback: `signoff serve` replicas on one PostgreSQL.

* Three replicas take requests spread across them; one is SIGKILLed while it holds outbox
  leases and SLA sweeps are due; the agent's endpoint answers 500 for a while, then 200.
  Afterwards every promise holds: one final status per request, each tier escalation once,
  every webhook delivered at least once with one `webhook-id` per request, no lease left.
* A lease holder frozen with SIGSTOP past its lease, then resumed, records nothing over the
  replica that took its work over.
* The database connection drops (a TCP proxy we cut): requests answer 503, then recover
  without a restart, and cross-replica wake-ups (LISTEN) come back too.

`SIGNOFF_FAULT_REQUESTS` sets how many requests the first test sends (default 300).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url
from standardwebhooks import Webhook

from tests.e2e.serve import run
from tests.support.http_receiver import HttpReceiver, Recorded, Reply
from tests.support.replicas import Replica, replicas
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

POSTGRES_URL = os.environ.get("SIGNOFF_TEST_POSTGRES_URL")
REQUESTS = int(os.environ.get("SIGNOFF_FAULT_REQUESTS", "300"))
KEY = "sk_fault_" + secrets.token_hex(8)
SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()
SLA = 2  # seconds per tier: three tiers, so an unanswered request ends after about 6 s
LEASE = 3  # seconds an outbox claim lasts
FINAL = {"approved", "modified", "rejected", "expired", "cancelled"}

# Short periods so that SLAs, takeovers and retries happen within the test.
TIMING = {
    "SIGNOFF_SWEEP_INTERVAL": "0.5",
    "SIGNOFF_OUTBOX_INTERVAL": "0.5",
    "SIGNOFF_OUTBOX_LEASE": str(LEASE),
    "SIGNOFF_LOG_LEVEL": "WARNING",
    "FAULT_SECRET": SECRET,
}


# -- set-up ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    """A fresh schema: `url` for Signoff (SQLAlchemy form), `dsn` for the test's queries."""

    url: str
    dsn: str

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())

    def scalar(self, sql: str, *params: Any) -> Any:
        [(value,)] = self.query(sql, *params)
        return value

    def via(self, port: int) -> Database:
        """The same schema reached through a proxy on `port`."""
        url = make_url(self.url).set(host="127.0.0.1", port=port)
        return Database(url.render_as_string(hide_password=False), self.dsn)


@pytest.fixture
def database() -> Iterator[Database]:
    if not POSTGRES_URL:
        pytest.skip("SIGNOFF_TEST_POSTGRES_URL is not set")
    schema = f"signoff_fault_{secrets.token_hex(5)}"
    plain = make_url(POSTGRES_URL).set(drivername="postgresql")
    admin = plain.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    dsn = plain.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield Database(url.render_as_string(False), dsn.render_as_string(False))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def write_config(path: Path, database_url: str, callback_url: str) -> Path:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    config = {
        "database_url": database_url,
        "agents": [
            {
                "id": "fault-bot",
                "key_sha256": digest,
                "callback_url": callback_url,
                "webhook_secret_env": "FAULT_SECRET",
            }
        ],
        "routing": {
            "start_tier": {"low": "junior", "medium": "junior", "high": "junior"},
            "on_timeout": "reject",
        },
        "tiers": [
            {"name": "junior", "sla": f"{SLA}s", "reviewers": ["web:jan"]},
            {"name": "senior", "sla": f"{SLA}s", "reviewers": ["web:sam"]},
            {"name": "manager", "sla": f"{SLA}s", "reviewers": ["web:max"]},
        ],
        "web": {"reviewers": {}},
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


HEADERS = {"Authorization": f"Bearer {KEY}"}


def body(i: int) -> dict[str, Any]:
    """Every third request is autonomous (resolved at once); the rest wait for a human."""
    return {
        "thread_id": f"fault-{i}",
        "action": {"kind": "refund", "summary": f"Refund order {i}", "payload": {"order": i}},
        "confidence": 0.95 if i % 3 == 0 else 0.3,
    }


# -- the agent ---------------------------------------------------------------------------------


@dataclass
class Copy:
    webhook_id: str
    request_id: str
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass
class Agent:
    """The agent's webhook endpoint: 500 for `fail_for` seconds after the first call, then 200."""

    fail_for: float
    delay: float = 0.01
    first: float | None = None
    copies: list[Copy] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, recorded: Recorded) -> Reply:
        now = time.monotonic()
        with self.lock:
            if self.first is None:
                self.first = now
            status = 500 if now - self.first < self.fail_for else 200
            copy = Copy(
                recorded.headers["webhook-id"],
                recorded.json()["data"]["id"],
                status,
                recorded.body,
                recorded.headers,
            )
            self.copies.append(copy)
        return Reply(status, delay=self.delay)

    def delivered(self) -> set[str]:
        with self.lock:
            return {c.webhook_id for c in self.copies if c.status == 200}

    def snapshot(self) -> list[Copy]:
        with self.lock:
            return list(self.copies)


# -- helpers -----------------------------------------------------------------------------------


def owner_pattern(replica: Replica) -> str:
    return f"%:{replica.pid}:%"


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


async def submit_all(
    client: httpx.AsyncClient, targets: list[Replica], count: int, on_half: asyncio.Event
) -> dict[int, str]:
    """Send `count` requests round-robin over the live replicas, with an Idempotency-Key, so
    a request whose replica died mid-call is retried on another without a duplicate."""
    ids: dict[int, str] = {}
    gate = asyncio.Semaphore(12)

    async def one(i: int) -> None:
        async with gate:
            for attempt in range(20):
                live = [r for r in targets if r.alive]
                replica = live[(i + attempt) % len(live)]
                try:
                    answer = await client.post(
                        f"{replica.url}/v1/requests",
                        json=body(i),
                        headers={**HEADERS, "Idempotency-Key": f"fault-{i}"},
                    )
                except httpx.TransportError:
                    continue
                if answer.status_code in (200, 201):
                    ids[i] = answer.json()["id"]
                    if len(ids) >= count // 2:
                        on_half.set()
                    return
                assert answer.status_code == 503, answer.text
                await asyncio.sleep(0.2)
            raise AssertionError(f"request {i} was refused 20 times")

    await asyncio.gather(*(one(i) for i in range(count)))
    return ids


# -- 1. three replicas, a SIGKILL, an agent that fails for a while ----------------------------


def test_three_replicas_keep_every_promise_through_a_kill_and_a_failing_agent(
    tmp_path: Path, database: Database
) -> None:
    agent = Agent(fail_for=4.0)  # < the first retry's 4.5 s: each webhook fails at most once
    with HttpReceiver() as receiver:
        receiver.set_handler("/resume", agent)
        config = write_config(tmp_path / "signoff.yaml", database.url, f"{receiver.url}/resume")
        with replicas(3, config, TIMING, tmp_path) as (a, b, c):
            kill_report = asyncio.run(_traffic_with_a_kill([a, b, c], c, database))
            assert not c.alive
            ids = kill_report["ids"]
            assert len(ids) == REQUESTS

            def settled() -> bool:
                pending = database.scalar("SELECT count(*) FROM requests WHERE status = 'pending'")
                open_rows = database.scalar(
                    "SELECT count(*) FROM outbox"
                    " WHERE status = 'pending' OR lease_owner IS NOT NULL"
                )
                return bool(pending == 0 and open_rows == 0)

            wait_until(settled, 60 + REQUESTS / 20, "every request and delivery to settle")
            _check_promises(database, agent, set(ids.values()), kill_report)
            copies = agent.snapshot()
            statuses = dict(database.query("SELECT status, count(*) FROM requests GROUP BY 1"))
            print(  # shown with `pytest -s`: what the run went through
                f"\n{len(ids)} requests; victim killed holding {kill_report['leased']} leases "
                f"with {kill_report['overdue']} overdue; {kill_report['cancelled']} cancelled; "
                f"{len(copies)} webhook POSTs ({sum(c.status == 500 for c in copies)} answered "
                f"500); statuses {statuses}"
            )
            verify = run("audit", "verify", "--config", str(config), cwd=tmp_path)
            assert verify.returncode == 0, verify.stdout + verify.stderr
            for replica in (a, b):
                assert replica.alive, replica.output()
                assert "Traceback" not in replica.output(), replica.output()


async def _traffic_with_a_kill(
    targets: list[Replica], victim: Replica, database: Database
) -> dict[str, Any]:
    half = asyncio.Event()
    report: dict[str, Any] = {}

    async def kill_when_busy() -> None:
        await half.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            leased, overdue = (
                await asyncio.to_thread(
                    database.query,
                    "SELECT (SELECT count(*) FROM outbox WHERE lease_owner LIKE %s),"
                    " (SELECT count(*) FROM requests"
                    "   WHERE status = 'pending' AND deadline_at < now())",
                    owner_pattern(victim),
                )
            )[0]
            if leased and overdue:
                break
            await asyncio.sleep(0.01)
        victim.kill()
        report.update(leased=leased, overdue=overdue)

    limits = httpx.Limits(max_connections=24)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        killer = asyncio.create_task(kill_when_busy())
        ids = await submit_all(client, targets, REQUESTS, half)
        await killer
        # The agent gives up on a quarter of the waiting requests, through the survivors.
        survivors = [r for r in targets if r.alive]
        waiting = [rid for i, rid in sorted(ids.items()) if i % 3 != 0][::4]
        cancelled = 0
        for n, rid in enumerate(waiting):
            answer = await client.post(
                f"{survivors[n % len(survivors)].url}/v1/requests/{rid}/cancel", headers=HEADERS
            )
            assert answer.status_code in (200, 409), answer.text  # 409: it timed out first
            cancelled += answer.status_code == 200
    report.update(ids=ids, cancelled=cancelled)
    return report


def _check_promises(
    database: Database, agent: Agent, ids: set[str], kill_report: dict[str, Any]
) -> None:
    # The victim died holding outbox leases while SLA sweeps were due.
    assert kill_report["leased"] > 0 and kill_report["overdue"] > 0, kill_report

    # Exactly one row per request, each with one final status, resolved once in the audit.
    rows = dict(database.query("SELECT id, status FROM requests"))
    assert set(rows) == ids
    assert set(rows.values()) <= FINAL, Counter(rows.values())
    assert Counter(rows.values())["cancelled"] == kill_report["cancelled"]
    resolved = Counter(
        rid
        for (rid,) in database.query("SELECT request_id FROM audit_events WHERE event = 'resolved'")
    )
    assert set(resolved) == ids and set(resolved.values()) == {1}

    # Every tier escalation once: per request, each (from, to) at most once, in chain order.
    escalations = Counter(
        database.query(
            "SELECT request_id, data->>'from_tier', data->>'to_tier' FROM audit_events"
            " WHERE event = 'escalated'"
        )
    )
    assert escalations and set(escalations.values()) == {1}
    moves = Counter(
        database.query(
            "SELECT request_id, from_tier, to_tier FROM tier_moves WHERE from_tier IS NOT NULL"
        )
    )
    assert moves == escalations
    timed_out = {rid for rid, status in rows.items() if status == "rejected"}
    per_request = Counter(rid for rid, _, _ in escalations)
    assert all(per_request[rid] == 2 for rid in timed_out)

    # Every webhook arrived, and all copies of one carry the same webhook-id and body.
    webhooks = dict(database.query("SELECT request_id, id FROM outbox WHERE kind = 'webhook'"))
    assert set(webhooks) == ids
    copies = agent.snapshot()
    assert agent.delivered() >= set(webhooks.values())
    by_request: defaultdict[str, list[Copy]] = defaultdict(list)
    for copy in copies:
        by_request[copy.request_id].append(copy)
    verifier = Webhook(SECRET)
    for rid, got in by_request.items():
        assert {c.webhook_id for c in got} == {webhooks[rid]}, rid
        assert len({c.body for c in got}) == 1, rid
        verifier.verify(got[0].body, got[0].headers)
    failures = sum(c.status == 500 for c in copies)
    assert failures > 0  # the agent really did fail for a while
    assert all(n <= 2 for n in Counter(c.webhook_id for c in copies if c.status == 500).values())

    # Nothing stuck: no lease held, nothing pending, nothing dead.
    statuses = Counter(dict(database.query("SELECT status, count(*) FROM outbox GROUP BY status")))
    assert set(statuses) == {"done"}, statuses
    assert database.scalar("SELECT count(*) FROM outbox WHERE lease_owner IS NOT NULL") == 0


# -- 2. a lease holder frozen past its lease ----------------------------------------------------


def test_a_frozen_lease_holder_records_nothing_over_the_replica_that_took_over(
    tmp_path: Path, database: Database
) -> None:
    held = threading.Event()
    release = threading.Event()

    async def hold_the_first(recorded: Recorded) -> Reply:
        if not held.is_set():
            held.set()
            # `release` is set from the test's thread, so it is a threading.Event.
            await asyncio.to_thread(release.wait, 30)
        return Reply(200)

    with HttpReceiver() as receiver:
        receiver.set_handler("/resume", hold_the_first)
        config = write_config(tmp_path / "signoff.yaml", database.url, f"{receiver.url}/resume")
        with replicas(2, config, TIMING, tmp_path) as pair:
            created = httpx.post(
                f"{pair[0].url}/v1/requests", json=body(0), headers=HEADERS, timeout=10
            )
            assert created.json()["status"] == "approved"
            rid = created.json()["id"]
            assert held.wait(10), "no webhook was sent"
            [(message_id, owner)] = database.query(
                "SELECT id, lease_owner FROM outbox WHERE request_id = %s", rid
            )
            [holder] = [r for r in pair if f":{r.pid}:" in owner]
            [taker] = [r for r in pair if r is not holder]
            holder.freeze()
            try:
                # Past the lease the other replica claims the row and delivers a second copy.
                receiver.wait_for_sync(2, path="/resume", timeout=LEASE + 10)
                wait_until(
                    lambda: (
                        database.scalar("SELECT status FROM outbox WHERE id = %s", message_id)
                        == "done"
                    ),
                    10,
                    "the replica that took over to finish",
                )
            finally:
                release.set()
                holder.thaw()
            holder.wait_for_line("lease lost", timeout=15)
            copies = [r for r in receiver.requests if r.path == "/resume"]
            assert {c.headers["webhook-id"] for c in copies} == {message_id}
            [(status, attempts, lease_owner)] = database.query(
                "SELECT status, attempts, lease_owner FROM outbox WHERE id = %s", message_id
            )
            assert (status, attempts, lease_owner) == ("done", 1, None)
            delivered = database.scalar(
                "SELECT count(*) FROM audit_events WHERE event = 'delivered' AND request_id = %s",
                rid,
            )
            assert delivered == 1
            assert taker.alive and holder.alive
            # The thawed replica serves on.
            again = httpx.post(
                f"{holder.url}/v1/requests", json=body(3), headers=HEADERS, timeout=10
            )
            assert again.status_code == 201


# -- 3. the database goes away for a few seconds ------------------------------------------------


def test_a_database_outage_answers_503_and_heals_without_a_restart(
    tmp_path: Path, database: Database
) -> None:
    target = make_url(database.url)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy, HttpReceiver() as rx:
        through = database.via(proxy.port)
        config = write_config(tmp_path / "signoff.yaml", through.url, f"{rx.url}/resume")
        # Long fallback polls: a long-poll that returns early was woken by LISTEN/NOTIFY.
        env = {**TIMING, "SIGNOFF_WAIT_POLL_INTERVAL": "30", "SIGNOFF_LOG_LEVEL": "INFO"}
        with replicas(2, config, env, tmp_path) as (a, b), httpx.Client(timeout=15) as client:
            assert (
                client.post(f"{a.url}/v1/requests", json=body(1), headers=HEADERS).status_code
                == 201
            )

            proxy.cut()
            started = time.monotonic()
            refused = []
            while time.monotonic() - started < 3:
                answer = client.post(f"{a.url}/v1/requests", json=body(2), headers=HEADERS)
                refused.append(answer.status_code)
                time.sleep(0.2)
            assert set(refused) == {503}, refused
            assert client.get(f"{b.url}/readyz").status_code == 503
            assert client.get(f"{b.url}/healthz").status_code == 200
            proxy.restore()

            def serves() -> bool:
                answer = client.post(f"{a.url}/v1/requests", json=body(4), headers=HEADERS)
                return answer.status_code == 201

            wait_until(serves, 15, "requests to succeed again")
            assert client.get(f"{b.url}/readyz").status_code == 200
            for replica in (a, b):
                replica.wait_for_line("listening again", timeout=15)

            created = client.post(f"{a.url}/v1/requests", json=body(5), headers=HEADERS).json()
            rid = created["id"]
            waited: dict[str, Any] = {}

            def long_poll() -> None:
                answer = httpx.get(
                    f"{a.url}/v1/requests/{rid}/wait",
                    params={"timeout": 25},
                    headers=HEADERS,
                    timeout=30,
                )
                waited.update(answer=answer, at=time.monotonic())

            poller = threading.Thread(target=long_poll)
            poller.start()
            time.sleep(0.5)
            cancelled_at = time.monotonic()
            cancel = client.post(f"{b.url}/v1/requests/{rid}/cancel", headers=HEADERS)
            assert cancel.status_code == 200
            poller.join(30)
            assert waited["answer"].json()["status"] == "cancelled"
            assert waited["at"] - cancelled_at < 3
            # Deliveries resumed as well: the cancel's webhook reached the agent.
            wait_until(
                lambda: any(
                    h.path == "/resume" and h.json()["data"]["id"] == rid for h in rx.requests
                ),
                15,
                "the cancel's webhook",
            )
            assert proxy.refused > 0
