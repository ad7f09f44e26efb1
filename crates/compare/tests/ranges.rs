//! Every numeric option of `compare run` refuses a value outside its range
//! with exit 2, before anything runs, and the message names the option and
//! the range (never only one end of it).

mod common;

use common::usage_error;

#[test]
fn fds_names_its_range_at_both_ends() {
    let range = "use 1 to 2147483647 fds";
    usage_error(&["--fds", "3000000000"], &["--fds 3000000000", range]);
    usage_error(&["--fds", "0"], &["--fds 0", range]);
    usage_error(
        &["--fds", "99999999999999999999999"],
        &["--fds", "too large", range],
    );
}

#[test]
fn active_names_its_range() {
    let range = "between 1 and --fds (10)";
    usage_error(&["--fds", "10", "--active", "0"], &["--active 0", range]);
    usage_error(&["--fds", "10", "--active", "11"], &["--active 11", range]);
}

#[test]
fn rounds_and_reps_name_their_ranges() {
    usage_error(&["--rounds", "0"], &["--rounds 0", "use 1 to 1000000000"]);
    usage_error(
        &["--rounds", "1000000001"],
        &["--rounds 1000000001", "use 1 to 1000000000"],
    );
    usage_error(&["--reps", "0"], &["--reps 0", "use 1 to 1000"]);
    usage_error(&["--reps", "1001"], &["--reps 1001", "use 1 to 1000"]);
}

#[test]
fn threads_name_their_ranges() {
    usage_error(&["--writers", "0"], &["--writers 0", "use 1 to 256"]);
    usage_error(&["--writers", "257"], &["--writers 257", "use 1 to 256"]);
    usage_error(&["--consumers", "0"], &["--consumers 0", "use 1 to 64"]);
    usage_error(&["--consumers", "65"], &["--consumers 65", "use 1 to 64"]);
}

#[test]
fn rate_duration_churn_and_spin_name_their_ranges() {
    let rate = "more than 0 and at most 1000000000";
    usage_error(&["--rate", "0"], &["--rate 0", rate]);
    usage_error(&["--rate", "2e9"], &["--rate 2000000000", rate]);
    let duration = "more than 0s and at most 86400s";
    usage_error(&["--duration", "0s"], &["--duration", duration]);
    usage_error(&["--duration", "2d"], &["unknown unit"]);
    usage_error(&["--duration", "90000s"], &["--duration 90000s", duration]);
    usage_error(
        &["--scenario", "churn", "--fds", "100", "--churn", "0"],
        &["--churn 0", "use 1 to 100"],
    );
    usage_error(
        &["--scenario", "churn", "--fds", "100", "--churn", "101"],
        &["--churn 101", "use 1 to 100"],
    );
    usage_error(
        &["--spin-ns", "10000001"],
        &["--spin-ns 10000001", "use 0 to 10000000"],
    );
}

#[test]
fn a_number_that_is_not_a_whole_number_says_so() {
    usage_error(&["--fds", "ten"], &["--fds", "not a whole number"]);
}
