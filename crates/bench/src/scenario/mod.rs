//! The scenarios. Each spawns its connection tasks, walks the [`crate::harness::Harness`]
//! through its phases and returns what it counted.

pub mod chat;
pub mod churn;
pub mod echo;
pub mod fanout;
pub mod idle;
