//! An open stream read within a patience, and what tests read of streams: event ids,
//! the resume cookie, readiness of the subscriptions.

use super::*;

/// An open event stream: the client's [`SseReader`], read within a patience, and the
/// resume cookie its open set.
#[derive(Debug)]
pub struct OpenStream {
    reader: SseReader,
    /// The `as_resume` cookie's value.
    pub cookie: String,
}

impl OpenStream {
    /// The events of a stream open, which must be a `200` setting a resume cookie.
    pub fn new(res: Response) -> Self {
        assert_eq!(res.status(), 200, "the stream did not open");
        let cookie = resume_cookie(res.headers()).expect("a resume cookie");
        Self {
            reader: SseReader::new(OPEN, res),
            cookie,
        }
    }

    /// The reader itself.
    pub fn reader(&mut self) -> &mut SseReader {
        &mut self.reader
    }

    /// The next event, or `None` once the server ended the stream; panics when none
    /// comes within [`PATIENCE`].
    pub async fn next(&mut self) -> Option<SseEvent> {
        self.next_within(PATIENCE).await
    }

    /// The next event, or `None` once the server ended the stream (or the connection
    /// broke); panics when none comes within `patience`, or when an event's data is
    /// not a stream event.
    pub async fn next_within(&mut self, patience: Duration) -> Option<SseEvent> {
        let next = tokio::time::timeout(patience, self.reader.next())
            .await
            .expect("no event in time");
        match next {
            Ok(event) => event,
            Err(e) if e.kind() == ErrorKind::Body => panic!("{e}"),
            Err(_) => None,
        }
    }

    /// The next `n` events; panics if the stream ends first.
    pub async fn take(&mut self, n: usize) -> Vec<SseEvent> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next().await.expect("the stream ended early"));
        }
        out
    }

    /// Everything until the server ends the stream.
    pub async fn until_end(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }
}

/// The ids of the progress events among `events`.
pub fn ids(events: &[SseEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.data.event == StreamEventKind::Progress)
        .map(|e| e.id.clone())
        .collect()
}

/// The `Set-Cookie` of the `as_resume` cookie, whole.
pub fn set_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("as_resume="))
        .map(str::to_owned)
}

/// The value of the `as_resume` cookie set.
pub fn resume_cookie(headers: &HeaderMap) -> Option<String> {
    set_cookie(headers).and_then(|c| {
        c.split(';')
            .next()?
            .strip_prefix("as_resume=")
            .map(str::to_owned)
    })
}

/// Enough events of `size` bytes to fill the largest send buffer the kernel may give
/// the server's socket (`tcp_wmem` max), plus the hub's queue, with room to spare.
pub fn events_to_overflow(size: usize) -> usize {
    let max_send_buffer = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse::<usize>().ok())
        .unwrap_or(4 << 20);
    max_send_buffer / size + 64
}

/// A fresh random secret that was never minted.
pub fn unknown_secret() -> String {
    StreamSecret::generate().unwrap().expose().to_owned()
}

/// The nodes of a readiness that are up and delivering, sorted.
pub fn delivering(readiness: &Readiness) -> Vec<String> {
    let mut nodes: Vec<String> = readiness
        .nodes
        .iter()
        .flatten()
        .filter(|n| n.up && n.delivering == Some(true))
        .map(|n| n.node.clone())
        .collect();
    nodes.sort();
    nodes
}

/// Polls `/readyz` until it is `ready` with exactly `nodes` (sorted `host:port`) up
/// and delivering; panics after `within`. `strict`: every answer on the way must be a
/// `200` (a replica that serves); otherwise no answer or another is waited past (a
/// process that starts).
pub async fn until_all_deliver(
    client: &StreamClient,
    nodes: &[String],
    within: Duration,
    strict: bool,
) -> Readiness {
    let deadline = Instant::now() + within;
    loop {
        match client.readyz().await {
            Ok(readiness) => {
                if readiness.status == ReadyStatus::Ready && delivering(&readiness) == nodes {
                    return readiness;
                }
                assert!(
                    Instant::now() < deadline,
                    "never all delivering: {readiness:?}"
                );
            }
            Err(e) => {
                assert!(!strict, "{e}: {:?}", e.problem());
                assert!(Instant::now() < deadline, "never ready: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
