//! Hostile inputs and callers (issue 12): timeouts no clock can add, a
//! poller dropped or moved away from its Defer owner thread, control loops
//! from another thread while the owner does not take, fds the kernel
//! cannot poll or io_uring cannot hold, and `fork()`.
//!
//! Several tests compare the process fd count, so every test here opens
//! its fds under one lock.

mod common;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use uring_poll::UringPoll;
use userpoll::conformance::fds;
use userpoll::sys::open_fd_count;
use userpoll::{Control, Counter, Events, Interest, Poller};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every variant this kernel can make, with a poller of `capacity`.
fn pollers(capacity: usize) -> Vec<(String, UringPoll)> {
    common::variants()
        .into_iter()
        .filter_map(|(name, profile, rearm)| {
            let b = UringPoll::builder().profile(profile).rearm(rearm);
            common::make(&name, b.build(capacity)).map(|p| (name, p))
        })
        .collect()
}

/// Waits up to 5 s for an event; returns the data of every event taken in
/// that one call.
fn take(p: &mut UringPoll) -> Vec<u64> {
    let mut events = Events::with_capacity(16);
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        p.wait(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        if !events.is_empty() {
            return events.iter().map(|e| e.data()).collect();
        }
    }
    Vec::new()
}

/// The data of every event taken within `d` (several takes).
fn take_for(p: &mut UringPoll, d: Duration) -> Vec<u64> {
    let mut events = Events::with_capacity(16);
    let mut got = Vec::new();
    let end = Instant::now() + d;
    while Instant::now() < end {
        p.wait(&mut events, Some(Duration::from_millis(20)))
            .unwrap();
        got.extend(events.iter().map(|e| e.data()));
    }
    got
}

/// Makes the calling thread the owner (Defer: enables the ring here).
fn own(p: &mut UringPoll) {
    let mut events = Events::with_capacity(4);
    p.poll(&mut events).unwrap();
}

// ---------------------------------------------------------------------
// S12: a timeout too long for the clock or for a kernel timespec.

/// `wait(Some(Duration::MAX))` (and any timeout past `i64::MAX` seconds)
/// sleeps until an event, like `wait(None)`. It used to hand the kernel a
/// timespec of -1 seconds and spin through tens of thousands of enters.
#[test]
fn s12_wait_with_a_timeout_past_the_clock_sleeps_until_an_event() {
    let _serial = one_at_a_time();
    let timeouts = [
        Duration::MAX,
        Duration::from_secs(u64::MAX),
        Duration::from_secs(i64::MAX as u64 + 1),
        Duration::from_secs(i64::MAX as u64),
        // Addable to now, and still more seconds than a timespec holds
        // once the clock's own offset is gone: the clamp's case.
        Duration::from_secs(1 << 62),
    ];
    for (name, mut p) in pollers(4) {
        own(&mut p);
        let efd = Arc::new(fds::eventfd().unwrap());
        p.control().add(efd.as_fd(), Interest::READABLE, 7).unwrap();
        let mut events = Events::with_capacity(4);
        for t in timeouts {
            let before = p.stats();
            let fire = thread::spawn({
                let efd = efd.clone();
                move || {
                    thread::sleep(Duration::from_millis(150));
                    fds::fire(efd.as_fd()).unwrap();
                }
            });
            let n = p.wait(&mut events, Some(t)).unwrap();
            fire.join().unwrap();
            assert_eq!(n, 1, "{name} {t:?}: {events:?}");
            assert_eq!(events.iter().next().unwrap().data(), 7, "{name} {t:?}");
            let d = p.stats() - before;
            // A spinning wait made 20,000-30,000 enters in 150 ms; a
            // sleeping one makes a handful (submit, wait, taskrun).
            let enters = d.get(Counter::EnterWait)
                + d.get(Counter::EnterSubmit)
                + d.get(Counter::EnterFlush);
            assert!(enters <= 8, "{name} {t:?}: {enters} enters: {d:?}");
            fds::drain(efd.as_fd()).unwrap();
        }
    }
}

// ---------------------------------------------------------------------
// S14: a poller dropped (or moved) away from its Defer owner thread.

/// Whether a write to the pipe's write end fails with EPIPE (no reader
/// left anywhere, the poller's ring included) within `d`.
fn epipe_within(w: BorrowedFd<'_>, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        match fds::write(w, b"x") {
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => return true,
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {}
            Err(e) => panic!("write to the pipe: {e}"),
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}

/// A thread that takes `p`, runs `f` on it there (which makes it the
/// owner), hands it back, and stays alive until the returned sender is
/// dropped.
fn on_owner_thread(
    p: UringPoll,
    f: impl FnOnce(&mut UringPoll) + Send + 'static,
) -> (UringPoll, mpsc::Sender<()>, thread::JoinHandle<()>) {
    let (back_tx, back_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let t = thread::spawn(move || {
        let mut p = p;
        f(&mut p);
        back_tx.send(p).unwrap();
        let _ = done_rx.recv(); // alive until the test is done
    });
    (back_rx.recv().unwrap(), done_tx, t)
}

/// How a poller leaves its owner thread before it is dropped elsewhere.
#[derive(Clone, Copy, Debug)]
enum Before {
    Nothing,
    Delete,
    Migrate,
}

fn drop_away_from_the_owner_releases_the_pipe(before: Before) {
    let _serial = one_at_a_time();
    for (name, p) in pollers(8) {
        let (r, w) = fds::pipe().unwrap();
        p.control().add(r.as_fd(), Interest::READABLE, 1).unwrap();
        let (mut p, done1, t1) = on_owner_thread(p, |p| {
            own(p);
        });
        fds::write(w.as_fd(), b"ready").unwrap();
        let mut owners = vec![(done1, t1)];
        if let Before::Migrate = before {
            // A second owner: Defer rebuilds its ring there.
            let (moved, done2, t2) = on_owner_thread(p, |p| {
                assert_eq!(take(p), vec![1]);
            });
            p = moved;
            owners.push((done2, t2));
        }
        if let Before::Delete = before {
            p.control().delete(r.as_fd()).unwrap();
        }
        drop(r); // the poller's ring is the only reader left
        let ctl = p.control().clone();
        thread::spawn(move || drop(p)).join().unwrap();
        assert!(
            epipe_within(w.as_fd(), Duration::from_secs(5)),
            "{name} ({before:?}): the dropped poller still holds the pipe's read end \
             while its owner threads are alive"
        );
        drop(ctl);
        for (done, t) in owners {
            drop(done);
            t.join().unwrap();
        }
    }
}

#[test]
fn s14_drop_on_another_thread_releases_files() {
    drop_away_from_the_owner_releases_the_pipe(Before::Nothing);
}

#[test]
fn s14_delete_then_drop_on_another_thread_releases_files() {
    drop_away_from_the_owner_releases_the_pipe(Before::Delete);
}

#[test]
fn s14_drop_after_moving_between_threads_releases_files() {
    drop_away_from_the_owner_releases_the_pipe(Before::Migrate);
}

// ---------------------------------------------------------------------
// S11 + S8: control loops from another thread while the owner is away.

/// 50,000 add/delete cycles and 50,000 modifies from a thread that is not
/// the owner, while the owner does not take: no EMFILE (each Defer add
/// held a `dup` until the owner's next take, so ~20,000 cycles exhausted
/// RLIMIT_NOFILE), the fd count and the queued ops stay bounded, and the
/// owner's next take delivers the current data and nothing older (S5).
#[test]
fn s11_control_loops_while_the_owner_is_away_cost_bounded_resources() {
    const CYCLES: u64 = 50_000;
    const CAPACITY: usize = 8;
    let _serial = one_at_a_time();
    for (name, mut p) in pollers(CAPACITY) {
        own(&mut p);
        let efd = Arc::new(fds::eventfd().unwrap());
        let steady = Arc::new(fds::eventfd().unwrap());
        p.control()
            .add(steady.as_fd(), Interest::READABLE, 1)
            .unwrap();
        let mut events = Events::with_capacity(8);
        p.poll(&mut events).unwrap(); // the add's ops leave
        let fds_before = open_fd_count().unwrap();
        let ctl = p.control().clone();
        let (max_fds, max_ops) = thread::spawn({
            let (efd, steady) = (efd.clone(), steady.clone());
            move || {
                let (mut max_fds, mut max_ops) = (0, 0);
                let mut sample = |i: u64| {
                    if i % 1000 == 0 {
                        max_fds = max_fds.max(open_fd_count().unwrap());
                        max_ops = max_ops.max(ctl.pending_ops());
                    }
                };
                for i in 0..CYCLES {
                    ctl.add(efd.as_fd(), Interest::READABLE, 1_000_000 + i)
                        .unwrap_or_else(|e| panic!("add {i}: {e}"));
                    ctl.delete(efd.as_fd()).unwrap();
                    sample(i);
                }
                for i in 0..CYCLES {
                    let interest = if i % 3 == 0 {
                        Interest::READABLE.oneshot()
                    } else {
                        Interest::READABLE
                    };
                    ctl.modify(steady.as_fd(), interest, 2_000_000 + i).unwrap();
                    sample(i);
                }
                ctl.add(efd.as_fd(), Interest::READABLE, 3_000_000).unwrap();
                for i in 0..CYCLES {
                    ctl.modify(efd.as_fd(), Interest::READABLE, 3_000_001 + i)
                        .unwrap();
                    if i % 2 == 0 {
                        ctl.delete(efd.as_fd()).unwrap();
                        ctl.add(efd.as_fd(), Interest::READABLE, 3_000_001 + i)
                            .unwrap();
                    }
                    sample(i);
                }
                ctl.modify(steady.as_fd(), Interest::READABLE, 4).unwrap();
                ctl.modify(efd.as_fd(), Interest::READABLE, 5).unwrap();
                (max_fds, max_ops.max(ctl.pending_ops()))
            }
        })
        .join()
        .unwrap();
        // At most one duplicate per live registration (two here).
        assert!(
            max_fds <= fds_before + 2,
            "{name}: {max_fds} fds open during the loops, {fds_before} before"
        );
        assert!(
            max_ops <= 4 * CAPACITY,
            "{name}: {max_ops} ops queued for {CAPACITY} slots"
        );
        fds::fire(efd.as_fd()).unwrap();
        fds::fire(steady.as_fd()).unwrap();
        let mut got = take_for(&mut p, Duration::from_millis(300));
        got.sort_unstable();
        got.dedup();
        assert_eq!(got, vec![4, 5], "{name}: only the current data (S5)");
        assert_eq!(p.control().pending_ops(), 0, "{name}");
        // Deleted from this thread now: silent.
        p.control().delete(efd.as_fd()).unwrap();
        fds::drain(efd.as_fd()).unwrap();
        fds::drain(steady.as_fd()).unwrap();
        fds::fire(efd.as_fd()).unwrap();
        fds::fire(steady.as_fd()).unwrap();
        let got = take_for(&mut p, Duration::from_millis(100));
        assert!(got.iter().all(|&d| d == 4), "{name}: {got:?}");
        assert!(!got.is_empty(), "{name}: the steady registration fires");
        drop(p);
        assert_eq!(open_fd_count().unwrap(), fds_before - 2, "{name}: S14");
    }
}

// ---------------------------------------------------------------------
// S9: the same fd gets the same error from every thread, and a refused
// add leaves nothing behind.

/// Opens `path` with `flags`; `None` (printed) when this system lacks it.
fn open(path: &str, flags: OFlags) -> Option<OwnedFd> {
    match rustix::fs::open(path, flags | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => Some(fd),
        Err(e) => {
            eprintln!("no {path} here: {}", std::io::Error::from(e));
            None
        }
    }
}

/// An `O_PATH` fd for the file behind `fd` (through /proc/self/fd).
fn o_path_of(fd: BorrowedFd<'_>) -> OwnedFd {
    open(&format!("/proc/self/fd/{}", fd.as_raw_fd()), OFlags::PATH).expect("/proc")
}

/// A new io_uring fd (2 entries).
fn io_uring_fd() -> OwnedFd {
    // io_uring_params is 120 bytes; zero asks for nothing special.
    let mut params = [0u8; 120];
    // Stays on libc: rustix's io_uring_setup needs its io_uring feature,
    // which the workspace does not enable for one test helper.
    // SAFETY: `params` is live and as large as struct io_uring_params.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 2, params.as_mut_ptr()) };
    assert!(
        fd >= 0,
        "io_uring_setup: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a new fd that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// `add` of each fd from the owner thread and from another thread
/// (Defer: queued for the owner) fails with `errno`, and leaves nothing
/// behind: the fd is not registered (delete: ENOENT), no event comes, and
/// the poller's one slot is still free.
fn refused_from_every_thread(inputs: &[(&str, BorrowedFd<'_>)], errno: i32) {
    for (name, mut p) in pollers(1) {
        own(&mut p);
        for &(what, fd) in inputs {
            let from_owner = p.control().add(fd, Interest::READABLE, 1).unwrap_err();
            let ctl = p.control().clone();
            let raw = fd.as_raw_fd();
            let from_other = thread::spawn(move || {
                // SAFETY: the test keeps the fd open until this thread is
                // joined.
                let fd = unsafe { BorrowedFd::borrow_raw(raw) };
                ctl.add(fd, Interest::READABLE, 2).unwrap_err()
            })
            .join()
            .unwrap();
            for (whence, e) in [("owner", &from_owner), ("other thread", &from_other)] {
                assert_eq!(
                    e.raw_os_error(),
                    Some(errno),
                    "{name} {what} from the {whence}: {e}"
                );
            }
            let e = p.control().delete(fd).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{name} {what}: {e}");
            let got = take_for(&mut p, Duration::from_millis(60));
            assert!(got.is_empty(), "{name} {what}: events {got:?}");
            let efd = fds::eventfd().unwrap();
            p.control().add(efd.as_fd(), Interest::READABLE, 3).unwrap();
            p.control().delete(efd.as_fd()).unwrap();
        }
    }
}

#[test]
fn s09_o_path_is_ebadf_from_any_thread() {
    let _serial = one_at_a_time();
    let (r, _w) = fds::pipe().unwrap();
    let (sock, _peer) = fds::socketpair().unwrap();
    let efd = fds::eventfd().unwrap();
    let exe = std::env::current_exe().unwrap();
    let file = open(exe.to_str().unwrap(), OFlags::PATH).unwrap();
    let dir = open("/", OFlags::PATH).unwrap();
    let (pipe, sock, efd) = (
        o_path_of(r.as_fd()),
        o_path_of(sock.as_fd()),
        o_path_of(efd.as_fd()),
    );
    refused_from_every_thread(
        &[
            ("O_PATH pipe", pipe.as_fd()),
            ("O_PATH socket", sock.as_fd()),
            ("O_PATH eventfd", efd.as_fd()),
            ("O_PATH regular file", file.as_fd()),
            ("O_PATH directory", dir.as_fd()),
        ],
        libc::EBADF,
    );
}

/// io_uring cannot hold an io_uring fd in its fixed-file table: EBADF,
/// also from a thread whose add is queued for the owner.
#[test]
fn s09_an_io_uring_fd_is_ebadf_from_any_thread() {
    let _serial = one_at_a_time();
    let ring = io_uring_fd();
    refused_from_every_thread(&[("io_uring", ring.as_fd())], libc::EBADF);
}

/// A closed fd is EBADF from every thread.
#[test]
fn s09_a_closed_fd_is_ebadf_from_any_thread() {
    let _serial = one_at_a_time();
    // The highest number this process may open: never handed out here
    // (new fds take the lowest free number), so no poller or eventfd the
    // test makes can reuse it.
    let (soft, _) = userpoll::sys::nofile_limit();
    let raw = (soft.min(i32::MAX as u64) - 1) as i32;
    // Stays on libc: rustix's fcntl takes a BorrowedFd, which a number
    // that is (meant to be) not open cannot soundly be.
    // SAFETY: F_GETFD only reads the fd table; any number is allowed.
    let r = unsafe { libc::fcntl(raw, libc::F_GETFD) };
    assert_eq!(r, -1, "fd {raw} is open");
    // SAFETY: deliberately a number no file is open under; add only passes
    // it to the kernel, which answers EBADF.
    let closed = unsafe { BorrowedFd::borrow_raw(raw) };
    refused_from_every_thread(&[("closed fd", closed)], libc::EBADF);
}

/// Files the kernel cannot poll are refused with EPERM, as epoll refuses
/// them (the reference backend is asked for each), from every thread;
/// files epoll polls (procfs and sysfs files with poll support, a
/// terminal) are accepted. Before, they were accepted and reported ready
/// on every take (80,000 events in 150 ms).
#[test]
fn s09_files_epoll_cannot_poll_are_eperm_from_any_thread() {
    let _serial = one_at_a_time();
    let exe = std::env::current_exe().unwrap();
    let mut refused: Vec<(&str, OwnedFd)> = Vec::new();
    let mut accepted: Vec<(&str, OwnedFd)> = Vec::new();
    for (what, path, flags) in [
        ("regular file", exe.to_str().unwrap(), OFlags::RDONLY),
        ("directory", "/", OFlags::RDONLY | OFlags::DIRECTORY),
        ("/dev/null", "/dev/null", OFlags::RDWR),
        ("/dev/zero", "/dev/zero", OFlags::RDONLY),
        ("procfs stat", "/proc/self/stat", OFlags::RDONLY),
        ("procfs mounts", "/proc/self/mounts", OFlags::RDONLY),
        (
            "sysfs",
            "/sys/kernel/mm/transparent_hugepage/enabled",
            OFlags::RDONLY,
        ),
        ("pty master", "/dev/ptmx", OFlags::RDWR | OFlags::NOCTTY),
    ] {
        let Some(fd) = open(path, flags) else {
            continue;
        };
        let reference = userpoll::reference::Reference::new(1).unwrap();
        match reference.control().add(fd.as_fd(), Interest::READABLE, 1) {
            Ok(()) => accepted.push((what, fd)),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EPERM), "epoll on {what}: {e}");
                refused.push((what, fd));
            }
        }
    }
    assert!(
        refused.len() >= 3,
        "regular file, directory, /dev/null: {refused:?}"
    );
    let inputs: Vec<_> = refused.iter().map(|(w, fd)| (*w, fd.as_fd())).collect();
    refused_from_every_thread(&inputs, libc::EPERM);
    for (name, mut p) in pollers(1) {
        own(&mut p);
        for (what, fd) in &accepted {
            p.control()
                .add(fd.as_fd(), Interest::READABLE, 1)
                .unwrap_or_else(|e| panic!("{name}: {what} is pollable (epoll accepts it): {e}"));
            p.control().delete(fd.as_fd()).unwrap();
        }
    }
}

// ---------------------------------------------------------------------
// fork(): the child may not use the parent's poller, and dropping it
// there leaves the parent's polls as they were.

/// Runs `child` in a forked child, which reports through its exit code
/// (0: all went as expected); returns that code. The child does no more
/// than `child` does and then `_exit`s.
fn in_forked_child(child: impl FnOnce() -> i32) -> i32 {
    // The child runs only `child` (system calls, and the allocations of
    // its error values, which glibc's fork makes safe) and then `_exit`s
    // without running destructors or atexit handlers; a panic is caught
    // and reported as an exit code.
    // SAFETY: as above, the child touches nothing another thread may hold.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(99);
        // SAFETY: ends the child at once, as a forked child must.
        unsafe { libc::_exit(code) };
    }
    let child = rustix::process::Pid::from_raw(pid).expect("fork gave the parent a pid");
    let (_, status) = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty())
        .expect("waitpid")
        .expect("waitpid without WNOHANG waits for a status");
    status
        .exit_status()
        .unwrap_or_else(|| panic!("child ended by signal: {:#x}", status.as_raw()))
}

/// In a forked child every `poll`, `wait`, `add`, `modify` and `delete`
/// fails with EPERM (the child would otherwise take the parent's pending
/// event, or, in re-arm mode, re-arm it on the child's task and leave the
/// parent's registration dead once the child exits); the child drops the
/// poller and its control handle, and the parent then still gets its
/// pending event, and later fires.
#[test]
fn fork_the_child_gets_eperm_and_its_drop_leaves_the_parent_polling() {
    let _serial = one_at_a_time();
    for (name, p) in pollers(4) {
        let mut p = Some(p);
        let mut ctl = Some(p.as_ref().unwrap().control().clone());
        let parent = p.as_mut().unwrap();
        own(parent);
        let efd = fds::eventfd().unwrap();
        let other = fds::eventfd().unwrap();
        parent
            .control()
            .add(efd.as_fd(), Interest::READABLE, 1)
            .unwrap();
        parent.poll(&mut Events::with_capacity(4)).unwrap(); // armed in the kernel
        fds::fire(efd.as_fd()).unwrap();
        // Default, Sqpoll: the completion is in the CQ by now, in memory the
        // child shares; Coop, Defer: it waits for an enter.
        thread::sleep(Duration::from_millis(50));
        let mut events = Events::with_capacity(4);
        let code = in_forked_child(|| {
            let (mut p, ctl) = (p.take().unwrap(), ctl.take().unwrap());
            let eperm = |r: std::io::Result<()>| {
                r.as_ref().err().and_then(std::io::Error::raw_os_error) == Some(libc::EPERM)
            };
            if !eperm(
                p.wait(&mut events, Some(Duration::from_millis(100)))
                    .map(drop),
            ) {
                return 2;
            }
            if !eperm(p.poll(&mut events).map(drop)) {
                return 3;
            }
            if !eperm(ctl.add(other.as_fd(), Interest::READABLE, 9)) {
                return 4;
            }
            if !eperm(ctl.modify(efd.as_fd(), Interest::READABLE, 9)) {
                return 5;
            }
            if !eperm(ctl.delete(efd.as_fd())) {
                return 6;
            }
            // Unmaps the child's copy of the ring and closes its copies of
            // the fds; nothing the parent uses.
            drop(p);
            drop(ctl);
            0
        });
        assert_eq!(code, 0, "{name}: check {code} in the forked child failed");
        let mut p = p.take().expect("the parent keeps its poller");
        assert_eq!(
            take(&mut p),
            vec![1],
            "{name}: the event pending at the fork"
        );
        fds::drain(efd.as_fd()).unwrap();
        for round in 0..3 {
            fds::fire(efd.as_fd()).unwrap();
            assert_eq!(take(&mut p), vec![1], "{name}: fire {round} after the fork");
            fds::drain(efd.as_fd()).unwrap();
        }
        p.control()
            .add(other.as_fd(), Interest::READABLE, 2)
            .unwrap();
        fds::fire(other.as_fd()).unwrap();
        assert_eq!(take(&mut p), vec![2], "{name}: a new registration");
    }
}

// ---------------------------------------------------------------------
// S13: modify after the registered fd was closed and its number reused.

/// Decision (docs/uring-poll.md, S13): `modify` of a number whose
/// registered file was closed and the number reused succeeds, as under
/// the epoll backends (their kernel answers ENOENT, which they swallow);
/// it changes the registration, which still polls the *old* file (its
/// fixed-file slot holds it), never the new file behind the number. The
/// new file is polled only once it is added afresh, after a `delete`.
#[test]
fn s13_modify_after_the_number_is_reused_retargets_the_old_file_only() {
    let _serial = one_at_a_time();
    for (name, mut p) in pollers(4) {
        own(&mut p);
        let mut old = fds::eventfd().unwrap();
        let num = old.as_raw_fd();
        p.control().add(old.as_fd(), Interest::READABLE, 1).unwrap();
        p.poll(&mut Events::with_capacity(4)).unwrap(); // armed in the kernel
        let old_alive = old.try_clone().unwrap(); // the old file lives on
        let new = fds::eventfd().unwrap();
        // Makes `num` (owned by `old`) name `new`'s file; `old` keeps
        // owning the number, now for the new file.
        rustix::io::dup2(&new, &mut old).unwrap();
        assert_eq!(old.as_raw_fd(), num);
        drop(new);
        let reused = old; // number `num`, the new file
        p.control()
            .modify(reused.as_fd(), Interest::READABLE, 2)
            .unwrap_or_else(|e| panic!("{name}: modify after reuse: {e}"));
        fds::fire(reused.as_fd()).unwrap();
        let got = take_for(&mut p, Duration::from_millis(150));
        assert!(
            got.is_empty(),
            "{name}: the new file is not registered: {got:?}"
        );
        fds::fire(old_alive.as_fd()).unwrap();
        assert_eq!(
            take(&mut p),
            vec![2],
            "{name}: the old file, under the new data"
        );
        let e = p
            .control()
            .add(reused.as_fd(), Interest::READABLE, 3)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST), "{name}: {e}");
        p.control().delete(reused.as_fd()).unwrap();
        p.control()
            .add(reused.as_fd(), Interest::READABLE, 3)
            .unwrap();
        assert_eq!(
            take(&mut p),
            vec![3],
            "{name}: the new file, added afresh (ready)"
        );
        fds::drain(old_alive.as_fd()).unwrap();
        fds::fire(old_alive.as_fd()).unwrap();
        let got = take_for(&mut p, Duration::from_millis(100));
        assert!(
            got.iter().all(|&d| d == 3),
            "{name}: the old file is gone: {got:?}"
        );
    }
}
