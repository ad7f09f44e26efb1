//! A kernel without io_uring (ENOSYS) or with it disabled (EPERM): creation
//! fails with an error naming the cause, and the conformance suite skips
//! with that reason instead of failing or passing silently. Simulated with
//! a seccomp filter on `io_uring_setup` in a child process (this test
//! binary run again), so nothing else on the machine is affected.

use std::process::Command;

use uring_poll::{Profile, UringPoll};

const CHILD: &str = "URING_POLL_SECCOMP_ERRNO";

/// Makes `io_uring_setup` fail with `errno` for this thread and any it
/// creates later.
#[cfg(target_arch = "x86_64")]
fn deny_io_uring_setup(errno: u32) {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const ARCH_X86_64: u32 = 0xc000_003e;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let f = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut prog = [
        f(LD_W_ABS, 0, 0, 4), // arch
        f(JEQ_K, 0, 3, ARCH_X86_64),
        f(LD_W_ABS, 0, 0, 0), // syscall number
        f(JEQ_K, 0, 1, libc::SYS_io_uring_setup as u32),
        f(RET_K, 0, 0, RET_ERRNO | errno),
        f(RET_K, 0, 0, RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // Required before an unprivileged filter.
    rustix::thread::set_no_new_privs(true).unwrap();
    // Stays on libc: rustix has no seccomp call.
    // SAFETY: fprog points to a live, valid BPF program for the call.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
        )
    };
    assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
}

/// The child: runs only when the parent set the variable.
#[test]
fn child_without_io_uring() {
    let Some(errno) = std::env::var(CHILD)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return;
    };
    #[cfg(target_arch = "x86_64")]
    deny_io_uring_setup(errno as u32);
    for &profile in Profile::ALL {
        let e = UringPoll::builder().profile(profile).build(8).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(errno), "{profile}: {e}");
        let why = profile.explain(&e).expect("a setup error is explained");
        println!("ERROR {profile}: {e}: {why}");
    }
    for &profile in Profile::ALL {
        let e = Profile::is_supported(profile);
        assert!(!e, "{profile} probed as supported without io_uring");
    }
    // The suite skips, saying why.
    userpoll::conformance::s01_persistent_registration(&|cap| UringPoll::new(cap));
}

fn run_child(errno: i32) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_without_io_uring",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, errno.to_string())
        .env_remove("USERPOLL_REQUIRE_BACKEND")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{text}");
    text
}

#[test]
fn without_io_uring_creation_fails_with_the_errno_explained_and_the_suite_skips() {
    if cfg!(not(target_arch = "x86_64")) {
        eprintln!("SKIPPED: the seccomp filter here is written for x86_64 only");
        return;
    }
    let text = run_child(libc::ENOSYS);
    assert!(
        text.contains("io_uring_setup is not implemented by this kernel"),
        "{text}"
    );
    assert!(text.contains("SKIPPED s01"), "{text}");
    let text = run_child(libc::EPERM);
    assert!(
        text.contains("io_uring is disabled here (kernel.io_uring_disabled"),
        "{text}"
    );
    assert!(text.contains("SKIPPED s01"), "{text}");
}
