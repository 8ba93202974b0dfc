"""Wire the domain together from a Config: the one place that knows every service (the composition root)."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import timedelta

import orjson

from mock_server.config import Config
from mock_server.domain.ai import Recommender
from mock_server.domain.clock import Clock
from mock_server.domain.faults import Faults
from mock_server.domain.idempotency import IdempotencyStore
from mock_server.domain.ids import IdGenerator
from mock_server.domain.journal import Journal
from mock_server.domain.market.simulator import MarketSimulator
from mock_server.domain.market.universe import Universe
from mock_server.domain.oauth.clients import SANDBOX_CLIENT, OAuthClient
from mock_server.domain.oauth.server import AuthorizationServer, OAuthSettings
from mock_server.domain.persistence import StateStore
from mock_server.domain.persistence.resume import apply_clock, key_id, resume
from mock_server.domain.ratelimit import RateLimiter, RateLimitSettings
from mock_server.domain.stream import StreamHub, StreamSettings
from mock_server.domain.trading.engine import TradingEngine
from mock_server.domain.trading.magic import magic_instruments
from mock_server.domain.trading.models import TradingEvent
from mock_server.domain.webhooks.alerts import AlertSettings, AlertWatcher
from mock_server.domain.webhooks.dispatcher import Dispatcher, PendingDelivery, RetryPolicy, Transport
from mock_server.domain.webhooks.endpoints import EndpointRegistry, EndpointSource
from mock_server.domain.webhooks.events import EventFactory
from mock_server.domain.webhooks.samples import Samples
from mock_server.domain.webhooks.service import Webhooks
from mock_server.outbound import RequestsTransport
from mock_server.re2_patterns import compile_pattern
from mock_server.web import render


@dataclass
class Services:
    config: Config
    clock: Clock
    ids: IdGenerator
    simulator: MarketSimulator
    engine: TradingEngine
    oauth: AuthorizationServer
    rate_limiter: RateLimiter
    idempotency: IdempotencyStore
    recommender: Recommender
    stream: StreamHub
    webhooks: Webhooks
    alerts: AlertWatcher
    faults: Faults
    request_ids: IdGenerator  # X-Request-Id when the client sends none: a stream of its own, rebuilt by a reseed
    journal: Journal
    transport: Transport  # kept so that a reseed rebuilds the webhooks with the same one
    store: StateStore | None = None  # the --state file, when there is one (a reseed hands it to the new services)

    def reset(self) -> None:
        """Back to the state right after start: no accounts, orders, grants, keys, buckets or faults; no webhook
        events or control-plane endpoints (configured endpoints stay). The request journal stays: it is a record of
        what happened, reset included (``DELETE /_mock/journal`` empties it)."""
        self.engine.reset()
        self.oauth.reset()
        self.idempotency.reset()
        self.rate_limiter.reset()
        self.webhooks.reset()
        self.alerts.reset()
        self.faults.clear()
        self.open_configured_accounts()

    def open_configured_accounts(self) -> None:
        """`[[accounts]]` of the config exist from the start (and after a reset) with their cash; an account
        restored from a state file keeps what it had."""
        for entry in self.config.accounts:
            if not self.engine.has_account(entry.subject):
                self.engine.open_account(entry.subject, entry.cash)

    def close(self, grace: float | None = None) -> list[PendingDelivery]:
        """Stop background work and close open connections (market-data sockets get a 1001 close frame).

        Webhook deliveries get ``grace`` real seconds (default ``webhook_drain_seconds``) to finish; the ones still
        pending are logged with their event ids and returned, so shutting down never drops an event silently.
        """
        self.alerts.stop()
        pending = self.webhooks.stop(self.config.webhook_drain_seconds if grace is None else grace)
        self.stream.close()
        if self.store is not None:  # pending deliveries stay pending in the file: the next start re-queues them
            self.store.close()
        return pending


def build_services(config: Config, clock: Clock | None = None, *, transport: Transport | None = None,
                   journal: Journal | None = None, store: StateStore | None = None) -> Services:
    """``transport`` sends webhook attempts (default: HTTP with requests); tests may pass a fake one.

    With ``config.state`` (or a ``store`` handed over by a reseed) the services start from what the state file
    holds and write every change through to it (``domain/persistence``); a file made with another seed or signing
    key raises ``StateError``.
    """
    clock = clock or Clock()
    transport = transport or RequestsTransport(config.webhook_ca_file or None)
    if store is None and config.state:
        store = StateStore(config.state, loads=orjson.loads)  # a restart reads every order's JSON
    try:
        snapshot = store.open(config.seed, key_id(config.token_key)) if store is not None else None
    except Exception:
        if store is not None:
            store.close()
        raise
    epoch = snapshot.epoch if snapshot is not None else 0
    if snapshot is not None:
        apply_clock(clock, snapshot.clock)
    ids = IdGenerator(config.seed, clock, epoch=epoch)
    universe = Universe.load_default().with_instruments(magic_instruments())
    simulator = MarketSimulator(universe, config.seed, step=timedelta(seconds=config.tick_seconds))
    clients = {SANDBOX_CLIENT.client_id: SANDBOX_CLIENT}
    for entry in config.clients:
        clients[entry.client_id] = OAuthClient(entry.client_id, entry.client_secret, entry.redirect_uris, entry.scopes)
    oauth = AuthorizationServer(
        OAuthSettings(issuer=config.issuer, audience="tradefence-api", signing_key=config.token_key,
                      access_token_ttl=timedelta(seconds=config.access_token_ttl),
                      default_subject=config.default_subject, consent_page=config.consent == "page"),
        clients, clock, ids,
    )
    webhook_ids = IdGenerator(config.seed, clock, stream="webhooks", epoch=epoch)  # evt_, we_, alt_: own stream
    webhooks = _webhooks(config, clock, simulator, transport, webhook_ids, epoch)
    market_mode = snapshot.market_mode if snapshot is not None and snapshot.market_mode else config.market_mode
    engine = TradingEngine(simulator, clock, ids, market_mode=market_mode, starting_cash=config.starting_cash)
    alerts = AlertWatcher(
        engine.open_positions, simulator.price, clock, webhook_ids,
        AlertSettings(config.alert_loss_percent, config.alert_move_percent, config.alert_check_seconds),
        webhooks.on_alert,
    )

    def publish(event: TradingEvent) -> None:
        """Part of the trade, so done before the trade's answer: the fill's webhook event is recorded (and queued
        for delivery), and the first fill opens a position worth watching."""
        webhooks.on_trading_event(event)
        alerts.ensure_running()

    engine.listen(publish)
    services = Services(
        config=config,
        clock=clock,
        ids=ids,
        simulator=simulator,
        engine=engine,
        oauth=oauth,
        rate_limiter=RateLimiter(RateLimitSettings(config.rate_limit_capacity, config.rate_limit_per_second)),
        idempotency=IdempotencyStore(clock),
        recommender=Recommender(simulator, clock, config.seed),
        stream=StreamHub(simulator, clock, oauth.verify, StreamSettings(
            heartbeat_seconds=config.heartbeat_seconds, queue_size=config.stream_queue_size,
            require_auth=config.require_auth, auth_timeout_seconds=config.stream_auth_timeout)),
        webhooks=webhooks,
        alerts=alerts,
        faults=Faults(config.seed, clock, IdGenerator(config.seed, clock, stream="faults").new, compile_pattern),
        request_ids=IdGenerator(config.seed, clock, stream="requests"),
        journal=journal if journal is not None else Journal(config.journal_size),
        transport=transport,
        store=store,
    )
    if store is not None and snapshot is not None:
        resume(snapshot, store.writer(), clock=clock, ids=ids, webhook_ids=webhook_ids, engine=engine,
               oauth=oauth, endpoints=webhooks.endpoints, dispatcher=webhooks.dispatcher,
               idempotency=services.idempotency, alerts=alerts)
    services.open_configured_accounts()
    return services


def reseeded(services: Services, seed: int) -> Services:
    """Fresh services for another seed, as a restart with ``--seed`` would build them, except that the clock keeps
    its reading and frozen state and the request journal is kept. The caller swaps them in and closes the old ones.

    Rebuilding (rather than reseeding each service in place) is what makes the result honest: every seeded
    stream (prices, ids, secrets, jitter, fault draws) starts where a fresh start would, with nothing left over.

    A state file is handed over to the new services (the old ones no longer own it, so closing them leaves it
    open) and started over for the new seed; the old services' late writes are ignored.
    """
    store, services.store = services.store, None
    if store is not None:
        store.start_over()
    return build_services(replace(services.config, seed=seed), services.clock.fork(),
                          transport=services.transport, journal=services.journal, store=store)


def _webhooks(config: Config, clock: Clock, simulator: MarketSimulator, transport: Transport,
              ids: IdGenerator, epoch: int = 0) -> Webhooks:
    """Endpoints from the config, the dispatcher, and events rendered by the web layer's ``render`` (the JSON
    shapes of openapi.yaml), injected here so the domain never imports the web layer. ``epoch`` (restarts from a
    state file) keeps a restarted emulator from handing out the secrets its first run made."""
    secrets = f"webhook-secrets:{config.seed}" + (f":{epoch}" if epoch else "")
    registry = EndpointRegistry(ids, clock, random.Random(secrets))
    for entry in config.webhook_endpoints:
        registry.add(entry.url, secret=entry.secret, events=entry.events, source=EndpointSource.CONFIG)
    policy = RetryPolicy(config.webhook_retry_schedule, config.webhook_retry_jitter, config.webhook_timeout)
    dispatcher = Dispatcher(registry, clock, transport, policy, random.Random(f"webhook-retries:{config.seed}"))
    return Webhooks(registry, EventFactory(ids, render), dispatcher, Samples(simulator.quote, clock, ids), clock)
