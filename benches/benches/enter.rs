//! What two io_uring setup features could save a readiness loop, as the
//! cost of the one system call each touches (issue 11, part 3):
//!
//! - `wait_arg`: a GETEVENTS `io_uring_enter` that returns at once (a CQE
//!   is always pending), passing its wait arguments three ways: none (no
//!   timeout), `EXT_ARG` with a timespec (what uring-poll passes for a
//!   take with a timeout: the kernel copies a 24-byte
//!   `io_uring_getevents_arg` and a 16-byte timespec from user memory on
//!   every wait), and a registered wait region (`IORING_REGISTER_MEM_REGION`
//!   with `REG_WAIT_ARG`, `IORING_ENTER_EXT_ARG_REG`, Linux 6.13: the
//!   kernel reads the arguments from memory it has pinned, no copy).
//! - `submit_nop`: an enter that submits one NOP, on a ring with the SQ
//!   index array and on one made with `IORING_SETUP_NO_SQARRAY` (6.6),
//!   where the kernel reads SQEs in order without the indirection.
//!
//! The saving per event of a real loop is the difference here times its
//! enters per event (uring-poll:defer's wait enters per event are in its
//! `enter_wait` counter; its SQEs per event in `sqes_submitted`), which is
//! how docs/results.md ("Past epoll") reads these numbers.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use criterion::{criterion_group, criterion_main, Criterion};
use io_uring::{opcode, types, IoUring};

const GETEVENTS: u32 = 1 << 0;
const EXT_ARG: u32 = 1 << 3;
const EXT_ARG_REG: u32 = 1 << 6;
const IORING_REGISTER_MEM_REGION: libc::c_uint = 34;
const IORING_MEM_REGION_TYPE_USER: u32 = 1;
const IORING_MEM_REGION_REG_WAIT_ARG: u64 = 1;
const IORING_REG_WAIT_TS: u32 = 1;

/// `struct io_uring_reg_wait` (64 bytes).
#[repr(C)]
#[derive(Default)]
struct RegWait {
    ts_sec: i64,
    ts_nsec: i64,
    min_wait_usec: u32,
    flags: u32,
    sigmask: u64,
    sigmask_sz: u32,
    pad: [u32; 3],
    pad2: [u64; 2],
}

/// `struct io_uring_region_desc`.
#[repr(C)]
#[derive(Default)]
struct RegionDesc {
    user_addr: u64,
    size: u64,
    flags: u32,
    id: u32,
    mmap_offset: u64,
    resv: [u64; 4],
}

/// `struct io_uring_mem_region_reg`.
#[repr(C)]
#[derive(Default)]
struct MemRegionReg {
    region_uptr: u64,
    flags: u64,
    resv: [u64; 2],
}

/// A page of anonymous memory, unmapped on drop.
struct Page(*mut libc::c_void, usize);

impl Page {
    fn new() -> io::Result<Page> {
        // SAFETY: a fresh private anonymous mapping; nothing else points
        // into it.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: as above.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Page(p, page))
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: the mapping `new` made; the rings that pinned it are
        // dropped first (declared before it where both live).
        unsafe { libc::munmap(self.0, self.1) };
    }
}

/// A SINGLE_ISSUER | DEFER_TASKRUN ring (created disabled, so a wait
/// region can be registered, then enabled) with one NOP completion left
/// in its CQ, so a GETEVENTS enter for one completion returns at once.
fn ring_with_a_cqe(region: Option<&Page>) -> io::Result<IoUring> {
    let ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_r_disabled()
        .build(8)?;
    if let Some(page) = region {
        let desc = RegionDesc {
            user_addr: page.0 as u64,
            size: page.1 as u64,
            flags: IORING_MEM_REGION_TYPE_USER,
            ..Default::default()
        };
        let reg = MemRegionReg {
            region_uptr: &desc as *const RegionDesc as u64,
            flags: IORING_MEM_REGION_REG_WAIT_ARG,
            ..Default::default()
        };
        // SAFETY: `reg` and `desc` are live for the call; the kernel pins
        // the page, which outlives the ring (see `Page::drop`).
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                ring.as_raw_fd(),
                IORING_REGISTER_MEM_REGION,
                &reg as *const MemRegionReg,
                1,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    ring.submitter().register_enable_rings()?;
    // SAFETY: a NOP carries no pointers.
    unsafe { ring.submission_shared().push(&opcode::Nop::new().build()) }
        .map_err(|_| io::Error::other("SQ full"))?;
    ring.submit_and_wait(1)?;
    Ok(ring)
}

fn enter(fd: RawFd, to_submit: u32, flags: u32, arg: usize, size: usize) -> libc::c_long {
    // SAFETY: `arg` is null, a live getevents arg of `size` bytes, or an
    // offset into the registered region (EXT_ARG_REG), as `flags` say.
    unsafe {
        libc::syscall(
            libc::SYS_io_uring_enter,
            fd,
            to_submit,
            1,
            flags | GETEVENTS,
            arg,
            size,
        )
    }
}

fn wait_arg(c: &mut Criterion) {
    let mut g = c.benchmark_group("wait_arg");
    let plain = ring_with_a_cqe(None).expect("a DEFER_TASKRUN ring");
    g.bench_function("none", |b| {
        b.iter(|| assert!(enter(plain.as_raw_fd(), 0, 0, 0, 0) >= 0))
    });
    let ts = types::Timespec::new().sec(1);
    let args = types::SubmitArgs::new().timespec(&ts);
    let size = std::mem::size_of_val(&args);
    let ptr = &args as *const _ as usize;
    g.bench_function("ext_arg_timespec", |b| {
        b.iter(|| assert!(enter(plain.as_raw_fd(), 0, EXT_ARG, ptr, size) >= 0))
    });
    let page = Page::new().expect("mmap a page");
    match ring_with_a_cqe(Some(&page)) {
        Ok(ring) => {
            // SAFETY: the page is ours, writable and holds 64 such slots;
            // slot 0 is what offset 0 names.
            unsafe {
                (page.0 as *mut RegWait).write(RegWait {
                    ts_sec: 1,
                    flags: IORING_REG_WAIT_TS,
                    ..Default::default()
                })
            };
            let size = std::mem::size_of::<RegWait>();
            g.bench_function("registered_region", |b| {
                b.iter(|| {
                    let r = enter(ring.as_raw_fd(), 0, EXT_ARG | EXT_ARG_REG, 0, size);
                    assert!(r >= 0, "{}", io::Error::last_os_error());
                })
            });
            drop(ring);
        }
        Err(e) => eprintln!("SKIPPED registered_region: {e} (needs Linux 6.13)"),
    }
    drop(page);
    g.finish();
}

fn submit_nop(c: &mut Criterion) {
    let mut g = c.benchmark_group("submit_nop");
    for no_sqarray in [false, true] {
        let mut b = IoUring::builder();
        b.setup_single_issuer().setup_defer_taskrun();
        if no_sqarray {
            b.setup_no_sqarray();
        }
        let mut ring: IoUring = match b.build(64) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("SKIPPED no_sqarray: {e} (needs Linux 6.6)");
                continue;
            }
        };
        let name = if no_sqarray { "no_sqarray" } else { "sqarray" };
        g.bench_function(name, |b| {
            b.iter(|| {
                // SAFETY: a NOP carries no pointers.
                unsafe { ring.submission().push(&opcode::Nop::new().build()) }.unwrap();
                ring.submit_and_wait(1).unwrap();
                ring.completion().next().unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, wait_arg, submit_nop);
criterion_main!(benches);
