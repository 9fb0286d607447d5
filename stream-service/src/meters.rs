//! The stream service's metrics, named in one place.

use authstream_store::events::GenerationStatus;

/// `authstream_stream_opens_total{transport, result}`: `ok`, `resumed` (by the
/// `as_resume` cookie), `finished` (204), or why the open was refused.
pub fn stream_open(transport: &'static str, result: &'static str) {
    metrics::counter!("authstream_stream_opens_total", "transport" => transport, "result" => result)
        .increment(1);
}

/// `authstream_streams_open{transport}`: streams currently open on this replica.
pub fn stream_opened(transport: &'static str) {
    metrics::gauge!("authstream_streams_open", "transport" => transport).increment(1.0);
}

pub fn stream_closed(transport: &'static str) {
    metrics::gauge!("authstream_streams_open", "transport" => transport).decrement(1.0);
}

/// `authstream_stream_lagged_disconnects_total`: streams cut off for falling behind.
pub fn lagged_disconnect() {
    metrics::counter!("authstream_stream_lagged_disconnects_total").increment(1);
}

/// `authstream_events_published_total{status}`.
pub fn event_published(status: GenerationStatus) {
    metrics::counter!("authstream_events_published_total", "status" => status.as_str())
        .increment(1);
}
