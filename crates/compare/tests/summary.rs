//! The summary table as printed: a spread measured over one repetition is
//! shown as unknown (`± ?`), never as `± 0%`; and the columns stay aligned
//! whatever the values (a spread of 100% or more, a long number).

mod common;

use common::{compare, text, tmp};
use compare::table::{Align, Table};

#[test]
fn one_repetition_shows_the_spread_as_unknown() {
    let dir = tmp("reps1");
    let out = dir.join("out");
    let o = compare(&[
        "run",
        "--backends",
        "floor,epoll-et",
        "--fds",
        "32",
        "--active",
        "8",
        "--rounds",
        "10",
        "--reps",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("floor ") || l.starts_with("epoll-et "))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for r in rows {
        assert_eq!(r.matches("± ?").count(), 3, "three unknown spreads: {r}");
        assert!(!r.contains('%'), "no spread in percent from one run: {r}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where each of `cells` ends on `line` (found in order), in characters
/// from the start of the line (`±` is two bytes).
fn ends(line: &str, cells: &[&str]) -> Vec<usize> {
    let mut from = 0;
    cells
        .iter()
        .map(|c| {
            let at = from
                + line[from..]
                    .find(c)
                    .unwrap_or_else(|| panic!("{c} in {line}"));
            from = at + c.len();
            line[..from].chars().count()
        })
        .collect()
}

#[test]
fn columns_stay_aligned_whatever_the_values() {
    use Align::{Left, Right};
    let mut t = Table::new(&[
        ("backend", Left),
        ("events/s", Right),
        ("", Right),
        ("cpu ns/ev", Right),
    ]);
    t.row(vec!["a".into(), "12".into(), "± 5%".into(), "9".into()]);
    t.row(vec![
        "uring-poll:sqpoll".into(),
        "123456789".into(),
        "± 150%".into(),
        "1234567".into(),
    ]);
    t.row(vec!["b".into(), "1".into(), "± ?".into(), "10".into()]);
    let text = t.render();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    // Right-aligned columns end at the same offset on every line.
    let header = ends(lines[0], &["backend", "events/s", "cpu ns/ev"]);
    let a = ends(lines[1], &["a", "12", "± 5%", "9"]);
    let wide = ends(
        lines[2],
        &["uring-poll:sqpoll", "123456789", "± 150%", "1234567"],
    );
    let b = ends(lines[3], &["b", "1", "± ?", "10"]);
    assert_eq!(header[1], a[1], "{text}");
    assert_eq!(a[1], wide[1], "{text}");
    assert_eq!(wide[1], b[1], "{text}");
    assert_eq!(a[2], wide[2], "spreads end together: {text}");
    assert_eq!(b[2], wide[2], "{text}");
    assert_eq!(header[2], a[3], "{text}");
    assert_eq!(a[3], wide[3], "{text}");
    assert_eq!(b[3], wide[3], "{text}");
}
