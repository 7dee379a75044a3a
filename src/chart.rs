//! Charts as SVG files, drawn with plotters' SVG backend (no system fonts needed): the demo's
//! speedup bars and the bench's scaling curves. Every bar and point carries its measured value
//! as a text label, so a reader (or a test) can check the picture against the numbers.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use thiserror::Error;

/// A chart could not be written.
#[derive(Debug, Error)]
#[error("cannot write the chart `{path}`: {reason}")]
pub struct ChartError {
    pub path: String,
    pub reason: String,
}

/// One group of bars: a mode and its speedups, one per batch.
#[derive(Debug, Clone)]
pub struct BarGroup {
    pub label: String,
    pub values: Vec<f64>,
}

/// One curve: a mode and its (workers, speedup) points.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

const COLORS: [RGBColor; 5] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
];

/// The axes every chart here uses.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws the legend in the upper left and writes the file.
fn legend_and_present<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    root: &DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// A value label: centred above the point it labels.
fn label_style(color: RGBColor, size: u32) -> TextStyle<'static> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    ("sans-serif", size)
        .into_font()
        .color(&color)
        .pos(Pos::new(HPos::Center, VPos::Bottom))
}

fn fail(path: &Path) -> impl Fn(String) -> ChartError + '_ {
    move |reason| ChartError {
        path: path.display().to_string(),
        reason,
    }
}

/// Grouped bars: one group per mode, one bar per batch (`batches` names them), and a dashed
/// line at `ideal`.
pub fn speedup_bars(
    path: &Path,
    title: &str,
    batches: &[&str],
    groups: &[BarGroup],
    ideal: f64,
) -> Result<(), ChartError> {
    let err = fail(path);
    let top = groups
        .iter()
        .flat_map(|g| g.values.iter().copied())
        .fold(ideal, f64::max)
        * 1.2;
    let root = SVGBackend::new(path, (760, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let n = groups.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(-0.5..n - 0.5, 0.0..top)
        .map_err(|e| err(e.to_string()))?;
    let labels: Vec<String> = groups.iter().map(|g| g.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() + 1)
        .x_label_formatter(&|x| {
            let g = x.round();
            if (x - g).abs() < 1e-6 && g >= 0.0 {
                labels.get(g as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("speedup over serial")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let width = 0.8 / batches.len().max(1) as f64;
    for (b, batch) in batches.iter().enumerate() {
        let color = COLORS[b % COLORS.len()];
        let bars = groups.iter().enumerate().filter_map(|(g, group)| {
            let v = *group.values.get(b)?;
            let x0 = g as f64 - 0.4 + b as f64 * width;
            Some(Rectangle::new(
                [(x0, 0.0), (x0 + width * 0.9, v)],
                color.filled(),
            ))
        });
        chart
            .draw_series(bars)
            .map_err(|e| err(e.to_string()))?
            .label(*batch)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        let values = groups.iter().enumerate().filter_map(|(g, group)| {
            let v = *group.values.get(b)?;
            let x = g as f64 - 0.4 + (b as f64 + 0.45) * width;
            Some(Text::new(
                format!("{v:.2}×"),
                (x, v + top * 0.01),
                label_style(BLACK, 12),
            ))
        });
        chart.draw_series(values).map_err(|e| err(e.to_string()))?;
    }
    chart
        .draw_series(DashedLineSeries::new(
            [(-0.5, ideal), (n - 0.5, ideal)],
            6,
            4,
            BLACK.stroke_width(1),
        ))
        .map_err(|e| err(e.to_string()))?
        .label(format!("ideal ({ideal}×)"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], BLACK));
    legend_and_present(&mut chart, &root).map_err(err)
}

/// Speedup against workers, one line per series, with the ideal `y = x`.
pub fn scaling_curves(path: &Path, title: &str, series: &[Series]) -> Result<(), ChartError> {
    let err = fail(path);
    let max_x = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let max_y = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(max_x, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (760, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..max_x + 0.5, 0.0..max_y)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("workers")
        .y_desc("speedup")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (max_x, max_x)],
            6,
            4,
            BLACK.stroke_width(1),
        ))
        .map_err(|e| err(e.to_string()))?
        .label("ideal")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], BLACK));
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| err(e.to_string()))?
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], color.stroke_width(2)));
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(s.points.iter().map(|&(x, y)| {
                Text::new(
                    format!("{y:.2}"),
                    (x, y + max_y * 0.015),
                    label_style(color, 11),
                )
            }))
            .map_err(|e| err(e.to_string()))?;
    }
    legend_and_present(&mut chart, &root).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| t.split('>').nth(1))
            .map(|t| t.split('<').next().unwrap_or("").trim().to_string())
            .collect()
    }

    #[test]
    fn bars_carry_their_values() {
        let path =
            std::env::temp_dir().join(format!("troop-chart-bars-{}.svg", std::process::id()));
        let groups = vec![
            BarGroup {
                label: "thread".into(),
                values: vec![1.93, 1.99],
            },
            BarGroup {
                label: "gil".into(),
                values: vec![0.98, 1.97],
            },
        ];
        speedup_bars(&path, "speedup", &["CPU-bound", "I/O-bound"], &groups, 2.0).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let t = texts(&svg);
        for v in [
            "1.93×",
            "1.99×",
            "0.98×",
            "1.97×",
            "thread",
            "gil",
            "CPU-bound",
            "ideal (2×)",
        ] {
            assert!(t.iter().any(|x| x == v), "{v} missing from {t:?}");
        }
        // Each batch's colour fills its two bars and its legend swatch.
        assert_eq!(svg.matches(r##"fill="#1F77B4""##).count(), 3);
        assert_eq!(svg.matches(r##"fill="#FF7F0E""##).count(), 3);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn curves_carry_their_points() {
        let path =
            std::env::temp_dir().join(format!("troop-chart-curves-{}.svg", std::process::id()));
        let series = vec![Series {
            label: "process".into(),
            points: vec![(1.0, 1.0), (2.0, 1.94)],
        }];
        scaling_curves(&path, "scaling", &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let t = texts(&svg);
        assert!(t.iter().any(|x| x == "1.94"), "{t:?}");
        assert!(t.iter().any(|x| x == "process"));
        assert_eq!(svg.matches("<circle").count(), 2);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_unwritable_path_is_an_error_that_names_it() {
        let err = scaling_curves(Path::new("/nonexistent-dir/x.svg"), "t", &[]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x.svg"), "{err}");
    }
}
