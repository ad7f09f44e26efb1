//! `http.svg`: per client shape, the median req/s and the median server
//! CPU per request of every server, as bars with the range over the
//! repetitions (black line), `reference` and nginx first-glance
//! comparable by colour.

use std::io;
use std::path::Path;

use plotters::prelude::*;

use super::{HttpConfig, Sample, NGINX, REFERENCE};
use crate::plot::{color, plot_err, tick_label, titled};
use crate::statistics::median_spread;

/// A panel's label and the figure it reads from a sample.
type Metric = (&'static str, fn(&Sample) -> f64);

/// Median, lowest and highest of `xs`.
fn stats(xs: Vec<f64>) -> Option<(f64, f64, f64)> {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (m, _) = median_spread(xs)?;
    Some((m, lo, hi))
}

/// Draws the plot to `path`; `subtitle` says what was measured.
pub fn draw(cfg: &HttpConfig, samples: &[Sample], subtitle: &str, path: &Path) -> io::Result<()> {
    let servers: Vec<&String> = cfg
        .backends
        .iter()
        .filter(|b| samples.iter().any(|s| &s.backend == *b))
        .collect();
    let n = servers.len().max(1);
    let panel_h = 60 + 26 * n as u32;
    let height = 58 + panel_h * cfg.shapes.len() as u32;
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    let body = titled(
        &root,
        "A real server: req/s (left) and server CPU us per request (right), medians; black: range over reps",
        subtitle,
    )?;
    let rows = body.split_evenly((cfg.shapes.len(), 1));
    for (shape, area) in cfg.shapes.iter().zip(rows) {
        let halves = area.split_evenly((1, 2));
        let metrics: [Metric; 2] = [
            ("req/s", |s| s.rps),
            ("server CPU us / request", |s| {
                s.server_cpu_ns_per_request / 1e3
            }),
        ];
        for ((label, f), panel) in metrics.iter().zip(halves.iter()) {
            let vals: Vec<Option<(f64, f64, f64)>> = servers
                .iter()
                .map(|b| {
                    stats(
                        samples
                            .iter()
                            .filter(|s| &s.backend == *b && s.shape == *shape)
                            .map(f)
                            .collect(),
                    )
                })
                .collect();
            let xmax = vals.iter().flatten().map(|v| v.2).fold(1.0, f64::max) * 1.3;
            let names: Vec<String> = servers.iter().rev().map(|b| b.to_string()).collect();
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("{shape}: {label}"), ("sans-serif", 15))
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(if label == &"req/s" { 170 } else { 10 })
                .build_cartesian_2d(0.0..xmax, (0..n.saturating_sub(1).max(1)).into_segmented())
                .map_err(plot_err)?;
            let show_names = label == &"req/s";
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(n)
                .x_labels(5)
                .x_label_formatter(&|x| tick_label(*x))
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) if show_names => {
                        names.get(*i).cloned().unwrap_or_default()
                    }
                    _ => String::new(),
                })
                .draw()
                .map_err(plot_err)?;
            for (i, (b, v)) in servers.iter().zip(&vals).enumerate() {
                let Some((m, lo, hi)) = *v else { continue };
                let r = n - 1 - i;
                let c = match b.as_str() {
                    REFERENCE => color(1),
                    NGINX => color(7),
                    id if id.starts_with("uring") => color(3),
                    _ => color(2),
                };
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(r)),
                        (m, SegmentValue::Exact(r + 1)),
                    ],
                    c.mix(0.7).filled(),
                );
                bar.set_margin(3, 3, 0, 0);
                chart.draw_series(std::iter::once(bar)).map_err(plot_err)?;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        [
                            (lo, SegmentValue::CenterOf(r)),
                            (hi, SegmentValue::CenterOf(r)),
                        ],
                        BLACK.stroke_width(2),
                    )))
                    .map_err(plot_err)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        tick_label((m * 100.0).round() / 100.0),
                        (hi + xmax * 0.01, SegmentValue::CenterOf(r)),
                        ("sans-serif", 12).into_font(),
                    )))
                    .map_err(plot_err)?;
            }
        }
    }
    root.present().map_err(plot_err)
}
