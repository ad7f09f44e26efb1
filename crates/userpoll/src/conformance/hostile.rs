//! Hostile inputs, table-driven: every `Duration` edge, every capacity edge,
//! every kind of fd, `Events` buffers of any capacity, S9's order of checks,
//! and stale-only wake-ups. Each test is named after the rule a bug here
//! broke (issue 12), and runs on every backend and profile.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::fds::{self, unused_fd_number};
use super::{make, setup, PATIENCE};
use crate::sys::errno_name;
use rustix::fs::{Mode, OFlags};

use crate::{Control, Events, Interest, Poller};

/// Most system calls a `wait` that blocks until one fire may make: a few
/// enters, wake-ups and re-tries, not the tens of thousands of a spin.
const BLOCKED_WAIT_SYSCALLS: u64 = 64;

/// S12: a `wait` with any `Duration` either returns a pending event at once
/// or blocks until one comes (or its timeout passes): no panic on an
/// `Instant` overflow, and no spin on a timeout that does not fit the
/// kernel's types (`Duration::MAX` once made io_uring return at once, over
/// and over).
pub fn s12_any_timeout_blocks_or_returns<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let mut h = setup!("s12", new, 4);
    let efd = fds::eventfd().unwrap();
    h.control().add(efd.as_fd(), Interest::READABLE, 7).unwrap();
    let huge = [
        Duration::MAX,
        Duration::from_secs(u64::MAX / 2),
        Duration::from_secs(i64::MAX as u64 + 1),
        Duration::from_secs(i64::MAX as u64),
        Duration::from_secs(u64::from(u32::MAX)),
        Duration::new(i32::MAX as u64 / 1000 + 1, 999_999_999),
    ];
    let tiny = [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_nanos(999_999),
        Duration::from_millis(1),
    ];
    for t in huge.iter().chain(&tiny) {
        // Pending: every timeout returns it at once.
        fds::fire(efd.as_fd()).unwrap();
        let (ev, _) = h.expect(7, &format!("fired before wait({t:?})"));
        assert!(ev.is_readable());
        fds::drain(efd.as_fd()).unwrap();
    }
    for t in tiny {
        // Nothing pending: a short timeout returns 0 (and does not panic).
        let mut events = Events::with_capacity(8);
        let n = h.poller.wait(&mut events, Some(t)).expect("wait");
        assert!(
            n == 0 || events.iter().all(|e| e.data() == 7),
            "wait({t:?}) with nothing fired returned {events:?}"
        );
    }
    for t in huge {
        // Nothing pending: blocks (few system calls) until a fire from
        // another thread, then returns it.
        let before = h.poller.stats();
        let stop = Arc::new(AtomicBool::new(false));
        let fire = {
            let efd = efd.try_clone().unwrap();
            let stop = stop.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(30));
                while !stop.load(Ordering::Acquire) {
                    fds::fire(efd.as_fd()).unwrap();
                    thread::sleep(Duration::from_millis(100));
                }
            })
        };
        let mut events = Events::with_capacity(8);
        let n = h.poller.wait(&mut events, Some(t)).expect("wait");
        stop.store(true, Ordering::Release);
        fire.join().unwrap();
        assert!(n >= 1, "wait({t:?}) returned {n} with no limit on its time");
        let spent = h.poller.stats() - before;
        assert!(
            spent.syscalls() <= BLOCKED_WAIT_SYSCALLS,
            "wait({t:?}) made {} system calls before one fire came: it spins ({spent:?})",
            spent.syscalls()
        );
        fds::drain(efd.as_fd()).unwrap();
        h.watch(Duration::from_millis(5));
    }
}

/// S12: `wait(None)` with no wake never returns 0, also when everything the kernel
/// reported belonged to registrations deleted meanwhile (another thread
/// adds and deletes a constantly fired fd while the owner waits).
pub fn s12_wait_none_never_returns_zero<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let Some(poller) = make("s12", new, 4) else {
        return;
    };
    let mut poller = poller;
    let hot = fds::eventfd().unwrap();
    let done = fds::eventfd().unwrap();
    const DONE: u64 = 2;
    poller
        .control()
        .add(done.as_fd(), Interest::READABLE, DONE)
        .unwrap();
    fds::fire(hot.as_fd()).unwrap(); // stays readable: every add reports it
    let churn = {
        let ctl = poller.control().clone();
        let hot = hot.try_clone().unwrap();
        let done = done.try_clone().unwrap();
        thread::spawn(move || {
            for i in 0..3000u64 {
                ctl.add(hot.as_fd(), Interest::READABLE, 100 + i).unwrap();
                fds::fire(hot.as_fd()).unwrap();
                ctl.delete(hot.as_fd()).unwrap();
            }
            fds::fire(done.as_fd()).unwrap();
        })
    };
    let mut events = Events::with_capacity(16);
    let mut takes = 0;
    'outer: loop {
        let n = poller.wait(&mut events, None).expect("wait(None)");
        takes += 1;
        assert!(
            n > 0,
            "take {takes}: wait(None) returned 0 (only stale events were pending)"
        );
        for ev in &events {
            if ev.data() == DONE {
                break 'outer;
            }
        }
    }
    churn.join().unwrap();
}

/// S12: a take fills an `Events` of any capacity, clones included (a
/// derived clone once had room for none, and backends then lost the event,
/// spun, or blocked with it pending), and several takes of one event each
/// deliver every ready registration.
pub fn s12_events_of_any_capacity<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let Some(mut poller) = make("s12", new, 8) else {
        return;
    };
    let efds: Vec<OwnedFd> = (0..3).map(|_| fds::eventfd().unwrap()).collect();
    for (i, fd) in efds.iter().enumerate() {
        poller
            .control()
            .add(fd.as_fd(), Interest::READABLE, i as u64)
            .unwrap();
    }
    for cap in [0usize, 1, 2, 1000] {
        let made = Events::with_capacity(cap);
        for (label, mut events) in [("new", Events::with_capacity(cap)), ("clone", made.clone())] {
            assert!(events.capacity() >= 1, "{label} of capacity {cap}");
            for fd in &efds {
                fds::fire(fd.as_fd()).unwrap();
            }
            let mut seen = std::collections::HashSet::new();
            let deadline = std::time::Instant::now() + PATIENCE;
            while seen.len() < efds.len() {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                assert!(
                    !left.is_zero(),
                    "Events {label} of capacity {cap}: {} of 3 fired fds reported",
                    seen.len()
                );
                let n = poller.wait(&mut events, Some(left)).expect("wait");
                assert!(n <= events.capacity(), "{n} events in room for fewer");
                seen.extend(events.iter().map(|e| e.data()));
            }
            for fd in &efds {
                fds::drain(fd.as_fd()).unwrap();
            }
            // Leftover events of this round (another take may still report
            // a drained fd, spuriously) do not count in the next one.
            let mut rest = Events::with_capacity(16);
            while poller
                .wait(&mut rest, Some(Duration::from_millis(5)))
                .unwrap()
                > 0
            {}
        }
    }
}

/// S8, S9: a capacity out of range is an error with a clear errno
/// (EINVAL, EMFILE or ENOMEM), never a panic, an abort or a huge
/// allocation.
pub fn s08_capacity_edges_are_errors<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    // Available here at all?
    if make("s08", new, 1).is_none() {
        return;
    }
    for cap in [
        0,
        (1 << 30) - 1,
        1 << 30,
        u32::MAX as usize,
        1 << 32,
        usize::MAX / 2,
        usize::MAX,
    ] {
        match new(cap) {
            Ok(p) => panic!(
                "capacity {cap} accepted (capacity() = {}); no process here can hold that many fds",
                p.capacity()
            ),
            Err(e) => assert!(
                matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | libc::EMFILE | libc::ENOMEM)
                ),
                "capacity {cap}: {e} ({:?})",
                e.raw_os_error()
            ),
        }
    }
}

/// S9: the interest is checked first: a bad interest is EINVAL whatever
/// the fd (not open, not registered, registered).
pub fn s09_bad_interest_is_einval_before_any_fd_check<P: Poller>(
    new: &dyn Fn(usize) -> io::Result<P>,
) {
    let h = setup!("s09", new, 4);
    let bad = Interest::from_epoll_bits(0);
    let registered = fds::eventfd().unwrap();
    let unregistered = fds::eventfd().unwrap();
    h.control()
        .add(registered.as_fd(), Interest::READABLE, 1)
        .unwrap();
    let closed = unused_fd_number();
    // SAFETY: only the number is used; the backends check it (EBADF) and
    // never take ownership.
    let closed = unsafe { BorrowedFd::borrow_raw(closed) };
    let c = h.control();
    let cases: [(&str, io::Result<()>); 5] = [
        ("add of an fd that is not open", c.add(closed, bad, 9)),
        ("add of a registered fd", c.add(registered.as_fd(), bad, 9)),
        ("modify of an fd that is not open", c.modify(closed, bad, 9)),
        (
            "modify of an unregistered fd",
            c.modify(unregistered.as_fd(), bad, 9),
        ),
        (
            "modify of a registered fd",
            c.modify(registered.as_fd(), bad, 9),
        ),
    ];
    for (what, r) in cases {
        let e = r.expect_err(what);
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{what}: {e}");
    }
}

/// One kind of fd for [`s09_every_fd_kind`]: the fd to register, what keeps
/// it (and its peer) open, and the errno `add` must give (0: accepted).
struct Kind {
    name: &'static str,
    fd: OwnedFd,
    _peer: Option<OwnedFd>,
    errno: i32,
}

fn open(path: &str, flags: OFlags) -> OwnedFd {
    rustix::fs::open(path, flags | OFlags::CLOEXEC, Mode::empty()).expect(path)
}

fn kinds() -> Vec<Kind> {
    let ok = |name, fd: OwnedFd, peer: Option<OwnedFd>| Kind {
        name,
        fd,
        _peer: peer,
        errno: 0,
    };
    let (pr, pw) = fds::pipe().unwrap();
    let (pr2, pw2) = fds::pipe().unwrap();
    let (sa, sb) = fds::socketpair().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let file = tempfile();
    vec![
        ok("eventfd", fds::eventfd().unwrap(), None),
        ok("pipe read end", pr, Some(pw)),
        ok("pipe write end", pw2, Some(pr2)),
        ok("socketpair", sa, Some(sb)),
        ok("TCP listener", OwnedFd::from(listener), None),
        ok(
            "TCP stream",
            OwnedFd::from(client),
            Some(OwnedFd::from(server)),
        ),
        Kind {
            name: "regular file",
            fd: file,
            _peer: None,
            errno: libc::EPERM,
        },
        Kind {
            name: "directory",
            fd: open("/", OFlags::RDONLY | OFlags::DIRECTORY),
            _peer: None,
            errno: libc::EPERM,
        },
        Kind {
            name: "/dev/null",
            fd: open("/dev/null", OFlags::RDWR),
            _peer: None,
            errno: libc::EPERM,
        },
        Kind {
            name: "O_PATH fd",
            fd: open("/", OFlags::PATH),
            _peer: None,
            errno: libc::EBADF,
        },
    ]
}

/// An unlinked regular file in the temp dir.
fn tempfile() -> OwnedFd {
    rustix::fs::open(
        std::env::temp_dir(),
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .expect("O_TMPFILE in the temp dir")
}

/// S9: every kind of fd gets the same answer as kernel epoll gives it
/// (accepted; EPERM for what cannot be polled; EBADF for `O_PATH` and for
/// a number that is not open), the same from the owner thread and from
/// another thread, and a refused `add` leaves nothing behind (the one slot
/// of the poller is still free, `delete` finds nothing).
pub fn s09_every_fd_kind<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let Some(mut poller) = make("s09", new, 1) else {
        return;
    };
    let spare = fds::eventfd().unwrap();
    let mut events = Events::with_capacity(8);
    // A first take makes the taking thread the owner where a backend has one.
    poller.poll(&mut events).unwrap();
    let closed = unused_fd_number();
    for kind in kinds() {
        for remote in [false, true] {
            let place = if remote {
                "another thread"
            } else {
                "the owner"
            };
            let ctl = poller.control().clone();
            let fd = kind.fd.as_raw_fd();
            let r = thread::scope(|s| {
                let add = || {
                    // SAFETY: `kind.fd` is open for this whole scope.
                    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                    ctl.add(fd, Interest::READABLE, 5)
                };
                if remote {
                    s.spawn(add).join().unwrap()
                } else {
                    add()
                }
            });
            match (kind.errno, r) {
                (0, Ok(())) => {
                    poller.control().delete(kind.fd.as_fd()).unwrap();
                }
                (0, Err(e)) => panic!("{}: add from {place} refused: {e}", kind.name),
                (want, Ok(())) => panic!(
                    "{}: add from {place} accepted; epoll gives {}",
                    kind.name,
                    errno_name(want)
                ),
                (want, Err(e)) => {
                    assert_eq!(
                        e.raw_os_error(),
                        Some(want),
                        "{}: add from {place}: {e}",
                        kind.name
                    );
                    let e = poller.control().delete(kind.fd.as_fd()).unwrap_err();
                    assert_eq!(
                        e.raw_os_error(),
                        Some(libc::ENOENT),
                        "{}: a refused add left a registration ({e})",
                        kind.name
                    );
                }
            }
            // Nothing left behind: the only slot is free, and takes work.
            poller
                .control()
                .add(spare.as_fd(), Interest::READABLE, 6)
                .unwrap_or_else(|e| panic!("{} from {place}: slot not free after: {e}", kind.name));
            poller.poll(&mut events).unwrap();
            assert!(
                events.iter().all(|e| e.data() == 6),
                "{} from {place}: events of a refused add: {events:?}",
                kind.name
            );
            poller.control().delete(spare.as_fd()).unwrap();
        }
    }
    // A number that is not open: EBADF from both places.
    for remote in [false, true] {
        let ctl = poller.control().clone();
        let add = move || {
            // SAFETY: only the number is used; it is not open.
            ctl.add(
                unsafe { BorrowedFd::borrow_raw(closed) },
                Interest::READABLE,
                5,
            )
        };
        let r = if remote {
            thread::spawn(add).join().unwrap()
        } else {
            add()
        };
        let e = r.expect_err("add of an fd that is not open");
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e}");
    }
}

/// The fds of this process that are open now.
fn open_fds() -> std::collections::HashSet<i32> {
    let names: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The directory's own fd was in the listing and is closed now.
    names
        .into_iter()
        // Stays on libc: rustix's fcntl takes a BorrowedFd, which a number
        // that may have closed since the listing cannot soundly be.
        // SAFETY: F_GETFD only reads the fd table; any number is allowed.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1)
        .collect()
}

/// S9: the poller's own fds (its epoll instance, ring, wake-up or stop
/// eventfd: whatever creating and first using it opened) registered with
/// itself get a clear error or are accepted like any fd of their kind,
/// never a hang, a crash or a broken poller: takes still return, `delete`
/// works, and an ordinary registration still gets its event. Runs alone in
/// a child process, so that the fds that appear are the poller's.
pub fn s09_the_pollers_own_fds<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    super::child::alone(|| {
        let efd = fds::eventfd().unwrap();
        let before = open_fds();
        let Some(p) = make("s09", new, 8) else {
            return;
        };
        let mut h = super::Harness::new(p, 16);
        // The first take enables a ring that is set up lazily.
        h.poll();
        let mut own: Vec<i32> = open_fds().difference(&before).copied().collect();
        own.sort_unstable();
        assert!(!own.is_empty(), "a poller that opened no fd of its own?");
        h.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
        for fd in own {
            // SAFETY: the poller keeps `fd` open for as long as it lives,
            // which is longer than this borrow.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            match h.control().add(borrowed, Interest::READABLE, 100) {
                Ok(()) => {
                    h.watch(Duration::from_millis(20));
                    h.control()
                        .delete(borrowed)
                        .unwrap_or_else(|e| panic!("delete of own fd {fd}: {e}"));
                }
                Err(e) => assert!(
                    matches!(
                        e.raw_os_error(),
                        // EEXIST: the poller's own kernel object holds it
                        // already (epoll-ring's stop eventfd).
                        Some(libc::EINVAL | libc::EBADF | libc::EPERM | libc::ELOOP | libc::EEXIST)
                    ),
                    "own fd {fd}: {e}"
                ),
            }
            fds::fire(efd.as_fd()).unwrap();
            h.expect(1, &format!("after registering own fd {fd}"));
            fds::drain(efd.as_fd()).unwrap();
        }
    });
}
