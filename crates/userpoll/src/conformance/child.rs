//! Re-running one test alone in a child process: the test binary started
//! again with only that test selected (libtest names each test's thread
//! after the test, which gives the filter). For checks that count the
//! process's fds and threads, which other tests of the same binary change.

use std::thread;

/// Set in the child's environment: the test runs its body in-process.
const CHILD: &str = "USERPOLL_CHILD";

/// Runs `body` alone in a child process: the test binary started again with
/// only the calling test selected. In that child, or where the test has no
/// name to select it by, runs `body` here. Panics if the child fails or ran
/// no test; passes the child's `SKIPPED` and `soak:` lines on.
pub fn alone(body: impl FnOnce()) {
    let name = thread::current().name().map(str::to_owned);
    match name {
        Some(name) if std::env::var_os(CHILD).is_none() && name != "main" => {
            let exe = std::env::current_exe().expect("current_exe");
            let out = std::process::Command::new(exe)
                .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
                .env(CHILD, "1")
                .output()
                .expect("start the test binary again");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success(),
                "{name} in a child process failed:\n{text}"
            );
            assert!(
                text.contains("1 passed"),
                "the child ran no test named {name}:\n{text}"
            );
            eprint!(
                "{}",
                text.lines()
                    .filter(|l| l.starts_with("SKIPPED") || l.starts_with("soak:"))
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
            );
        }
        _ => body(),
    }
}
