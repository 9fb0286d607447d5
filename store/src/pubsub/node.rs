//! One node's subscribed connection: logs in, subscribes in batches per slot, and
//! reports what it hears to the manager.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::canary::Canaries;
use super::protocol::{Login, NodeEvent, PING_EVERY};
use super::resp::{Frame, Push, classify, encode, parse};
use crate::PubSubMessage;

/// One node's subscription connection, until it fails or the manager goes.
pub(super) async fn run_node(
    addr: String,
    login: Login,
    mut commands: mpsc::UnboundedReceiver<Vec<u8>>,
    events: mpsc::UnboundedSender<NodeEvent>,
    sender: broadcast::Sender<PubSubMessage>,
    timeout: Duration,
    canaries: Arc<parking_lot::Mutex<Canaries>>,
) {
    let outcome = serve_node(
        &addr,
        &login,
        &mut commands,
        &events,
        &sender,
        timeout,
        &canaries,
    )
    .await;
    match outcome {
        Ok(()) => {}
        Err(e) => tracing::warn!(node = %addr, error = %e, "sharded subscription connection lost"),
    }
    let _ = events.send(NodeEvent::Down(addr));
}

pub(super) async fn serve_node(
    addr: &str,
    login: &Login,
    commands: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    events: &mpsc::UnboundedSender<NodeEvent>,
    sender: &broadcast::Sender<PubSubMessage>,
    timeout: Duration,
    canaries: &parking_lot::Mutex<Canaries>,
) -> Result<(), String> {
    let mut socket = crate::tls::connect(addr, login.tls, timeout).await?;
    let mut buf = Vec::with_capacity(4096);
    if let Some(password) = &login.password {
        let auth = match &login.username {
            Some(user) => encode(&[b"AUTH", user.as_bytes(), password.as_bytes()]),
            None => encode(&[b"AUTH", password.as_bytes()]),
        };
        socket.send(&auth).await.map_err(|e| e.to_string())?;
        let reply = tokio::time::timeout(timeout, read_frame(&mut socket, &mut buf))
            .await
            .map_err(|_| "AUTH timed out".to_owned())??;
        if reply != Frame::Simple("OK".into()) {
            return Err(format!("AUTH refused: {reply:?}"));
        }
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    let mut heard = Instant::now();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => socket.send(&command).await.map_err(|e| e.to_string())?,
                None => return Ok(()),
            },
            _ = ping.tick() => {
                if heard.elapsed() > PING_EVERY * 2 + timeout {
                    return Err("the node answered nothing".into());
                }
                socket.send(&encode(&[b"PING"])).await.map_err(|e| e.to_string())?;
            }
            read = socket.read(&mut chunk) => {
                let n = read.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("closed by the node".into());
                }
                heard = Instant::now();
                buf.extend_from_slice(&chunk[..n]);
                let mut at = 0;
                while let Some((frame, used)) = parse(&buf[at..]).map_err(|e| e.0.to_owned())? {
                    at += used;
                    let event = match classify(&frame) {
                        Push::Message { channel, payload } => {
                            // A canary is noted and goes no further (cheap test first:
                            // most messages are events).
                            if channel.contains("{canary:")
                                && canaries.lock().delivered(addr, &channel)
                            {
                                continue;
                            }
                            // No receivers is fine: nobody is streaming right now.
                            let _ = sender.send(PubSubMessage::Message {
                                channel: channel.into(),
                                payload: payload.into(),
                            });
                            continue;
                        }
                        Push::Subscribed(c) => NodeEvent::Subscribed(addr.to_owned(), c.into()),
                        Push::Unsubscribed(c) => NodeEvent::Unsubscribed(addr.to_owned(), c.into()),
                        Push::Moved { slot, addr: to } => NodeEvent::Moved(addr.to_owned(), slot, to),
                        Push::Error(e) => NodeEvent::Refused(addr.to_owned(), e),
                        Push::Pong | Push::Other => continue,
                    };
                    let _ = events.send(event);
                }
                buf.drain(..at);
            }
        }
    }
}

pub(super) async fn read_frame(
    socket: &mut crate::tls::NodeStream,
    buf: &mut Vec<u8>,
) -> Result<Frame, String> {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some((frame, used)) = parse(buf).map_err(|e| e.0.to_owned())? {
            buf.drain(..used);
            return Ok(frame);
        }
        let n = socket.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed by the node".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
