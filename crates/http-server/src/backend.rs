//! Which event loop the server runs, by id: a readiness backend of the
//! userpoll contract (any `anypoll` id, the loop in `lib.rs`), or the
//! io_uring completion loop (`uring-recv`, `uring/`), which is not a
//! readiness backend at all and so has no place in `anypoll`.

use std::fmt;
use std::str::FromStr;

/// How the `uring-recv` loop sends its responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendWith {
    /// A `send` SQE, submitted with the next `io_uring_enter`.
    Sqe,
    /// A `send(2)` call at once; a SQE only for what the socket did not
    /// take.
    Call,
}

/// The server's event loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerBackend {
    /// The readiness loop on a userpoll backend.
    Readiness(anypoll::Backend),
    /// The completion loop: multishot accept and multishot recv into a
    /// provided buffer ring (`uring-recv`, `uring-recv:direct-send`).
    UringRecv(SendWith),
}

impl ServerBackend {
    /// The completion loop's ids, in a stable order.
    pub const URING: [ServerBackend; 2] = [
        ServerBackend::UringRecv(SendWith::Sqe),
        ServerBackend::UringRecv(SendWith::Call),
    ];

    /// Every backend: the readiness ones, then the completion loop's.
    pub fn all() -> impl Iterator<Item = ServerBackend> {
        anypoll::Backend::ALL
            .iter()
            .map(|&b| ServerBackend::Readiness(b))
            .chain(ServerBackend::URING)
    }

    /// Whether this kernel can run it.
    pub fn is_supported(self) -> bool {
        match self {
            ServerBackend::Readiness(b) => b.is_supported(),
            ServerBackend::UringRecv(_) => crate::uring::probe().is_ok(),
        }
    }
}

impl From<anypoll::Backend> for ServerBackend {
    fn from(b: anypoll::Backend) -> ServerBackend {
        ServerBackend::Readiness(b)
    }
}

/// The id: an `anypoll` id, `uring-recv` or `uring-recv:direct-send`.
impl fmt::Display for ServerBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerBackend::Readiness(b) => b.fmt(f),
            ServerBackend::UringRecv(SendWith::Sqe) => f.write_str("uring-recv"),
            ServerBackend::UringRecv(SendWith::Call) => f.write_str("uring-recv:direct-send"),
        }
    }
}

/// An id that names no server backend; its message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownServerBackend(String);

impl fmt::Display for UnknownServerBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let valid: Vec<String> = ServerBackend::all().map(|b| b.to_string()).collect();
        write!(
            f,
            "unknown backend {:?}; valid ids: {}",
            self.0,
            valid.join(", ")
        )
    }
}

impl std::error::Error for UnknownServerBackend {}

impl FromStr for ServerBackend {
    type Err = UnknownServerBackend;
    fn from_str(s: &str) -> Result<ServerBackend, UnknownServerBackend> {
        if let Some(&b) = ServerBackend::URING.iter().find(|b| b.to_string() == s) {
            return Ok(b);
        }
        // Every anypoll id, also those not in its ALL list.
        s.parse::<anypoll::Backend>()
            .map(ServerBackend::Readiness)
            .map_err(|_| UnknownServerBackend(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_parses_back_and_a_bad_one_lists_the_valid_ids() {
        for b in ServerBackend::all() {
            assert_eq!(b.to_string().parse::<ServerBackend>(), Ok(b));
        }
        let e = "uring-rcv"
            .parse::<ServerBackend>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"uring-rcv\""), "{e}");
        assert!(e.contains("reference") && e.contains("uring-recv, uring-recv:direct-send"));
    }
}
