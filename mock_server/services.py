"""Wire the domain together from a Config: the one place that knows every service (the composition root)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mock_server.config import Config
from mock_server.domain.ai import Recommender
from mock_server.domain.clock import Clock
from mock_server.domain.idempotency import IdempotencyStore
from mock_server.domain.ids import IdGenerator
from mock_server.domain.market.simulator import MarketSimulator
from mock_server.domain.market.universe import Universe
from mock_server.domain.oauth.clients import SANDBOX_CLIENT, OAuthClient
from mock_server.domain.oauth.server import AuthorizationServer, OAuthSettings
from mock_server.domain.ratelimit import RateLimiter, RateLimitSettings
from mock_server.domain.trading.engine import TradingEngine
from mock_server.domain.trading.magic import magic_instruments


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

    def reset(self) -> None:
        """Back to the state right after start: no accounts, orders, grants, keys or buckets."""
        self.engine.reset()
        self.oauth.reset()
        self.idempotency.reset()
        self.rate_limiter.reset()


def build_services(config: Config, clock: Clock | None = None) -> Services:
    clock = clock or Clock()
    ids = IdGenerator(config.seed, clock)
    universe = Universe.load_default().with_instruments(magic_instruments())
    simulator = MarketSimulator(universe, config.seed, step=timedelta(seconds=config.tick_seconds))
    clients = {SANDBOX_CLIENT.client_id: SANDBOX_CLIENT}
    for entry in config.clients:
        clients[entry.client_id] = OAuthClient(entry.client_id, entry.client_secret, entry.redirect_uris, entry.scopes)
    oauth = AuthorizationServer(
        OAuthSettings(issuer=config.issuer, audience="tradefence-api", signing_key=config.token_key,
                      access_token_ttl=timedelta(seconds=config.access_token_ttl),
                      default_subject=config.default_subject),
        clients, clock, ids,
    )
    return Services(
        config=config,
        clock=clock,
        ids=ids,
        simulator=simulator,
        engine=TradingEngine(simulator, clock, ids, market_mode=config.market_mode,
                             starting_cash=config.starting_cash),
        oauth=oauth,
        rate_limiter=RateLimiter(RateLimitSettings(config.rate_limit_capacity, config.rate_limit_per_second)),
        idempotency=IdempotencyStore(clock),
        recommender=Recommender(simulator, clock, config.seed),
    )
