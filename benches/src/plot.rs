//! A small SVG line chart: latency percentiles against offered load, one line per series.

use std::fmt::Write;

/// One line of the chart.
pub struct Series {
    pub name: String,
    pub colour: &'static str,
    pub dashed: bool,
    /// (x, y) points, x ascending.
    pub points: Vec<(f64, f64)>,
}

/// Renders `series` as an SVG document with a log-scale y axis.
pub fn chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 420.0, 70.0, 190.0, 40.0, 50.0);
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1.max(0.01)));
    let x_max = xs.fold(1.0_f64, f64::max) * 1.05;
    let (y_min, y_max) = ys.fold((f64::MAX, 0.01_f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (ly_min, ly_max) = (
        y_min.min(y_max).log10().floor(),
        y_max.log10().ceil().max(y_min.log10().floor() + 1.0),
    );
    let px = |x: f64| left + x / x_max * (w - left - right);
    let py = |y: f64| top + (ly_max - y.max(0.01).log10()) / (ly_max - ly_min) * (h - top - bottom);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{}" y="22" font-size="15" text-anchor="middle">{title}</text>"#,
        (w - right + left) / 2.0
    );
    // Axes, decades on y, five ticks on x.
    let _ = write!(
        svg,
        r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="black"/>"#,
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    let mut d = ly_min;
    while d <= ly_max {
        let y = py(10f64.powf(d));
        let _ = write!(
            svg,
            r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            w - right,
            left - 6.0,
            y + 4.0,
            10f64.powf(d)
        );
        d += 1.0;
    }
    for i in 0..=5 {
        let x = x_max / 5.0 * f64::from(i);
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{:.0}</text>"#,
            px(x),
            h - bottom + 18.0,
            x
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{x_label}</text><text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{y_label}</text>"#,
        (w - right + left) / 2.0,
        h - 10.0,
        (h - bottom + top) / 2.0
    );
    for (i, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = write!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            points.join(" "),
            s.colour
        );
        for (x, y) in &s.points {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                px(*x),
                py(*y),
                s.colour
            );
        }
        let ly = top + 10.0 + 20.0 * i as f64;
        let _ = write!(
            svg,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            w - right + 12.0,
            w - right + 36.0,
            s.colour,
            w - right + 42.0,
            ly + 4.0,
            s.name
        );
    }
    svg.push_str("</svg>\n");
    svg
}
