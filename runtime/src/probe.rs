//! `<binary> healthcheck`: asks this process's own server for `/readyz`, for container
//! health checks in an image without a shell or curl. Exit status 0 when ready.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `GET /readyz` on the loopback port of `bind` (e.g. `0.0.0.0:8081`): ready when it
/// answers 200 within two seconds.
pub fn readyz(bind: &str) -> Result<(), String> {
    let port: u16 = bind
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("no port in {bind:?}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let timeout = Duration::from_secs(2);
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .and_then(|()| stream.write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n"))
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .map_err(|e| format!("{addr}: {e}"))?;
    match &head {
        b"HTTP/1.0 200" | b"HTTP/1.1 200" => Ok(()),
        other => Err(format!(
            "{addr}/readyz answered {}",
            String::from_utf8_lossy(other)
        )),
    }
}

/// A binary's command-line arguments, after answering `<binary> healthcheck` (which
/// asks the server bound at `bind_var`, default `default`, and exits with its answer).
pub fn args_unless_healthcheck(bind_var: &str, default: &str) -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bind = || crate::config::string_or(&crate::config::ProcessEnv, bind_var, default);
    if let Some(code) = run_if_asked(&args, bind) {
        std::process::exit(code);
    }
    args
}

/// Runs the health check when the arguments ask for it: `Some(exit code)`, else `None`.
pub fn run_if_asked(args: &[String], bind: impl FnOnce() -> String) -> Option<i32> {
    match args {
        [command] if command == "healthcheck" => Some(match readyz(&bind()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("not ready: {e}");
                1
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn answering(status_line: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let bind = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 256];
            let _ = conn.read(&mut buf).unwrap();
            conn.write_all(status_line.as_bytes()).unwrap();
        });
        bind
    }

    #[test]
    fn ready_only_on_a_200() {
        assert!(readyz(&answering("HTTP/1.1 200 OK\r\n\r\n")).is_ok());
        let err = readyz(&answering("HTTP/1.1 503 Service Unavailable\r\n\r\n")).unwrap_err();
        assert!(err.contains("503"), "{err}");
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(readyz(&closed.to_string()).is_err());
        assert!(readyz("no-port").is_err());
    }
}
