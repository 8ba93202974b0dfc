"""Putting a snapshot back into freshly built services, then wiring their write-through to the state file."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from mock_server.domain.clock import Clock
from mock_server.domain.idempotency import IdempotencyStore
from mock_server.domain.ids import IdGenerator
from mock_server.domain.oauth.server import AuthorizationServer
from mock_server.domain.persistence.store import SavedClock, Snapshot, StateWriter
from mock_server.domain.trading.engine import TradingEngine
from mock_server.domain.webhooks.alerts import AlertWatcher
from mock_server.domain.webhooks.dispatcher import Dispatcher
from mock_server.domain.webhooks.endpoints import EndpointRegistry


def key_id(signing_key: str) -> str:
    """What the state file keeps of the JWT signing key: enough to tell another key, not the key itself."""
    return hashlib.sha256(f"tradefence-state:{signing_key}".encode()).hexdigest()[:16]


def apply_clock(clock: Clock, saved: SavedClock | None) -> None:
    """A frozen clock comes back at the instant it showed; a running one as far ahead of real time as it was."""
    if saved is None:
        return
    if saved.frozen:
        clock.freeze()
        clock.set(saved.at)
    else:
        clock.resume()
        clock.advance(timedelta(seconds=saved.offset - clock.offset))


def resume(snapshot: Snapshot, writer: StateWriter, *, clock: Clock, ids: IdGenerator, webhook_ids: IdGenerator,
           engine: TradingEngine, oauth: AuthorizationServer, endpoints: EndpointRegistry, dispatcher: Dispatcher,
           idempotency: IdempotencyStore, alerts: AlertWatcher) -> None:
    """Restore everything ``snapshot`` holds (nothing is written or emitted while restoring), then make every
    service write its later changes through ``writer``.

    Ids made after the restart sort after every restored one (``advance_past``), so cursors and creation order
    hold even with a frozen clock; the seeded id streams themselves differ per start (the ``epoch``).
    """
    for saved in snapshot.accounts:
        engine.restore_account(saved.subject, saved.created_at, saved.state)
    for grant_id, grant in snapshot.grants:
        oauth.restore_grant(grant_id, grant)
    for client in snapshot.clients:
        oauth.restore_client(client)
    main_ids = [newest.id for saved in snapshot.accounts if (newest := saved.state.orders.newest()) is not None]
    main_ids += [grant_id for grant_id, _ in snapshot.grants]
    if main_ids:
        ids.advance_past(max(main_ids))
    endpoints.restore(snapshot.endpoints)
    dispatcher.restore([(saved.event, saved.sequence, saved.deliveries) for saved in snapshot.events])
    hook_ids = [e.id for e in snapshot.endpoints] + [saved.event.id for saved in snapshot.events]
    if hook_ids:
        webhook_ids.advance_past(max(hook_ids))
    for saved_response in snapshot.responses:
        idempotency.restore(saved_response.scope, saved_response.key, saved_response.fingerprint,
                            saved_response.expires_at, saved_response.response)
    alerts.restore(snapshot.alerts)

    writer.replace_endpoints(endpoints.all())
    writer.save_clock(clock.frozen, clock.now(), clock.offset)
    clock.on_change(lambda: writer.save_clock(clock.frozen, clock.now(), clock.offset))
    engine.persist_with(writer)
    oauth.persist_with(writer)
    endpoints.persist_with(writer)
    dispatcher.persist_with(writer)
    idempotency.persist_with(writer)
    alerts.persist_with(writer)
    if any(saved.state.positions for saved in snapshot.accounts):
        alerts.ensure_running()  # normally started by the first fill; restored positions need watching too
