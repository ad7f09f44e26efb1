//! The two plots of a results folder, as SVG: latency by percentile on the
//! usual 1/(1-p) axis (HdrHistogram's plot: 0%, 90%, 99%, 99.9% ... evenly
//! spaced), and CPU ns/event per backend with the range over repetitions.

use std::io;
use std::path::Path;

use plotters::prelude::*;

use crate::backends::BackendId;
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

fn color(i: usize) -> RGBAColor {
    let (r, g, b) = COLORS[i % COLORS.len()];
    RGBColor(r, g, b).to_rgba()
}

fn plot_err<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(format!("cannot draw plot: {e}"))
}

/// Latency (us, log scale) against 1/(1-percentile) (log scale), one line
/// per backend.
pub fn latency(sums: &[BackendSummary], path: &Path) -> io::Result<()> {
    let series: Vec<(&str, Vec<(f64, f64)>)> = sums
        .iter()
        .filter(|b| !b.latency.is_empty())
        .map(|b| {
            let pts = b
                .latency
                .iter_quantiles(TICKS_PER_HALF_DISTANCE)
                .map(|v| (v.quantile_iterated_to(), v.value_iterated_to()))
                .filter(|(q, _)| *q < 1.0)
                .map(|(q, v)| (1.0 / (1.0 - q), v as f64 / 1000.0))
                .collect();
            (b.id.as_str(), pts)
        })
        .collect();
    let xmax = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .fold(10.0, f64::max);
    let (ymin, ymax) = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold((f64::INFINITY, 1.0f64), |(a, b), y| (a.min(y), b.max(y)));
    let ymin = if ymin.is_finite() {
        (ymin * 0.8).max(0.01)
    } else {
        0.1
    };
    let root = SVGBackend::new(path, (1100, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (left, right) = root.split_horizontally(900);
    let mut chart = ChartBuilder::on(&left)
        .caption("fire-to-delivery latency by percentile", ("sans-serif", 20))
        .margin(12)
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
        .draw()
        .map_err(plot_err)?;
    let style = ("sans-serif", 14).into_font();
    for (i, (id, pts)) in series.iter().enumerate() {
        let color = color(i);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(plot_err)?;
        // The legend, beside the plot so it hides no line.
        let y = 60 + 22 * i as i32;
        right
            .draw(&PathElement::new([(8, y), (36, y)], color.stroke_width(3)))
            .map_err(plot_err)?;
        right
            .draw(&Text::new(id.to_string(), (42, y - 7), style.clone()))
            .map_err(plot_err)?;
    }
    root.present().map_err(plot_err)
}

/// `x` = 1/(1-p) as a percentile: 0%, 90%, 99%, 99.9% ...
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    let decimals = (x.log10() - 2.0).ceil().max(0.0) as usize;
    format!("{p:.decimals$}%")
}

/// Median CPU ns/event (whole process) per backend as bars, with a line
/// over the range of the repetitions.
pub fn cpu(sums: &[BackendSummary], path: &Path) -> io::Result<()> {
    let good: Vec<&BackendSummary> = sums.iter().filter(|b| b.failed < b.runs).collect();
    let n = good.len().max(1);
    let floor = good.iter().copied().find(|b| b.id == BackendId::Floor);
    let xmax = good.iter().map(|b| b.cpu_ns_range.1).fold(1.0, f64::max) * 1.25;
    let height = 120 + 36 * n as u32;
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    // The first backend at the top.
    let row = |i: usize| n - 1 - i;
    let ids: Vec<String> = (0..n)
        .map(|r| {
            good.get(n - 1 - r)
                .map_or(String::new(), |b| b.id.to_string())
        })
        .collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "CPU ns per event, whole process (median; black line: range over reps)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(150)
        .build_cartesian_2d(0.0..xmax, (0..n.saturating_sub(1).max(1)).into_segmented())
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("CPU ns / event (label: median, and the median per-repetition ratio to floor)")
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => ids.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()
        .map_err(plot_err)?;
    for (i, b) in good.iter().enumerate() {
        let color = color(i);
        let r = row(i);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(r)),
                    (b.cpu_ns.0, SegmentValue::Exact(r + 1)),
                ],
                color.mix(0.7).filled(),
            )))
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
}
