//! The small set of raw calls the harness itself makes: clocks, CPU time,
//! futexes, the fd limit, timer slack. The futexes, the fd limit and the
//! timer slack go through rustix (in `userpoll::sys` where shared). The
//! clocks and CPU times stay on libc: another thread's CPU-time clock is a
//! raw `clockid_t` from `pthread_getcpuclockid`, which rustix cannot take,
//! rustix has no `getrusage`, and the clock reads on the measured path stay
//! the ones the gate's baseline was recorded with.

use std::io;
use std::num::NonZeroU64;
use std::sync::atomic::AtomicU32;

/// `CLOCK_MONOTONIC` in nanoseconds (vDSO: no system call).
#[inline]
pub fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CPU time of the calling thread in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`;
/// one system call: CPU-time clocks are not served by the vDSO).
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// Reads `clock` in nanoseconds (a system call for CPU-time clocks); 0 for
/// the clock of a thread that has exited.
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // A thread CPU clock of an exited thread fails (EINVAL), ts stays 0.
    // SAFETY: ts is a live timespec the kernel fills, or leaves as it is.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The CPU-time clock of thread `t` (read it with [`clock_ns`]; the
/// lookup itself makes no system call).
pub fn thread_cpu_clock(t: libc::pthread_t) -> libc::clockid_t {
    let mut id: libc::clockid_t = 0;
    // SAFETY: t is a live thread of this process (the caller passes its
    // own pthread_self, or one it keeps alive); id is a live clockid_t.
    unsafe { libc::pthread_getcpuclockid(t, &mut id) };
    id
}

/// User plus system CPU time of the whole process, every thread, in
/// nanoseconds (`getrusage(RUSAGE_SELF)`, one system call).
pub fn process_cpu_ns() -> u64 {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a live rusage the kernel fills; RUSAGE_SELF is valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Sleeps until `CLOCK_MONOTONIC` reaches `deadline_ns` (one system call,
/// or more when a signal interrupts it; returns how many were made).
pub fn sleep_until_ns(deadline_ns: u64) -> u64 {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    let mut calls = 0;
    loop {
        calls += 1;
        // SAFETY: ts is a live timespec; a null remainder is allowed with
        // TIMER_ABSTIME.
        let r = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        if r != libc::EINTR {
            return calls;
        }
    }
}

/// Sets the calling thread's timer slack (how late the kernel may end its
/// sleeps to batch wake-ups; 50 us by default). One `prctl` call.
pub fn set_timer_slack_ns(ns: u64) {
    // None is 0: the thread's default slack, as PR_SET_TIMERSLACK 0 is.
    let _ = rustix::thread::set_current_timer_slack(NonZeroU64::new(ns));
}

pub use userpoll::sys::futex_wake_all;

/// Blocks while `*word == expected`, at most `timeout` (one `futex` call).
/// Spurious returns are fine: callers re-check their condition.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: std::time::Duration) {
    // Only EFAULT-class errors remain, impossible for a live reference.
    let _ = userpoll::sys::futex_wait(word, expected, Some(timeout));
}

/// `RLIMIT_NOFILE` as (soft, hard).
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    Ok(userpoll::sys::nofile_limit())
}

/// Raises the soft fd limit to the hard one; the limit now in force.
pub use userpoll::sys::raise_fd_limit as raise_nofile_limit;

/// Number of fds open in this process right now.
pub fn open_fds() -> io::Result<u64> {
    Ok(userpoll::sys::open_fd_count()? as u64)
}

/// A small, fast, seedable generator (SplitMix64): the fire schedule must be
/// the same for every backend of a run, and in every writer thread.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n` > 0), without modulo bias worth measuring.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// `unix_secs` as `YYYY-MM-DD HH:MM UTC` (the proleptic Gregorian
/// calendar, from days since 1970-01-01; no time-zone data needed).
pub fn utc_text(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// Seconds since 1970-01-01 UTC now (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_text_is_the_calendar_date() {
        assert_eq!(super::utc_text(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::utc_text(951_827_696), "2000-02-29 12:34 UTC");
        assert_eq!(super::utc_text(1_795_000_000), "2026-11-18 11:06 UTC");
    }

    use super::*;

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn clocks_advance() {
        let t = now_ns();
        let c = thread_cpu_ns();
        let mut x = 0u64;
        for i in 0..100_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        assert!(now_ns() > t);
        assert!(thread_cpu_ns() >= c);
        assert!(process_cpu_ns() > 0);
    }
}
