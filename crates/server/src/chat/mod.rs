//! The chat application on Socket.IO (docs/chat-protocol.md). (Interface fixed; the
//! implementation is being written.)

use serde::Deserialize;

/// The chat's limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChatSettings {
    /// Longest message, in characters.
    pub message_length: usize,
    /// Most rooms one socket may be in.
    pub rooms_per_socket: usize,
    /// Largest history page.
    pub history_page: usize,
    /// Events per second per connection (token bucket; burst twice that).
    pub events_per_second: u32,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            message_length: 2000,
            rooms_per_socket: 50,
            history_page: 50,
            events_per_second: 20,
        }
    }
}
