//! A Socket.IO v5 / Engine.IO v4 client: WebSocket and HTTP long-polling with upgrade,
//! namespaces, acks, binary, reconnection and connection state recovery.
