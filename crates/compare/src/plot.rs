//! The two plots of a results folder, as SVG: latency by percentile on the
//! usual 1/(1-p) axis (HdrHistogram's plot: 0%, 90%, 99%, 99.9% ... evenly
//! spaced), one panel per backend family, and CPU ns/event per backend
//! with the range over repetitions. Both carry a subtitle saying what was
//! measured. They read the [`crate::summary`]; the caller writes the
//! subtitle.

use std::io;
use std::path::Path;

use plotters::prelude::*;

use crate::backends::{BackendId, Family};
use crate::hgrm::TICKS_PER_HALF_DISTANCE;
use crate::summary::{ratio, BackendSummary};

/// Line and bar colours: distinct, and dark enough to read on white
/// (plotters' Palette99 has pale yellows that vanish).
const COLORS: [(u8, u8, u8); 16] = [
    (214, 39, 40),
    (31, 119, 180),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (0, 0, 128),
    (128, 0, 0),
    (0, 100, 0),
    (184, 134, 11),
    (75, 0, 130),
    (0, 0, 0),
];

pub(crate) fn color(i: usize) -> RGBAColor {
    let (r, g, b) = COLORS[i % COLORS.len()];
    RGBColor(r, g, b).to_rgba()
}

/// The bar colour of a family.
fn family_color(f: Family) -> RGBAColor {
    match f {
        Family::Epoll => color(1),
        Family::Uring => color(3),
        Family::Userpoll => color(2),
    }
}

pub(crate) fn plot_err<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(format!("cannot draw plot: {e}"))
}

/// One latency curve: the backend and its (1/(1-p), us) points.
type Curve<'a> = (&'a BackendSummary, Vec<(f64, f64)>);

/// The points of `b`'s latency curve.
fn curve(b: &BackendSummary) -> Vec<(f64, f64)> {
    b.latency
        .iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .map(|v| (v.quantile_iterated_to(), v.value_iterated_to()))
        .filter(|(q, _)| *q < 1.0)
        .map(|(q, v)| (1.0 / (1.0 - q), v as f64 / 1000.0))
        .collect()
}

/// Draws the title and the subtitle (what was measured) at the top of
/// `root`; returns the area below them.
pub(crate) fn titled<'a>(
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    title: &str,
    subtitle: &str,
) -> io::Result<DrawingArea<SVGBackend<'a>, plotters::coord::Shift>> {
    root.fill(&WHITE).map_err(plot_err)?;
    let (top, rest) = root.split_vertically(58);
    top.draw(&Text::new(
        title.to_string(),
        (14, 8),
        ("sans-serif", 20).into_font(),
    ))
    .map_err(plot_err)?;
    top.draw(&Text::new(
        subtitle.to_string(),
        (14, 34),
        ("sans-serif", 14).into_font().color(&RGBColor(70, 70, 70)),
    ))
    .map_err(plot_err)?;
    Ok(rest)
}

/// Latency (us, log scale) against 1/(1-percentile) (log scale): one panel
/// per backend family ([`Family`]), so fifteen backends stay readable, with
/// `floor` and `epoll-et` dashed in every other panel as the common
/// reference. `subtitle` says what was measured.
pub fn latency(sums: &[BackendSummary], subtitle: &str, path: &Path) -> io::Result<()> {
    let curves: Vec<Curve<'_>> = sums
        .iter()
        .filter(|b| !b.latency.is_empty())
        .map(|b| (b, curve(b)))
        .collect();
    let families: Vec<Family> = Family::ALL
        .into_iter()
        .filter(|f| curves.iter().any(|(b, _)| b.id.family() == *f))
        .collect();
    let xmax = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .fold(10.0, f64::max);
    let (ymin, ymax) = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold((f64::INFINITY, 1.0f64), |(a, b), y| (a.min(y), b.max(y)));
    let ymin = if ymin.is_finite() {
        (ymin * 0.8).max(0.01)
    } else {
        0.1
    };
    let panel_h = 400;
    let height = 58 + panel_h * families.len().max(1) as u32;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    let body = titled(
        &root,
        "fire-to-delivery latency by percentile (one panel per family; dashed: the references)",
        subtitle,
    )?;
    let panels = body.split_evenly((families.len().max(1), 1));
    let legend_style = ("sans-serif", 14).into_font();
    for (family, panel) in families.iter().zip(&panels) {
        let (left, right) = panel.split_horizontally(880);
        let mut chart = ChartBuilder::on(&left)
            .caption(family.title(), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                (1.0..xmax * 1.5).log_scale(),
                (ymin..ymax * 1.5).log_scale(),
            )
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("percentile (the axis is 1/(1-p): 90%, 99%, 99.9% ... evenly spaced)")
            .y_desc("latency, us (log)")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| tick_label(*y))
            .draw()
            .map_err(plot_err)?;
        let mut legend_row = 0;
        for (i, (b, pts)) in curves.iter().enumerate() {
            let own = b.id.family() == *family;
            let reference = !own && matches!(b.id, BackendId::Floor | BackendId::EpollEt);
            if !own && !reference {
                continue;
            }
            let color = color(i);
            if own {
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                    .map_err(plot_err)?;
            } else {
                chart
                    .draw_series(DashedLineSeries::new(
                        pts.iter().copied(),
                        6,
                        4,
                        color.mix(0.6).stroke_width(1),
                    ))
                    .map_err(plot_err)?;
            }
            // The legend, beside the plot so it hides no line.
            let y = 50 + 22 * legend_row;
            legend_row += 1;
            let label = if own {
                b.id.to_string()
            } else {
                format!("{} (reference)", b.id)
            };
            right
                .draw(&PathElement::new(
                    [(8, y), (36, y)],
                    color.stroke_width(if own { 3 } else { 1 }),
                ))
                .map_err(plot_err)?;
            right
                .draw(&Text::new(label, (42, y - 7), legend_style.clone()))
                .map_err(plot_err)?;
        }
    }
    root.present().map_err(plot_err)
}

/// An axis tick: no `.0` on whole numbers, at most three significant
/// digits below 10 (0.05, 0.5, 2.5).
pub fn tick_label(v: f64) -> String {
    if v.fract() == 0.0 || v.abs() >= 100.0 {
        return format!("{v:.0}");
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `x` = 1/(1-p) as a percentile: 0%, 90%, 99%, 99.9% ...
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    let decimals = (x.log10() - 2.0).ceil().max(0.0) as usize;
    format!("{p:.decimals$}%")
}

/// Median CPU ns/event (whole process) per backend as bars, with a line
/// over the range of the repetitions; bars coloured by family, in the
/// catalogue's order (which keeps each family together). `subtitle` says
/// what was measured.
pub fn cpu(sums: &[BackendSummary], subtitle: &str, path: &Path) -> io::Result<()> {
    let good: Vec<&BackendSummary> = sums.iter().filter(|b| b.failed < b.runs).collect();
    let n = good.len().max(1);
    let floor = good.iter().copied().find(|b| b.id == BackendId::Floor);
    let xmax = good.iter().map(|b| b.cpu_ns_range.1).fold(1.0, f64::max) * 1.25;
    let height = 58 + 110 + 32 * n as u32;
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    let body = titled(
        &root,
        "CPU ns per event, whole process (median; black line: range over reps)",
        subtitle,
    )?;
    // The first backend at the top.
    let row = |i: usize| n - 1 - i;
    let ids: Vec<String> = (0..n)
        .map(|r| {
            good.get(n - 1 - r)
                .map_or(String::new(), |b| b.id.to_string())
        })
        .collect();
    let mut chart = ChartBuilder::on(&body)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(150)
        .build_cartesian_2d(0.0..xmax, (0..n.saturating_sub(1).max(1)).into_segmented())
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(
            "CPU ns / event (label: median, and the median per-repetition ratio to floor); \
             colour: blue floor and raw epoll, orange io_uring, green userpoll ring and libraries",
        )
        .y_labels(n)
        .x_label_formatter(&|x| tick_label(*x))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => ids.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()
        .map_err(plot_err)?;
    for (i, b) in good.iter().enumerate() {
        let color = family_color(b.id.family());
        let r = row(i);
        chart
            .draw_series(std::iter::once({
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(r)),
                        (b.cpu_ns.0, SegmentValue::Exact(r + 1)),
                    ],
                    color.mix(0.7).filled(),
                );
                bar.set_margin(4, 4, 0, 0);
                bar
            }))
            .map_err(plot_err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                [
                    (b.cpu_ns_range.0, SegmentValue::CenterOf(r)),
                    (b.cpu_ns_range.1, SegmentValue::CenterOf(r)),
                ],
                BLACK.stroke_width(2),
            )))
            .map_err(plot_err)?;
        let label = match ratio(Some(b), floor) {
            Some(r) => format!("{:.0} ({r:.2}x)", b.cpu_ns.0),
            None => format!("{:.0}", b.cpu_ns.0),
        };
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                (
                    b.cpu_ns_range.1.max(b.cpu_ns.0) + xmax * 0.01,
                    SegmentValue::CenterOf(r),
                ),
                ("sans-serif", 13).into_font(),
            )))
            .map_err(plot_err)?;
    }
    root.present().map_err(plot_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(100_000.0), "99.999%");
    }

    #[test]
    fn ticks_have_no_trailing_zero() {
        assert_eq!(tick_label(1000.0), "1000");
        assert_eq!(tick_label(10.0), "10");
        assert_eq!(tick_label(0.5), "0.5");
        assert_eq!(tick_label(2.25), "2.25");
        assert_eq!(tick_label(0.05), "0.05");
        assert_eq!(tick_label(150.7), "151");
    }
}
