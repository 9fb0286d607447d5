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

/// A parameter name as `web::Query` reads it (`application/x-www-form-urlencoded`):
/// `+` is a space and `%XX` a byte, so that `%74oken` is checked as `token`.
fn decoded_name(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|h| char::from(*h).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'%'));
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string with the value of every secret-looking parameter replaced. Names
/// are decoded first, as the handlers decode them.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_param(&decoded_name(name)) => {
                format!("{name}=[REDACTED]")
            }
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
    use super::{decoded_name, redact_query};

    #[test]
    fn secrets_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_query("token=abc&last_event_id=1-0&client_secret=s&sse_token=x"),
            "token=[REDACTED]&last_event_id=1-0&client_secret=[REDACTED]&sse_token=[REDACTED]"
        );
        assert_eq!(redact_query(""), "");
    }

    #[test]
    fn percent_encoded_and_plus_encoded_names_are_decoded_before_the_check() {
        assert_eq!(
            redact_query("%74oken=abc&%54OKEN=def&sse%5Ftoken=x&last%5Fevent%5Fid=1-0"),
            "%74oken=[REDACTED]&%54OKEN=[REDACTED]&sse%5Ftoken=[REDACTED]&last%5Fevent%5Fid=1-0"
        );
        // `+` is a space in a form-encoded name; a broken escape stays as it is.
        assert_eq!(
            redact_query("client+secret=s&%zztoken=t&%7=1"),
            "client+secret=[REDACTED]&%zztoken=[REDACTED]&%7=1"
        );
        assert_eq!(decoded_name("a+b%2Bc%41%"), "a b+cA%");
    }
}
