//! HdrHistogram's standard percentile-distribution text format (`.hgrm`),
//! as `AbstractHistogram.outputPercentileDistribution` prints it: a header,
//! one line per percentile step (value, percentile, total count,
//! 1/(1-percentile)), the 100% line without the last column, and three
//! summary lines. The hdrhistogram crate reads and iterates but cannot
//! print this; plotting tools (HdrHistogram's plotFiles.html,
//! HistogramLogAnalyzer) read it.
//!
//! Values are recorded in nanoseconds and printed in microseconds (a
//! scaling ratio of 1000), with as many decimals as the histogram has
//! significant digits, as the Java original does.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Percentile steps per halving of the distance to 100%, as the Java
/// default and the reference plots use.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// The `.hgrm` text of `h`, values divided by `scale` (1000.0: ns to us).
pub fn percentile_distribution(h: &Histogram<u64>, scale: f64) -> String {
    let digits = h.sigfig() as usize;
    let mut s = String::new();
    let _ = write!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if !h.is_empty() {
        let mut total = 0u64;
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / scale;
            let q = v.quantile_iterated_to();
            if q != 1.0 {
                let _ = writeln!(
                    s,
                    "{value:>12.digits$} {q:>2.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value:>12.digits$} {q:>2.12} {total:>10}");
            }
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / scale, h.stdev() / scale, h.max() as f64 / scale)
    };
    let _ = writeln!(
        s,
        "#[Mean    = {mean:>12.digits$}, StdDeviation   = {stdev:>12.digits$}]"
    );
    let _ = writeln!(
        s,
        "#[Max     = {max:>12.digits$}, Total count    = {:>12}]",
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_bucket_count(h.sigfig())
    );
    s
}

/// HdrHistogram's sub-bucket count for `sigfig` significant digits (and a
/// lowest discernible value of 1): 2 * 10^sigfig rounded up to a power of two.
pub fn sub_bucket_count(sigfig: u8) -> u64 {
    (2 * 10u64.pow(u32::from(sigfig))).next_power_of_two()
}

/// One data line of an `.hgrm` file: (value, percentile, total count).
pub fn parse_line(line: &str) -> Option<(f64, f64, u64)> {
    let mut it = line.split_whitespace();
    let v = it.next()?.parse().ok()?;
    let p = it.next()?.parse().ok()?;
    let c = it.next()?.parse().ok()?;
    Some((v, p, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values 1..=10000 us, once each: every percentile is known exactly
    /// (to the histogram's 3-digit resolution).
    fn known() -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for us in 1..=10_000u64 {
            h.record(us * 1000).unwrap();
        }
        h
    }

    #[test]
    fn hgrm_has_the_standard_header_lines_and_footer() {
        let text = percentile_distribution(&known(), 1000.0);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        // First data line: the smallest value at percentile 0.
        assert_eq!(
            lines[2],
            "       1.000 0.000000000000          1           1.00"
        );
        let footer: Vec<&str> = lines.iter().rev().take(3).rev().copied().collect();
        assert!(
            footer[0].starts_with("#[Mean    =     5000."),
            "{}",
            footer[0]
        );
        assert!(
            footer[0].contains(", StdDeviation   =     2886."),
            "{}",
            footer[0]
        );
        // 10,000,000 ns sits in a bucket 8192 ns wide starting at 9,994,240:
        // HdrHistogram reports the bucket's highest equivalent value.
        assert_eq!(
            footer[1],
            "#[Max     =    10002.431, Total count    =        10000]"
        );
        // 2048 sub-buckets cover 2^11; doubling 25 times passes 60 s (2^35.8 ns).
        assert_eq!(
            footer[2],
            "#[Buckets =           26, SubBuckets     =         2048]"
        );
        // The 100% line has no 1/(1-p) column and closes the data.
        let last_data = lines[lines.len() - 4];
        assert_eq!(last_data, "   10002.431 1.000000000000      10000");
    }

    #[test]
    fn hgrm_percentiles_match_the_known_distribution() {
        let h = known();
        let text = percentile_distribution(&h, 1000.0);
        let rows: Vec<(f64, f64, u64)> = text.lines().filter_map(parse_line).collect();
        // Percentiles rise, counts rise, and each row's value is where
        // that share of the 10000 values lies (within 0.1%).
        for pair in rows.windows(2) {
            assert!(pair[1].1 >= pair[0].1 && pair[1].2 >= pair[0].2);
        }
        for &(v, p, c) in &rows {
            let expect = (p * 10_000.0).max(1.0);
            assert!((v - expect).abs() <= expect * 0.001 + 1.0, "p={p} v={v}");
            assert!(c as f64 >= p * 10_000.0 - 1.0, "p={p} c={c}");
        }
        // Rows exactly at p50 and p90 (ticks land there), and the first
        // rows at or past p99 and p99.9.
        for want in [0.5, 0.9, 0.99, 0.999] {
            let row = rows
                .iter()
                .find(|r| r.1 >= want - 1e-12)
                .expect("a row past it");
            assert!(row.1 - want < 0.002, "{want}: {row:?}");
            assert!(
                (row.0 - row.1 * 10_000.0).abs() <= row.1 * 10.0 + 1.0,
                "{row:?}"
            );
        }
        assert!(rows
            .iter()
            .any(|r| r.1 == 0.5 && (4995.0..=5005.0).contains(&r.0)));
        assert!(rows
            .iter()
            .any(|r| r.1 == 0.9 && (8990.0..=9010.0).contains(&r.0)));
        // Five ticks per half distance: 0, .1, .2, .3, .4, .5, then .55 ...
        let ps: Vec<f64> = rows.iter().map(|r| r.1).take(8).collect();
        assert_eq!(ps, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6]);
    }

    #[test]
    fn empty_histogram_prints_header_and_footer_only() {
        let h = Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
        let text = percentile_distribution(&h, 1.0);
        assert_eq!(text.lines().filter_map(parse_line).count(), 0);
        assert!(text.contains("#[Max     =         0.00, Total count    =            0]"));
        assert_eq!(sub_bucket_count(2), 256);
        assert_eq!(sub_bucket_count(3), 2048);
    }
}
