"""The market-data stream: a hub of connections, their subscriptions and bounded outboxes, and one publisher."""

from mock_server.domain.stream.connection import CloseRequest, Connection, Outgoing
from mock_server.domain.stream.hub import StreamHub, StreamSettings
from mock_server.domain.stream.messages import (
    CLOSE_GOING_AWAY,
    CLOSE_UNAUTHORIZED,
    Authenticated,
    Heartbeat,
    Message,
    StreamFault,
    Subscribed,
)

__all__ = [
    "CLOSE_GOING_AWAY", "CLOSE_UNAUTHORIZED", "Authenticated", "CloseRequest", "Connection", "Heartbeat", "Message",
    "Outgoing", "StreamFault", "StreamHub", "StreamSettings", "Subscribed",
]
