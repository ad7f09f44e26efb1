//! Memory per registered, idle fd: what arming N eventfds that never fire
//! costs each backend, in the kernel (slab objects, from `/proc/slabinfo`,
//! which needs root) and in this process (resident memory: tables and, for
//! `uring-read`, the provided buffers). Backends alternate, repetition by
//! repetition; medians are printed with their range.
//!
//! ```sh
//! cargo run --release -p compare --example idle_memory -- [FDS] [REPS]
//! ```
//!
//! Slab counts are system-wide: other processes allocate and free too, so
//! only caches that moved by at least a quarter of an object per fd are
//! counted as the backend's ([`compare::memory`] reads them). SLUB merges
//! caches of one size, and `/proc/slabinfo` names a merged group after one
//! member (`/sys/kernel/slab/NAME` links each name to its group): epoll's
//! `eventpoll_pwq` shows as `anon_vma_chain` here.

use std::collections::BTreeMap;
use std::time::Duration;

use compare::backends::{self, BackendId};
use compare::fds::{FdKind, FdSet};
use compare::memory::{self, Slabs};

/// How long a dropped backend's memory takes to go back, at most.
const SETTLE: Duration = Duration::from_secs(1);

struct Sample {
    /// Slab bytes per fd in the caches that moved with the fds, and which.
    slab: f64,
    caches: Vec<String>,
    /// Resident bytes of this process per fd.
    rss: f64,
}

fn measure(id: BackendId, fds: &FdSet) -> Sample {
    let n = fds.len();
    // The previous backend's ring is torn down by a kernel worker after its
    // drop: let its frees land before counting.
    std::thread::sleep(SETTLE);
    let (s0, r0) = now();
    let mut b = backends::make(id, n).expect("make the backend");
    for t in 0..n {
        b.add(fds.read_fd(t), t as u32).expect("add");
    }
    // One take submits what is queued (io_uring arms at the enter).
    let mut out = Vec::new();
    b.wait(&mut out, Duration::ZERO).expect("wait");
    assert!(out.is_empty(), "{id}: idle fds delivered {out:?}");
    let (s1, r1) = now();
    drop(b);
    let mut slab = 0;
    let mut caches = Vec::new();
    for (name, d) in memory::delta(&s0, &s1) {
        if memory::moved(d.objects, n) {
            slab += d.objects * d.size;
            caches.push(format!(
                "{name} {:.2}x{}",
                d.objects as f64 / n as f64,
                d.size
            ));
        }
    }
    Sample {
        slab: slab as f64 / n as f64,
        caches,
        rss: (r1 - r0) as f64 / n as f64,
    }
}

/// The slab caches and this process's resident bytes; exits with the
/// reason when `/proc/slabinfo` cannot be read (it needs root).
fn now() -> (Slabs, i64) {
    match (memory::slabs(), memory::rss(None)) {
        (Ok(s), Ok(r)) => (s, r),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("idle_memory: {e}");
            std::process::exit(2);
        }
    }
}

fn median_range(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "{:7.0} ({:.0}..{:.0})",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1]
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(10_000, |a| a.parse().expect("FDS"));
    let reps: usize = args.next().map_or(5, |a| a.parse().expect("REPS"));
    userpoll::sys::raise_fd_limit().expect("raise RLIMIT_NOFILE");
    let ids = [
        BackendId::EpollEt,
        BackendId::UringRaw,
        BackendId::UringRead,
    ];
    let fds = FdSet::open(FdKind::Eventfd, n).expect("open the eventfds");
    let mut got: BTreeMap<BackendId, Vec<Sample>> = BTreeMap::new();
    for _ in 0..reps {
        for id in ids {
            got.entry(id).or_default().push(measure(id, &fds));
        }
    }
    println!("{n} idle eventfds registered, {reps} reps; bytes per fd, median (range)");
    println!(
        "{:<12} {:>24} {:>24}  slab caches (objects per fd x size)",
        "backend", "kernel slab", "process resident"
    );
    for id in ids {
        let s = &got[&id];
        let mut slab: Vec<f64> = s.iter().map(|x| x.slab).collect();
        let mut rss: Vec<f64> = s.iter().map(|x| x.rss).collect();
        println!(
            "{:<12} {:>24} {:>24}  {}",
            id.as_str(),
            median_range(&mut slab),
            median_range(&mut rss),
            s[s.len() / 2].caches.join(", ")
        );
        if let Some(setup) = backends::ring_setup(id, n) {
            println!("{:<12} {setup}", "");
        }
    }
}
