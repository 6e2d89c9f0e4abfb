/// Milliseconds since the Unix epoch, UTC. Every timestamp OneKey stores or sends is one of these:
/// portable across SQLite and PostgreSQL, and native to JavaScript on the console.
pub type Millis = i64;

/// The wall clock. Only the edges (ingress, the API, the dispatch runner) read it; the dispatch engine
/// is handed the time instead.
pub fn now_millis() -> Millis {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
