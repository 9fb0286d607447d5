//! The parser on frames split anywhere, and the reader on chunked bodies.

#![allow(clippy::unwrap_used)]

use authstream_proto::stream::StreamEventKind;

use super::*;
use crate::ErrorKind;

const STREAM: &str = "retry: 3000\n\
    : keep-alive\n\
    event: connected\n\
    data: {\"event\":\"connected\",\"generation_id\":\"g\"}\n\
    \n\
    id: 1-0\r\n\
    event: progress\r\n\
    data: {\"event\":\"progress\",\r\n\
    data: \"generation_id\":\"g\",\"status\":\"processing\",\"seq\":1}\r\n\
    \r\n\
    : a comment alone is no event\r\r\
    data: after\r\r\n";

fn frames_of(chunks: &[&[u8]]) -> Vec<SseFrame> {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    for chunk in chunks {
        parser.push(chunk);
        while let Some(frame) = parser.next_frame() {
            out.push(frame);
        }
    }
    out
}

#[test]
fn frames_are_the_same_however_the_bytes_are_split() {
    let bytes = STREAM.as_bytes();
    let whole = frames_of(&[bytes]);
    assert_eq!(whole.len(), 3, "{whole:?}");
    assert_eq!(whole[0].event, "connected");
    assert_eq!(whole[0].id, "");
    assert_eq!(whole[1].id, "1-0");
    assert_eq!(whole[1].event, "progress");
    assert_eq!(
        whole[1].data,
        "{\"event\":\"progress\",\n\"generation_id\":\"g\",\"status\":\"processing\",\"seq\":1}"
    );
    // The last id stays, as a browser keeps it; no `event:` is a `message`.
    assert_eq!(whole[2].id, "1-0");
    assert_eq!(whole[2].event, "message");
    assert_eq!(whole[2].data, "after");

    for split in 0..bytes.len() {
        assert_eq!(
            frames_of(&[&bytes[..split], &bytes[split..]]),
            whole,
            "{split}"
        );
    }
    let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(frames_of(&one_by_one), whole);
}

#[test]
fn the_parser_keeps_retry_and_the_last_id() {
    let mut parser = SseParser::new();
    parser.push(STREAM.as_bytes());
    while parser.next_frame().is_some() {}
    assert_eq!(parser.retry(), Some(Duration::from_secs(3)));
    assert_eq!(parser.last_event_id(), "1-0");
}

#[test]
fn a_frame_waits_for_its_blank_line_and_a_cr_for_what_follows() {
    let mut parser = SseParser::new();
    parser.push(b"data: x\r");
    assert_eq!(parser.next_frame(), None);
    parser.push(b"\n\r");
    assert_eq!(parser.next_frame(), None);
    parser.push(b"\n");
    assert_eq!(parser.next_frame().unwrap().data, "x");
}

#[test]
fn a_leading_byte_order_mark_is_skipped() {
    assert_eq!(frames_of(&[b"\xEF\xBB", b"\xBFdata: y\n\n"])[0].data, "y");
}

#[test]
fn events_without_data_are_not_dispatched() {
    assert!(frames_of(&[b"event: nothing\nid: 7\n\n"]).is_empty());
}

/// A response whose body comes in these chunks.
fn response(chunks: Vec<&'static str>) -> Response {
    let body =
        futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>));
    let res = http::Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .body(reqwest::Body::wrap_stream(body))
        .unwrap();
    Response::from(res)
}

#[tokio::test]
async fn the_reader_parses_stream_events_across_chunks() {
    let res = response(vec![
        "event: connected\ndata: {\"event\":\"conn",
        "ected\",\"generation_id\":\"g\"}\n\nid: 5-0\nevent: progress\nda",
        "ta: {\"event\":\"progress\",\"generation_id\":\"g\",\"status\":\"completed\",\"seq\":2}\n",
        "\n",
    ]);
    let mut reader = SseReader::new("GET stream", res);
    let first = reader.next().await.unwrap().unwrap();
    assert_eq!(first.data.event, StreamEventKind::Connected);
    let second = reader.next().await.unwrap().unwrap();
    assert_eq!(second.id, "5-0");
    assert_eq!(second.event, "progress");
    assert_eq!(
        second.data.status,
        Some(authstream_proto::GenerationStatus::Completed)
    );
    assert_eq!(second.data.extra["seq"], 2);
    assert_eq!(reader.last_event_id(), "5-0");
    assert!(reader.next().await.unwrap().is_none());
}

#[tokio::test]
async fn data_that_is_not_a_stream_event_is_an_error_that_does_not_echo_it() {
    let res = response(vec![
        "data: {\"event\":\"connected\",\"token\":\"s3cret\"\n\n",
    ]);
    let mut reader = SseReader::new("GET stream", res);
    let err = reader.next().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Body);
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
}

#[tokio::test]
async fn the_frames_stream_ends_with_the_body() {
    use futures_util::StreamExt as _;

    let res = response(vec!["data: 1\n\ndata: 2\n\n"]);
    let frames: Vec<_> = SseReader::new("GET feed", res)
        .into_frames()
        .collect()
        .await;
    let data: Vec<String> = frames.into_iter().map(|f| f.unwrap().data).collect();
    assert_eq!(data, ["1", "2"]);
}
