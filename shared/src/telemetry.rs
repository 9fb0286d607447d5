//! Logs and metrics set-up, and the redaction of secrets from logged query strings.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{LogFormat, Logging};

/// Query parameters whose values never reach a log line.
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "token", "secret", "password", "key", "code", "auth", "session", "cookie", "grant",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// The query string with the value of every secret-looking parameter replaced.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_param(name) => format!("{name}=[REDACTED]"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Installs the global subscriber writing to `writer`. A second call is a no-op.
pub fn init_with<W>(logging: &Logging, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // The filter was checked with the rest of the configuration.
    let filter = EnvFilter::try_new(&logging.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match logging.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// Logs to stdout.
pub fn init(logging: &Logging) {
    init_with(logging, std::io::stdout);
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::redact_query;

    #[test]
    fn secrets_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_query("token=abc&last_event_id=1-0&client_secret=s&sse_token=x"),
            "token=[REDACTED]&last_event_id=1-0&client_secret=[REDACTED]&sse_token=[REDACTED]"
        );
        assert_eq!(redact_query(""), "");
    }
}
