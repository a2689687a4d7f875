//! PNG line charts (plotters): one line per series, points marked.

use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Fonts tried, in order, for the charts' text (Debian's `fonts-dejavu-core`, which
/// `scripts/setup.sh` installs, provides the first).
const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// One line of a chart.
pub struct Series {
    pub name: String,
    pub colour: RGBColor,
    pub dashed: bool,
    /// (x, y) points, x ascending; points with a y that is not finite are left out.
    pub points: Vec<(f64, f64)>,
}

/// Registers the font once per process; charts need one for their text.
fn font() -> Result<(), Error> {
    static LOADED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let bytes = FONTS
                .iter()
                .find_map(|p| std::fs::read(p).ok())
                .ok_or_else(|| {
                    format!(
                        "no font for the charts at {FONTS:?}: install fonts-dejavu-core (scripts/setup.sh does)"
                    )
                })?;
            register_font(
                "sans-serif",
                FontStyle::Normal,
                Box::leak(bytes.into_boxed_slice()),
            )
            .map_err(|_| "the chart font is not a valid TrueType font".to_owned())
        })
        .clone()
        .map_err(Error::from)
}

/// A chart with a logarithmic y axis (latency). An error if no series has a finite point:
/// a log axis needs a range.
pub fn log_chart(
    path: &Path,
    title: &str,
    labels: (&str, &str),
    series: &[Series],
) -> Result<(), Error> {
    if series.iter().all(|s| finite(s).next().is_none()) {
        return Err(format!("{title}: nothing to chart").into());
    }
    let (lo, hi) = y_bounds(series);
    let lo = 10f64.powf(lo.max(0.01).log10().floor());
    let hi = 10f64.powf(hi.max(lo * 10.0).log10().ceil());
    draw(path, title, labels, (lo..hi).log_scale(), series)
}

/// One bar of a bar chart.
pub struct Bar {
    pub name: String,
    pub colour: RGBColor,
    pub value: f64,
}

/// Vertical bars from zero, each labelled with its value.
pub fn bar_chart(path: &Path, title: &str, y_label: &str, bars: &[Bar]) -> Result<(), Error> {
    font()?;
    let top = bars.iter().map(|b| b.value).fold(1.0_f64, f64::max) * 1.15;
    let root = BitMapBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = u32::try_from(bars.len()).unwrap_or(u32::MAX);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(y_label)
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => usize::try_from(*i)
                .ok()
                .and_then(|i| bars.get(i))
                .map(|b| b.name.clone())
                .unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, b) in (0..n).zip(bars) {
        let (left, right) = (SegmentValue::Exact(i), SegmentValue::Exact(i + 1));
        let mut bar = Rectangle::new([(left, 0.0), (right, b.value)], b.colour.filled());
        bar.set_margin(0, 0, 40, 40);
        chart.draw_series(std::iter::once(bar))?;
        let label = TextStyle::from(("sans-serif", 16).into_font())
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        chart.draw_series(std::iter::once(Text::new(
            format!("{:.0}", b.value),
            (SegmentValue::CenterOf(i), b.value + top * 0.01),
            label,
        )))?;
    }
    root.present()?;
    Ok(())
}

fn finite(s: &Series) -> impl Iterator<Item = (f64, f64)> + Clone + '_ {
    s.points
        .iter()
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
}

fn y_bounds(series: &[Series]) -> (f64, f64) {
    series
        .iter()
        .flat_map(finite)
        .fold((f64::MAX, 0.0_f64), |(lo, hi), (_, y)| {
            (lo.min(y), hi.max(y))
        })
}

fn draw<Y>(
    path: &Path,
    title: &str,
    (x_label, y_label): (&str, &str),
    y: Y,
    series: &[Series],
) -> Result<(), Error>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    font()?;
    let x_max = series
        .iter()
        .flat_map(finite)
        .fold(1.0_f64, |m, (x, _)| m.max(x))
        * 1.05;
    let root = BitMapBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, y)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if *y >= 1.0 {
                format!("{y:.0}")
            } else {
                format!("{y}")
            }
        })
        .label_style(("sans-serif", 14))
        .draw()?;
    for s in series {
        let style = s.colour.stroke_width(2);
        let drawn = if s.dashed {
            chart.draw_series(DashedLineSeries::new(finite(s), 8, 5, style))?
        } else {
            chart.draw_series(LineSeries::new(finite(s), style))?
        };
        let dashed = s.dashed;
        drawn.label(&s.name).legend(move |(x, y)| {
            let segment = |a: i32, b: i32| PathElement::new(vec![(x + a, y), (x + b, y)], style);
            if dashed {
                EmptyElement::at((0, 0)) + segment(0, 8) + segment(13, 21)
            } else {
                EmptyElement::at((0, 0)) + segment(0, 21) + segment(0, 0)
            }
        });
        let colour = s.colour;
        chart.draw_series(finite(s).map(|p| Circle::new(p, 4, colour.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_written_as_a_png_of_its_size() {
        let dir = std::env::temp_dir().join(format!("sb-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let series = |dashed| Series {
            name: if dashed { "p50" } else { "p99" }.into(),
            colour: RGBColor(31, 119, 180),
            dashed,
            points: vec![(100.0, 3.0), (500.0, f64::NAN), (900.0, 250.0)],
        };
        let log = dir.join("log.png");
        log_chart(&log, "latency", ("x", "y"), &[series(false), series(true)]).unwrap();
        let bars = dir.join("bars.png");
        let bar = |name: &str, value| Bar {
            name: name.into(),
            colour: RGBColor(128, 128, 128),
            value,
        };
        bar_chart(
            &bars,
            "sustained",
            "events/s",
            &[bar("a", 28_000.0), bar("b", 9_000.0)],
        )
        .unwrap();
        for png in [log, bars] {
            let bytes = std::fs::read(&png).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png:?}");
            // IHDR: width and height, big-endian, at bytes 16..24.
            assert_eq!(&bytes[16..24], &[0, 0, 3, 132, 0, 0, 2, 8], "900 x 520");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_log_chart_of_no_points_is_an_error_not_a_hang() {
        let nothing = Series {
            name: "p99".into(),
            colour: RGBColor(31, 119, 180),
            dashed: false,
            points: vec![(100.0, f64::NAN)],
        };
        let path = std::env::temp_dir().join(format!("sb-empty-{}.png", std::process::id()));
        let e = log_chart(&path, "latency", ("x", "y"), &[nothing]).unwrap_err();
        assert_eq!(e.to_string(), "latency: nothing to chart");
        assert!(!path.exists());
    }
}
