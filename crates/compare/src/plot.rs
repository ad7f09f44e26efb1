//! The two plots of a results folder, as SVG: latency by percentile on the
//! usual 1/(1-p) axis (HdrHistogram's plot: 0%, 90%, 99%, 99.9% ... evenly
//! spaced), and CPU ns/event per backend with the range over repetitions.

use std::io;
use std::path::Path;

use plotters::prelude::*;

use crate::hgrm::TICKS_PER_HALF_DISTANCE;
use crate::report::BackendSummary;

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
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
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
        .x_desc("percentile (axis is 1/(1-p))")
        .y_desc("latency, us")
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 1.0 / x);
            if p < 99.0 {
                format!("{p:.0}%")
            } else {
                format!("{p}%")
            }
        })
        .draw()
        .map_err(plot_err)?;
    for (i, (id, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(plot_err)?
            .label(*id)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)
}

/// Median CPU ns/event (whole process) per backend as bars, with a line
/// over the range of the repetitions.
pub fn cpu(sums: &[BackendSummary], path: &Path) -> io::Result<()> {
    let good: Vec<&BackendSummary> = sums.iter().filter(|b| b.failed < b.runs).collect();
    let n = good.len().max(1);
    let xmax = good.iter().map(|b| b.cpu_ns_range.1).fold(1.0, f64::max) * 1.1;
    let height = 120 + 36 * n as u32;
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let ids: Vec<String> = good.iter().map(|b| b.id.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "CPU ns per event, whole process (median; line: range over reps)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(150)
        .build_cartesian_2d(0.0..xmax, (0..n).into_segmented())
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("CPU ns / event")
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => ids.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()
        .map_err(plot_err)?;
    for (i, b) in good.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (b.cpu_ns.0, SegmentValue::Exact(i + 1)),
                ],
                color.mix(0.7).filled(),
            )))
            .map_err(plot_err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                [
                    (b.cpu_ns_range.0, SegmentValue::CenterOf(i)),
                    (b.cpu_ns_range.1, SegmentValue::CenterOf(i)),
                ],
                BLACK.stroke_width(2),
            )))
            .map_err(plot_err)?;
    }
    root.present().map_err(plot_err)
}
