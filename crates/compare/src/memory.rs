//! Memory readings for the memory examples (`idle_memory`,
//! `http_idle_memory`): kernel slab caches, system-wide, from
//! `/proc/slabinfo` (root only), and a process's resident set from
//! `/proc/PID/status`; and which caches moved with what was measured.
//!
//! Slab counts are system-wide: other processes allocate and free too, so
//! a cache counts as moved only by at least a quarter of an object per
//! measured thing. SLUB merges caches of one size, and `/proc/slabinfo`
//! names a merged group after one member (`/sys/kernel/slab/NAME` links
//! each name to its group).

use std::collections::BTreeMap;
use std::io;

/// One slab cache at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cache {
    /// Active objects.
    pub objects: i64,
    /// Bytes per object.
    pub size: i64,
}

/// Every slab cache by name.
pub type Slabs = BTreeMap<String, Cache>;

/// `/proc/slabinfo` now.
pub fn slabs() -> io::Result<Slabs> {
    let text = std::fs::read_to_string("/proc/slabinfo").map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read /proc/slabinfo ({e}): it is readable by root only; run as root"),
        )
    })?;
    Ok(parse_slabinfo(&text))
}

/// The lines after the two header lines: name, active objects, total
/// objects, object size, ...
fn parse_slabinfo(text: &str) -> Slabs {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.first()?.to_string(),
                Cache {
                    objects: f.get(1)?.parse().ok()?,
                    size: f.get(3)?.parse().ok()?,
                },
            ))
        })
        .collect()
}

/// Resident memory (`VmRSS`) of process `pid`, or of this process for
/// `None`, in bytes.
pub fn rss(pid: Option<u32>) -> io::Result<i64> {
    let path = pid.map_or_else(
        || "/proc/self/status".into(),
        |p| format!("/proc/{p}/status"),
    );
    let text = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {path}: {e}")))?;
    kb_field(&text, "VmRSS:").ok_or_else(|| io::Error::other(format!("{path} has no VmRSS line")))
}

/// A `kB` field of a `/proc` status file, in bytes.
fn kb_field(text: &str, key: &str) -> Option<i64> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
        .map(|k| k * 1024)
}

/// Objects each cache gained from `before` to `after` (negative: lost).
pub fn delta(before: &Slabs, after: &Slabs) -> BTreeMap<String, Cache> {
    after
        .iter()
        .map(|(name, a)| {
            let b = before.get(name).map_or(0, |b| b.objects);
            (
                name.clone(),
                Cache {
                    objects: a.objects - b,
                    size: a.size,
                },
            )
        })
        .collect()
}

/// Whether a cache that gained `objects` moved with `units` measured
/// things: at least a quarter of an object each.
pub fn moved(objects: i64, units: usize) -> bool {
    objects * 4 >= units as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_slabinfo_and_status() {
        let text = "slabinfo - version: 2.1\n# name <active_objs> <num_objs> <objsize> ...\n\
                    TCP 120 130 2432 13 8 : tunables 0 0 0 : slabdata 10 10 0\n\
                    kmalloc-96 900 1000 96 42 1 : tunables 0 0 0 : slabdata 24 24 0\n";
        let s = parse_slabinfo(text);
        assert_eq!(s.len(), 2);
        assert_eq!(
            s["TCP"],
            Cache {
                objects: 120,
                size: 2432
            }
        );
        let mut after = s.clone();
        after.get_mut("kmalloc-96").unwrap().objects += 30;
        let d = delta(&s, &after);
        assert_eq!((d["TCP"].objects, d["kmalloc-96"].objects), (0, 30));
        assert!(moved(30, 120) && !moved(29, 120));
        assert_eq!(
            kb_field("Name:\tx\nVmRSS:\t   1234 kB\n", "VmRSS:"),
            Some(1234 * 1024)
        );
        assert!(rss(None).unwrap() > 0);
    }
}
