"""Optional persistence (``--state PATH``): accounts, orders, positions, tokens and pending webhook deliveries in
one SQLite file, so a restart — even ``kill -9`` — loses nothing the emulator accepted. Without ``--state``
everything stays in memory, as before.

Design choices:

- **Write-through, before the answer.** Each domain service that owns state gets a store through
  ``persist_with`` and writes its change, as one committed transaction, under its own lock and before the caller
  hears the outcome: the trading engine writes the account (balances, positions) and the orders that call placed
  or changed (place, cancel, fill, expiry, reset, batch, catch-up); the authorization
  server writes a grant on issue, rotation and revocation; the dispatcher writes an event with its deliveries when
  published and a delivery after each attempt. There is no buffer to flush, so nothing is lost between a 201 and
  a kill. WAL with ``synchronous=FULL`` makes a returned commit durable.
- **One row per order**, not one blob per account: a write touches the account row and the orders that changed,
  so its cost grows neither with the order history nor with the orders resting beside them. The account row
  says how far every resting order had been evaluated (``evaluated_to``): an order written when it was placed
  and untouched since comes back evaluated that far, not from its own old ``last_step``.
- **Same seed, same signing key.** Access tokens are JWTs signed with ``Config.token_key`` (from the seed unless
  ``signing_key`` is set). The file records the seed and a hash of the key; starting with another seed or key is
  refused with a message naming the setting, instead of silently adopting or ignoring the file.
- **Ids never repeat.** Each start on a file is an ``epoch``: the seeded id streams of later starts are their own
  (no refresh token, code or secret of an earlier run comes out again) and new ids sort after every stored one.
  The first start on a fresh file is identical to an in-memory run.
- **Also kept:** OAuth clients registered through the control plane, webhook endpoints, completed
  ``Idempotency-Key`` records (replays survive a restart), the alert conditions that already fired, the clock
  (a frozen clock stays frozen at its instant; a running one keeps its offset) and a market mode set through the
  control plane.
- **Not kept:** authorization codes (they live ten minutes: restart the flow), in-flight ``Idempotency-Key``
  claims (the key is free again), injected faults, the request journal, rate-limit buckets and settings, and
  market-data connections. A webhook attempt cut short by the kill is made again, with the same ``webhook-id``.
- **Catch-up is not a change.** A read that replays simulator steps without filling, triggering or expiring
  anything writes nothing; after a restart the steps since the account was last written are replayed again,
  with the same prices and so the same (empty) outcome. Only a very long clock jump, thinned differently on the
  second replay, could differ. Switching the market mode writes every account, so no step is replayed under
  hours it was not evaluated with.
- A write that fails (disk full) is an error for the request that caused it; memory is then ahead of the file.
- ``POST /_mock/seed`` empties the file and starts it over with the new seed (restart with ``--seed N`` then);
  ``POST /_mock/reset`` empties what it resets.
"""

from mock_server.domain.persistence.store import Snapshot, StateError, StateStore, StateWriter

__all__ = ["Snapshot", "StateError", "StateStore", "StateWriter"]
