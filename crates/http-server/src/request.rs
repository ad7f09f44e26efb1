//! Requests: parsing them (with `httparse`) and choosing each one's
//! response. Owns no socket and no buffer: both event loops (readiness,
//! `conn.rs`; io_uring completions, `uring/`) hand it the bytes they have
//! and queue what it appends, so they answer every input alike.

use crate::response::{Responses, Status};
use crate::stats::Counts;

/// The most request-head bytes (request line and headers) a request may
/// have: over it, 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most headers a request may have: over it, 431.
const MAX_HEADERS: usize = 64;
/// Bytes of responses queued before a connection stops reading and waits
/// for the client to read (pipelining clients cannot make it buffer more).
pub const WRITE_HIGH: usize = 256 * 1024;

/// What [`answer`] did with its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// Bytes of input taken by the requests answered; the rest (a partial
    /// request, or requests left for lack of room) is still to answer.
    pub used: usize,
    /// A response said the connection closes: nothing after it is read
    /// or answered.
    pub close: bool,
}

/// Parses and answers every complete request at the start of `input`,
/// appending each response to `out` and counting it in `c`. Stops at a
/// partial request, after a response that closes the connection, or once
/// it appended `room` bytes or more (0: answers nothing).
pub fn answer(
    input: &[u8],
    out: &mut Vec<u8>,
    room: usize,
    responses: &Responses,
    path: &[u8],
    c: &mut Counts,
) -> Answered {
    let start = out.len();
    let mut pos = 0;
    let mut close = false;
    while !close && out.len() - start < room {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let (status, keep, http10, head, used) = match req.parse(&input[pos..]) {
            Ok(httparse::Status::Complete(used)) => {
                let http10 = req.version == Some(0);
                let mut keep = !http10;
                let mut body = 0usize;
                let mut bad = false;
                for h in req.headers.iter() {
                    if h.name.eq_ignore_ascii_case("connection") {
                        let v = h.value;
                        if has_token(v, b"close") {
                            keep = false;
                        } else if has_token(v, b"keep-alive") {
                            keep = true;
                        }
                    } else if h.name.eq_ignore_ascii_case("content-length") {
                        match std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse().ok())
                        {
                            Some(n) => body = n,
                            None => bad = true,
                        }
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        // No request bodies of unknown length here.
                        bad = true;
                    }
                }
                if used > MAX_HEAD {
                    (Status::HeadersTooLarge, false, http10, false, used)
                } else if bad {
                    (Status::BadRequest, false, http10, false, used)
                } else if input.len() - pos - used < body {
                    // The body has not all arrived.
                    if body > MAX_HEAD {
                        (Status::HeadersTooLarge, false, http10, false, used)
                    } else {
                        break;
                    }
                } else {
                    let method = req.method.unwrap_or("");
                    let head = method == "HEAD";
                    let status = if method != "GET" && !head {
                        Status::MethodNotAllowed
                    } else if req.path.map(str::as_bytes) != Some(path) {
                        Status::NotFound
                    } else {
                        Status::Ok
                    };
                    // An HTTP/1.0 client is told keep-alive only with 200.
                    let keep = keep && (!http10 || status == Status::Ok);
                    (status, keep, http10, head, used + body)
                }
            }
            Ok(httparse::Status::Partial) => {
                if input.len() - pos > MAX_HEAD {
                    (Status::HeadersTooLarge, false, false, false, 0)
                } else {
                    break;
                }
            }
            Err(httparse::Error::TooManyHeaders) => {
                (Status::HeadersTooLarge, false, false, false, 0)
            }
            Err(_) => (Status::BadRequest, false, false, false, 0),
        };
        pos += used;
        c.requests += 1;
        match status {
            Status::Ok => c.ok += 1,
            Status::NotFound => c.not_found += 1,
            Status::BadRequest => c.bad_request += 1,
            Status::MethodNotAllowed => c.method_not_allowed += 1,
            Status::HeadersTooLarge => c.headers_too_large += 1,
        }
        out.extend_from_slice(responses.get(status, keep, http10, head));
        close = !keep;
    }
    Answered { used: pos, close }
}

/// Whether a comma-separated header value holds `token` (any case).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], room: usize) -> (Answered, Vec<u8>, Counts) {
        let responses = Responses::new(0);
        let mut out = Vec::new();
        let mut c = Counts::default();
        let a = answer(input, &mut out, room, &responses, b"/ind", &mut c);
        (a, out, c)
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_and_a_partial_one_is_left() {
        let two = b"GET /ind HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\nGET /ind HT";
        let (a, out, c) = run(two, WRITE_HIGH);
        assert_eq!(a.used, two.len() - b"GET /ind HT".len());
        assert!(!a.close);
        assert_eq!((c.requests, c.ok, c.not_found), (2, 1, 1));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("HTTP/1.1 404 Not Found\r\n"), "{text}");
    }

    #[test]
    fn a_closing_response_ends_the_input_and_no_room_answers_nothing() {
        let (a, _, c) = run(b"GET /ind HTTP/1.0\r\n\r\nGET /ind HTTP/1.1\r\n\r\n", 1);
        assert_eq!((a.used, a.close, c.requests), (21, true, 1));
        let (a, out, c) = run(b"GET /ind HTTP/1.1\r\n\r\n", 0);
        assert_eq!((a.used, a.close, c.requests, out.len()), (0, false, 0, 0));
    }
}
