//! TLS (`rediss://`) for the connections the store opens by itself: the sharded
//! subscriptions' one connection per node. The redis crate opens the others (commands,
//! the revocation tail) with the same rustls, the same crypto provider and the same
//! roots: the system's store, or only `SSL_CERT_FILE` / `SSL_CERT_DIR` when either is
//! set (rustls-native-certs), which is how a private CA is trusted.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Installs aws-lc-rs as the process's rustls crypto provider, once, unless one is
/// installed already. rustls picks it by itself while it is the only provider built
/// in; installed, a dependency that someday builds `ring` in too cannot make the redis
/// crate's `ClientConfig::builder()` panic on the ambiguity. (reqwest and jsonwebtoken
/// name their provider themselves.)
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means a provider is already installed, which is what we want.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// A connection to one node: plain TCP (`redis://`), or TLS over it (`rediss://`).
pub enum NodeStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Connects to `addr` (`host:port`, `[v6]:port`), over TLS when `tls` (the server
/// name is the host, as the slot map names it), all within `timeout`.
pub async fn connect(addr: &str, tls: bool, timeout: Duration) -> Result<NodeStream, String> {
    let connected = tokio::time::timeout(timeout, async {
        let socket = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let _ = socket.set_nodelay(true);
        if !tls {
            return Ok(NodeStream::Plain(socket));
        }
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("not a TLS server name: {host:?}: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config()?));
        let stream = connector
            .connect(name, socket)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        Ok(NodeStream::Tls(Box::new(stream)))
    })
    .await;
    connected.map_err(|_| "connect timed out".to_owned())?
}

/// The client configuration, made per connection as the redis crate makes it (so a
/// renewed CA file is read by the next connection): the installed crypto provider
/// (aws-lc-rs if none is), the native roots, no client certificate.
fn client_config() -> Result<rustls::ClientConfig, String> {
    let found = rustls_native_certs::load_native_certs();
    // As the redis crate: a root source that cannot be read is an error, not less trust.
    if let Some(error) = found.errors.first() {
        return Err(format!("cannot load the TLS roots: {error}"));
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl NodeStream {
    /// Writes all of `bytes` and flushes: TLS may hold written bytes back until then.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        self.write_all(bytes).await?;
        self.flush().await
    }
}

impl AsyncRead for NodeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NodeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
