//! The kernel's listen-queue counters (`/proc/net/netstat`, TcpExt): a
//! SYN dropped at a full backlog is retried by the client after 1 s, which
//! turns a 1 s run into a 2-3 s one, so every run reports them.

/// `ListenOverflows` and `ListenDrops`, or zeros where the file cannot be
/// read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenDrops {
    /// Connections that found the accept queue full.
    pub overflows: u64,
    /// SYNs dropped (overflows included).
    pub drops: u64,
}

impl ListenDrops {
    /// The counters now.
    pub fn now() -> ListenDrops {
        std::fs::read_to_string("/proc/net/netstat")
            .map(|text| parse(&text))
            .unwrap_or_default()
    }

    /// What happened since `before`.
    pub fn since(self, before: ListenDrops) -> ListenDrops {
        ListenDrops {
            overflows: self.overflows.saturating_sub(before.overflows),
            drops: self.drops.saturating_sub(before.drops),
        }
    }
}

/// The TcpExt header line names the columns of the next line.
fn parse(text: &str) -> ListenDrops {
    let mut lines = text.lines();
    while let Some(head) = lines.next() {
        let Some(values) = lines.next() else { break };
        if !head.starts_with("TcpExt:") {
            continue;
        }
        let get = |name: &str| {
            head.split_whitespace()
                .position(|h| h == name)
                .and_then(|i| values.split_whitespace().nth(i))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        return ListenDrops {
            overflows: get("ListenOverflows"),
            drops: get("ListenDrops"),
        };
    }
    ListenDrops::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tcpext_columns() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 1 7 9\n\
                    IpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(
            parse(text),
            ListenDrops {
                overflows: 7,
                drops: 9
            }
        );
        assert_eq!(parse("garbage"), ListenDrops::default());
    }
}
