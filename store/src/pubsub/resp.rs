//! RESP2, as much as a subscribed connection needs: parsing a reply, encoding a
//! command, telling the pushes apart; and the slot map (`CLUSTER SLOTS`).

use std::collections::BTreeMap;

use deadpool_redis::redis;

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Frame>>),
}

/// The reply is not RESP2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Longest bulk string or array accepted from a server (a message payload is an event).
pub(super) const MAX_LEN: usize = 512 * 1024 * 1024;

/// Parses one frame from the start of `buf`: the frame and how many bytes it took, or
/// `None` when `buf` does not hold a whole frame yet.
pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, Malformed> {
    parse_at(buf, 0, 0)
}

pub(super) fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], at + end + 2))
}

pub(super) fn number(text: &[u8]) -> Result<i64, Malformed> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(Malformed("bad number"))
}

pub(super) fn length(n: i64) -> Result<Option<usize>, Malformed> {
    match n {
        -1 => Ok(None),
        n if n < -1 => Err(Malformed("negative length")),
        n => {
            let n = usize::try_from(n).map_err(|_| Malformed("length too large"))?;
            if n > MAX_LEN {
                return Err(Malformed("length too large"));
            }
            Ok(Some(n))
        }
    }
}

pub(super) fn parse_at(
    buf: &[u8],
    at: usize,
    depth: usize,
) -> Result<Option<(Frame, usize)>, Malformed> {
    if depth > 8 {
        return Err(Malformed("nested too deep"));
    }
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some((text, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    let text_string = || String::from_utf8_lossy(text).into_owned();
    match kind {
        b'+' => Ok(Some((Frame::Simple(text_string()), next))),
        b'-' => Ok(Some((Frame::Error(text_string()), next))),
        b':' => Ok(Some((Frame::Integer(number(text)?), next))),
        b'$' => match length(number(text)?)? {
            None => Ok(Some((Frame::Bulk(None), next))),
            Some(n) => {
                if buf.len() < next + n + 2 {
                    return Ok(None);
                }
                if &buf[next + n..next + n + 2] != b"\r\n" {
                    return Err(Malformed("bulk string not terminated"));
                }
                Ok(Some((
                    Frame::Bulk(Some(buf[next..next + n].to_vec())),
                    next + n + 2,
                )))
            }
        },
        b'*' => match length(number(text)?)? {
            None => Ok(Some((Frame::Array(None), next))),
            Some(n) => {
                let mut items = Vec::with_capacity(n.min(64));
                let mut at = next;
                for _ in 0..n {
                    match parse_at(buf, at, depth + 1)? {
                        Some((item, after)) => {
                            items.push(item);
                            at = after;
                        }
                        None => return Ok(None),
                    }
                }
                Ok(Some((Frame::Array(Some(items)), at)))
            }
        },
        _ => Err(Malformed("unknown reply type")),
    }
}

/// One command as a RESP2 array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What a subscribed connection receives, in the terms of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    Message {
        channel: String,
        payload: String,
    },
    Subscribed(String),
    Unsubscribed(String),
    /// `-MOVED <slot> <host:port>`: the slot lives elsewhere.
    Moved {
        slot: u16,
        addr: String,
    },
    Error(String),
    Pong,
    Other,
}

pub(super) fn text(frame: Option<&Frame>) -> Option<String> {
    match frame? {
        Frame::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        Frame::Simple(s) => Some(s.clone()),
        _ => None,
    }
}

pub fn classify(frame: &Frame) -> Push {
    match frame {
        Frame::Error(e) => {
            let mut words = e.split_whitespace();
            if words.next() == Some("MOVED")
                && let (Some(slot), Some(addr)) = (words.next(), words.next())
                && let Ok(slot) = slot.parse()
            {
                return Push::Moved {
                    slot,
                    addr: addr.to_owned(),
                };
            }
            Push::Error(e.clone())
        }
        Frame::Array(Some(items)) => {
            let kind = text(items.first()).map(|k| k.to_ascii_lowercase());
            match (kind.as_deref(), text(items.get(1))) {
                (Some("smessage" | "message"), Some(channel)) => match text(items.get(2)) {
                    Some(payload) => Push::Message { channel, payload },
                    None => Push::Other,
                },
                (Some("ssubscribe"), Some(channel)) => Push::Subscribed(channel),
                (Some("sunsubscribe"), Some(channel)) => Push::Unsubscribed(channel),
                (Some("pong"), _) => Push::Pong,
                _ => Push::Other,
            }
        }
        Frame::Simple(s) if s.eq_ignore_ascii_case("pong") => Push::Pong,
        _ => Push::Other,
    }
}

/// Slot ranges (start → (end, master address)).
#[derive(Clone, Debug, Default)]
pub struct SlotMap(pub BTreeMap<u16, (u16, String)>);

impl SlotMap {
    /// Every slot at one address (a single Redis).
    pub fn single(addr: String) -> Self {
        Self(BTreeMap::from([(0, (16383, addr))]))
    }

    pub fn node_of(&self, slot: u16) -> Option<&str> {
        self.0
            .range(..=slot)
            .next_back()
            .filter(|(_, (end, _))| slot <= *end)
            .map(|(_, (_, addr))| addr.as_str())
    }

    /// From a `CLUSTER SLOTS` reply; `seed_host` stands in for an empty node IP.
    pub fn from_cluster_slots(reply: &redis::Value, seed_host: &str) -> Option<Self> {
        use redis::Value;
        let Value::Array(ranges) = reply else {
            return None;
        };
        let int = |v: &Value| match v {
            Value::Int(n) => u16::try_from(*n).ok(),
            _ => None,
        };
        let string = |v: &Value| match v {
            Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        };
        let mut map = BTreeMap::new();
        for range in ranges {
            let Value::Array(range) = range else {
                return None;
            };
            let (start, end) = (int(range.first()?)?, int(range.get(1)?)?);
            let Value::Array(master) = range.get(2)? else {
                return None;
            };
            let host = string(master.first()?)?;
            let host = if host.is_empty() || host == "?" {
                seed_host.to_owned()
            } else {
                host
            };
            let port = match master.get(1)? {
                Value::Int(p) => *p,
                _ => return None,
            };
            map.insert(start, (end, format!("{host}:{port}")));
        }
        Some(Self(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_reply_type() {
        assert_eq!(
            parse(b"+OK\r\n").unwrap(),
            Some((Frame::Simple("OK".into()), 5))
        );
        assert_eq!(
            parse(b"-ERR no\r\n").unwrap(),
            Some((Frame::Error("ERR no".into()), 9))
        );
        assert_eq!(parse(b":-12\r\n").unwrap(), Some((Frame::Integer(-12), 6)));
        assert_eq!(
            parse(b"$3\r\na\r\n\r\n").unwrap(),
            Some((Frame::Bulk(Some(b"a\r\n".to_vec())), 9)),
            "a bulk string may hold CRLF"
        );
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some((Frame::Bulk(None), 5)));
        assert_eq!(parse(b"*-1\r\n").unwrap(), Some((Frame::Array(None), 5)));
        assert_eq!(
            parse(b"*2\r\n$1\r\nx\r\n*1\r\n:1\r\n").unwrap(),
            Some((
                Frame::Array(Some(vec![
                    Frame::Bulk(Some(b"x".to_vec())),
                    Frame::Array(Some(vec![Frame::Integer(1)]))
                ])),
                19
            ))
        );
    }

    #[test]
    fn a_partial_reply_waits_for_more_at_every_cut() {
        let whole = b"*3\r\n$8\r\nsmessage\r\n$4\r\nchan\r\n$5\r\nhello\r\n+OK\r\n";
        let first = whole.len() - 5;
        for cut in 0..first {
            assert_eq!(parse(&whole[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (frame, used) = parse(whole).unwrap().unwrap();
        assert_eq!(used, first);
        assert_eq!(
            classify(&frame),
            Push::Message {
                channel: "chan".into(),
                payload: "hello".into()
            }
        );
        assert_eq!(
            parse(&whole[used..]).unwrap(),
            Some((Frame::Simple("OK".into()), 5))
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b":x\r\n").is_err());
        assert!(parse(b"$-2\r\n").is_err());
        assert!(parse(b"$1\r\nab\r\n").is_err());
        assert!(parse(b"$99999999999\r\n").is_err());
    }

    #[test]
    fn pushes_are_told_apart() {
        let push = |items: &[&str]| {
            Frame::Array(Some(
                items
                    .iter()
                    .map(|s| Frame::Bulk(Some(s.as_bytes().to_vec())))
                    .collect(),
            ))
        };
        assert_eq!(
            classify(&push(&["ssubscribe", "c"])),
            Push::Subscribed("c".into())
        );
        assert_eq!(
            classify(&push(&["sunsubscribe", "c"])),
            Push::Unsubscribed("c".into())
        );
        assert_eq!(classify(&push(&["pong", ""])), Push::Pong);
        assert_eq!(
            classify(&Frame::Error("MOVED 866 127.0.0.1:7002".into())),
            Push::Moved {
                slot: 866,
                addr: "127.0.0.1:7002".into()
            }
        );
        assert_eq!(
            classify(&Frame::Error("NOPERM x".into())),
            Push::Error("NOPERM x".into())
        );
        assert_eq!(
            encode(&[b"SSUBSCRIBE", b"a"]),
            b"*2\r\n$10\r\nSSUBSCRIBE\r\n$1\r\na\r\n".to_vec()
        );
    }

    #[test]
    fn the_slot_map_finds_each_slots_node() {
        let mut map = SlotMap::default();
        map.0.insert(0, (5460, "a:1".into()));
        map.0.insert(5461, (10922, "b:2".into()));
        assert_eq!(map.node_of(0), Some("a:1"));
        assert_eq!(map.node_of(5461), Some("b:2"));
        assert_eq!(map.node_of(10923), None);
        assert_eq!(SlotMap::single("x:1".into()).node_of(16383), Some("x:1"));
    }
}
