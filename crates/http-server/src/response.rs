//! Every response the server sends, built once at start-up: the fixed body
//! for the one path, and the errors a real server gives for bad input.

/// A status the server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 200: the one path, with the fixed body.
    Ok,
    /// 400: a request the parser refused.
    BadRequest,
    /// 404: any other path.
    NotFound,
    /// 405: a method other than GET (or HEAD).
    MethodNotAllowed,
    /// 431: request headers over the limit.
    HeadersTooLarge,
}

/// The bytes of every response, keep-alive and closing.
#[derive(Debug)]
pub struct Responses {
    ok_keep: Vec<u8>,
    ok_close: Vec<u8>,
    ok_keep_10: Vec<u8>,
    head_keep: Vec<u8>,
    head_close: Vec<u8>,
    errors: [(Status, Vec<u8>, Vec<u8>); 4],
}

fn build(code: &str, body: &[u8], connection: Option<&str>, head: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {code}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    if let Some(c) = connection {
        r.extend_from_slice(format!("Connection: {c}\r\n").as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    if !head {
        r.extend_from_slice(body);
    }
    r
}

impl Responses {
    /// Responses whose 200 body is `body_len` bytes (`i & 255`, as
    /// libevent's `bench_http` fills it).
    pub fn new(body_len: usize) -> Responses {
        let body: Vec<u8> = (0..body_len).map(|i| i as u8).collect();
        let error = |status, code: &str, text: &str| {
            let text = format!("{text}\n");
            (
                status,
                build(code, text.as_bytes(), None, false),
                build(code, text.as_bytes(), Some("close"), false),
            )
        };
        Responses {
            ok_keep: build("200 OK", &body, None, false),
            ok_close: build("200 OK", &body, Some("close"), false),
            ok_keep_10: build("200 OK", &body, Some("keep-alive"), false),
            head_keep: build("200 OK", &body, None, true),
            head_close: build("200 OK", &body, Some("close"), true),
            errors: [
                error(Status::BadRequest, "400 Bad Request", "malformed request"),
                error(Status::NotFound, "404 Not Found", "no such path"),
                error(
                    Status::MethodNotAllowed,
                    "405 Method Not Allowed",
                    "only GET and HEAD are served",
                ),
                error(
                    Status::HeadersTooLarge,
                    "431 Request Header Fields Too Large",
                    "request headers over the limit",
                ),
            ],
        }
    }

    /// The bytes of `status` for a request; `keep_alive` says whether the
    /// connection stays open, `http10` whether the client spoke HTTP/1.0
    /// (which must be told the connection stays open), `head` whether it
    /// asked with HEAD (no body).
    pub fn get(&self, status: Status, keep_alive: bool, http10: bool, head: bool) -> &[u8] {
        match (status, keep_alive) {
            (Status::Ok, true) if head => &self.head_keep,
            (Status::Ok, false) if head => &self.head_close,
            (Status::Ok, true) if http10 => &self.ok_keep_10,
            (Status::Ok, true) => &self.ok_keep,
            (Status::Ok, false) => &self.ok_close,
            (s, keep) => {
                let (_, k, c) = self
                    .errors
                    .iter()
                    .find(|(e, _, _)| *e == s)
                    .expect("every error status is built");
                if keep {
                    k
                } else {
                    c
                }
            }
        }
    }
}
