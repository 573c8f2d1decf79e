//! Small server-rendered SVG time-series charts (sparklines with a scale) of runtime samples.
//! Numbers only go into the SVG: no user string reaches it.

use std::fmt::Write;

/// One series: `(unix seconds, value)` oldest first.
pub struct Series<'a> {
    pub label: &'a str,
    pub unit: &'a str,
    pub points: Vec<(i64, f64)>,
}

pub const WIDTH: f64 = 320.0;
pub const HEIGHT: f64 = 72.0;
/// More points than pixels add bytes, not information.
const MAX_POINTS: usize = 160;

/// An accessible SVG (`role="img"` with a summary as its label) or `None` without points.
pub fn svg(series: &Series) -> Option<String> {
    let pts = downsample(&series.points, MAX_POINTS);
    let (first, last) = (pts.first()?, pts.last()?);
    let (t0, t1) = (first.0, last.0.max(first.0 + 1));
    let max = pts.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let top = if max > 0.0 { nice_ceiling(max) } else { 1.0 };
    let (pad_l, pad_b) = (4.0, 14.0);
    let plot_w = WIDTH - pad_l * 2.0;
    let plot_h = HEIGHT - pad_b - 4.0;
    let x = |t: i64| pad_l + plot_w * (t - t0) as f64 / (t1 - t0) as f64;
    let y = |v: f64| 4.0 + plot_h * (1.0 - (v / top).clamp(0.0, 1.0));
    let mut line = String::new();
    for (i, (t, v)) in pts.iter().enumerate() {
        let _ = write!(
            line,
            "{}{:.1},{:.1}",
            if i == 0 { "" } else { " " },
            x(*t),
            y(*v)
        );
    }
    let area = format!(
        "{:.1},{:.1} {line} {:.1},{:.1}",
        x(t0),
        y(0.0),
        x(last.0),
        y(0.0)
    );
    let now = last.1;
    let label = format!(
        "{}: now {} {}, peak {} {} over the last {} minutes",
        series.label,
        fmt_num(now),
        series.unit,
        fmt_num(max),
        series.unit,
        ((t1 - t0) / 60).max(1)
    );
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" height="{HEIGHT}" role="img" aria-label="{label}" preserveAspectRatio="none"><title>{label}</title>"#
    );
    let _ = write!(
        s,
        r#"<line x1="{pad_l}" x2="{:.1}" y1="{:.1}" y2="{:.1}" class="axis"/>"#,
        WIDTH - pad_l,
        y(0.0),
        y(0.0)
    );
    let _ = write!(s, r#"<polygon points="{area}" class="area"/>"#);
    let _ = write!(s, r#"<polyline points="{line}" class="line"/>"#);
    let _ = write!(
        s,
        r#"<text x="{pad_l}" y="{:.1}" class="tick">max {} {}</text></svg>"#,
        HEIGHT - 2.0,
        fmt_num(top),
        series.unit
    );
    Some(s)
}

/// Keeps at most `max` points, each the peak of its bucket (spikes stay visible).
fn downsample(points: &[(i64, f64)], max: usize) -> Vec<(i64, f64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    let per = points.len().div_ceil(max);
    points
        .chunks(per)
        .map(|c| {
            let peak = c.iter().map(|p| p.1).fold(f64::MIN, f64::max);
            (c[c.len() - 1].0, peak)
        })
        .collect()
}

/// 1, 2 or 5 times a power of ten, at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    let exp = v.log10().floor();
    let base = 10f64.powf(exp);
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * base {
            return m * base;
        }
    }
    10.0 * base
}

pub fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_scale_and_label() {
        let s = Series {
            label: "Requests",
            unit: "req/s",
            points: (0..500).map(|i| (i * 15, (i % 7) as f64)).collect(),
        };
        let out = svg(&s).unwrap();
        assert!(out.starts_with("<svg"));
        assert!(out.contains("peak 6.00 req/s"), "{out}");
        assert!(out.matches(" ").count() < 2000);
        assert!(svg(&Series {
            label: "x",
            unit: "",
            points: vec![]
        })
        .is_none());
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
        assert_eq!(nice_ceiling(120.0), 200.0);
    }
}
