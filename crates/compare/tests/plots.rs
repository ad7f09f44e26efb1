//! The plots of a results folder say what was measured (a subtitle with
//! fds, fd kind, fired per round, handler, repetitions, kernel and date),
//! write ticks without a trailing `.0`, and split the latency plot into
//! one panel per backend family so many backends stay readable.

mod common;

use common::{compare, text, tmp};

/// Every `<text>` element's content in an SVG.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

#[test]
fn plots_carry_a_subtitle_whole_ticks_and_a_panel_per_family() {
    let dir = tmp("plots");
    let out = dir.join("out");
    let o = compare(&[
        "run",
        "--backends",
        "floor,epoll-et,uring-raw,mio",
        "--fds",
        "32",
        "--active",
        "8",
        "--rounds",
        "20",
        "--reps",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    for name in ["latency.svg", "cpu.svg"] {
        let svg = std::fs::read_to_string(out.join(name)).unwrap();
        let t = texts(&svg);
        let subtitle = t
            .iter()
            .find(|s| s.starts_with("32 eventfd fds"))
            .unwrap_or_else(|| panic!("{name}: no subtitle in {t:?}"));
        for part in [
            "8 fired per round",
            "handler read",
            "2 rep(s)",
            kernel.trim(),
            " UTC",
        ] {
            assert!(subtitle.contains(part), "{name}: {part:?} in {subtitle:?}");
        }
        for s in &t {
            let s = s.trim();
            let is_number = !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.');
            assert!(
                !(is_number && s.ends_with(".0")),
                "{name}: tick {s:?} has a trailing .0"
            );
        }
    }
    let latency = texts(&std::fs::read_to_string(out.join("latency.svg")).unwrap());
    for panel in [
        "floor and raw epoll",
        "io_uring (uring-raw, uring-poll setups)",
        "userpoll ring, mio, polling, reference",
    ] {
        assert!(
            latency.iter().any(|s| s == panel),
            "panel {panel:?} in {latency:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
