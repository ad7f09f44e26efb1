//! What a registered ring fd saves per `io_uring_enter`: a Defer ring
//! (SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG), its fd registered with
//! this thread (`IORING_REGISTER_RING_FDS`), and blocks of empty
//! `io_uring_enter(GETEVENTS)` calls through the plain fd and through the
//! registered index, alternated block by block so that both see the same
//! machine. A second, idle thread exists, as in a poller with writers
//! (the kernel's fd lookup then takes a reference). The poller stopped
//! registering its ring fd (docs/uring-poll.md, pitfall 8); this is the
//! cost of that.
//!
//! `cargo run --release -p uring-poll --example enter_cost -- [CALLS] [BLOCKS]`

use std::io;
use std::time::Instant;

const IORING_SETUP_TASKRUN_FLAG: u32 = 1 << 9;
const IORING_SETUP_SINGLE_ISSUER: u32 = 1 << 12;
const IORING_SETUP_DEFER_TASKRUN: u32 = 1 << 13;
const IORING_REGISTER_RING_FDS: libc::c_long = 20;
const IORING_ENTER_GETEVENTS: libc::c_long = 1 << 0;
const IORING_ENTER_REGISTERED_RING: libc::c_long = 1 << 4;

#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

fn enter(fd: libc::c_long, flags: libc::c_long) -> libc::c_long {
    // SAFETY: no SQEs, no argument pointer; the kernel reads nothing of ours.
    unsafe { libc::syscall(libc::SYS_io_uring_enter, fd, 0, 0, flags, 0usize, 0usize) }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> io::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let calls = args.first().copied().unwrap_or(200_000);
    let blocks = args.get(1).copied().unwrap_or(15).max(1);
    let _idle = std::thread::spawn(std::thread::park);
    // io_uring_params is 120 bytes; `flags` is its third u32.
    let mut params = [0u32; 30];
    params[2] = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    // SAFETY: `params` is live and as large as struct io_uring_params.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 8, params.as_mut_ptr()) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        eprintln!("SKIPPED: no Defer ring here: {e}");
        return Ok(());
    }
    let mut up = RsrcUpdate {
        offset: u32::MAX,
        resv: 0,
        data: fd as u64,
    };
    // SAFETY: `up` is live; the kernel writes the chosen index to `offset`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            fd,
            IORING_REGISTER_RING_FDS,
            &mut up as *mut RsrcUpdate,
            1,
        )
    };
    if r != 1 {
        return Err(io::Error::last_os_error());
    }
    let index = up.offset as libc::c_long;
    let (mut plain, mut registered, mut saved) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..blocks {
        let t = Instant::now();
        for _ in 0..calls {
            enter(fd, IORING_ENTER_GETEVENTS);
        }
        let p = t.elapsed().as_nanos() as f64 / calls as f64;
        let t = Instant::now();
        for _ in 0..calls {
            enter(index, IORING_ENTER_GETEVENTS | IORING_ENTER_REGISTERED_RING);
        }
        let r = t.elapsed().as_nanos() as f64 / calls as f64;
        plain.push(p);
        registered.push(r);
        saved.push(p - r);
    }
    let range = |v: &[f64]| {
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        format!("{lo:.1}..{hi:.1}")
    };
    println!("{blocks} alternated blocks of {calls} empty GETEVENTS enters; ns per enter, median (range):");
    let (rp, rr, rs) = (range(&plain), range(&registered), range(&saved));
    println!("plain fd        {:>7.1} ({rp})", median(&mut plain));
    println!("registered fd   {:>7.1} ({rr})", median(&mut registered));
    println!("saved per enter {:>7.1} ({rs})", median(&mut saved));
    // SAFETY: closes our own ring fd once; the registration goes with it at
    // exit.
    unsafe { libc::close(fd as i32) };
    Ok(())
}
