//! Helpers the examples share: where plots go, and a line chart written as PNG and SVG.
//!
//! The font is compiled in (assets/DejaVuSans.ttf) and registered with plotters, so the
//! plots need no system font library.
#![allow(dead_code)]

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::error::Error;
use std::path::PathBuf;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// `target/plots/` of the workspace, created if missing.
pub fn plots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("plots");
    std::fs::create_dir_all(&dir).expect("cannot create target/plots");
    dir
}

/// Registers the compiled-in font as plotters' `sans-serif` (once).
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        register_font("sans-serif", FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("assets/DejaVuSans.ttf is not a valid font"));
    });
}

/// One curve of a chart.
pub struct Series {
    /// The legend entry.
    pub label: String,
    /// The points, in x order.
    pub points: Vec<(f64, f64)>,
    /// The line colour.
    pub color: RGBColor,
    /// Dashed (drawn over a solid curve it should match) or solid.
    pub dashed: bool,
    /// The line width in pixels.
    pub width: u32,
}

impl Series {
    /// A solid curve of width 2.
    pub fn solid(label: &str, points: Vec<(f64, f64)>, color: RGBColor) -> Self {
        Series {
            label: label.to_string(),
            points,
            color,
            dashed: false,
            width: 2,
        }
    }

    /// A dashed curve of width 3.
    pub fn dashed(label: &str, points: Vec<(f64, f64)>, color: RGBColor) -> Self {
        Series {
            label: label.to_string(),
            points,
            color,
            dashed: true,
            width: 3,
        }
    }
}

/// A chart: a title, axis labels, the y range and its curves.
pub struct Chart {
    /// The caption above the plot.
    pub title: String,
    /// The x axis description.
    pub x_label: String,
    /// The y axis description.
    pub y_label: String,
    /// The y range; `None` fits the data.
    pub y_range: Option<(f64, f64)>,
    /// The curves.
    pub series: Vec<Series>,
}

impl Chart {
    /// Writes `target/plots/STEM.png` and `target/plots/STEM.svg`; returns both paths.
    pub fn write(&self, stem: &str) -> Result<[PathBuf; 2], Box<dyn Error>> {
        register_fonts();
        let dir = plots_dir();
        let png = dir.join(format!("{stem}.png"));
        let svg = dir.join(format!("{stem}.svg"));
        {
            let root = BitMapBackend::new(&png, (900, 560)).into_drawing_area();
            self.draw(&root)?;
            root.present()?;
        }
        {
            let root = SVGBackend::new(&svg, (900, 560)).into_drawing_area();
            self.draw(&root)?;
            root.present()?;
        }
        Ok([png, svg])
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), Box<dyn Error>>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0));
        let (x0, x1) = min_max(xs);
        let (y0, y1) = self.y_range.unwrap_or_else(|| {
            let (lo, hi) = min_max(
                self.series
                    .iter()
                    .flat_map(|s| s.points.iter().map(|p| p.1)),
            );
            let pad = 0.05 * (hi - lo).max(1e-12);
            (lo - pad, hi + pad)
        });
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        for s in &self.series {
            let style = s.color.stroke_width(s.width);
            let color = s.color;
            // Clip to the y range: points outside it (and NaN points, which mark a gap
            // such as a pole) are left out, and the line breaks there.
            let inside = |p: &(f64, f64)| p.1 >= y0 && p.1 <= y1;
            let mut first = true;
            for run in s.points.split(|p| !inside(p)).filter(|r| r.len() > 1) {
                let anno = if s.dashed {
                    chart.draw_series(DashedLineSeries::new(run.iter().copied(), 10, 8, style))?
                } else {
                    chart.draw_series(LineSeries::new(run.iter().copied(), style))?
                };
                if first {
                    anno.label(s.label.as_str()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                    });
                    first = false;
                }
            }
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        Ok(())
    }
}

/// An axis label: `5` rather than `5.0`, and at most three decimals.
fn tick(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}
