//! PNG charts for the examples and benches/scaling.rs: the embedded font,
//! one palette, line charts.

#![allow(dead_code)] // each user draws a part

use std::path::Path;

use plotters::coord::types::RangedCoordusize;
use plotters::prelude::*;
use plotters::style::FontStyle;

pub const BLUE_: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
pub const ORANGE_: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
pub const GREEN_: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
pub const RED_: RGBColor = RGBColor(0xd6, 0x27, 0x28);
pub const GRAY_: RGBColor = RGBColor(0x7f, 0x7f, 0x7f);

/// Registers the embedded font the PNG charts write with.
pub fn register_font() {
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        epaint_default_fonts::HACK_REGULAR,
    )
    .unwrap_or_else(|_| panic!("the embedded font is a valid TTF"));
}

/// One line of a chart.
pub struct Series<'a> {
    pub label: &'a str,
    pub values: &'a [f32],
    pub color: RGBColor,
    pub dashed: bool,
}

/// Draws every series (values below `floor` raised to it) with its legend entry.
fn draw_lines<'a, DB, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordusize, Y>>,
    series: &[Series<'_>],
    floor: f32,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f32>,
{
    for s in series {
        let points: Vec<(usize, f32)> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i, v.max(floor)))
            .collect();
        let style = s.color.stroke_width(if s.dashed { 2 } else { 3 });
        let drawn = if s.dashed {
            chart.draw_series(DashedLineSeries::new(points, 8, 5, style))?
        } else {
            chart.draw_series(LineSeries::new(points, style))?
        };
        let color = s.color;
        drawn.label(s.label).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
        });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()?;
    Ok(())
}

/// A PNG line chart of `series` over their index; `log_y` for losses.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series<'_>],
    log_y: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let len = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let finite = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70);
    if log_y {
        let floor = lo.max(1e-9) * 0.8;
        let mut chart = builder.build_cartesian_2d(0..len - 1, (floor..hi * 1.25).log_scale())?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 16))
            .draw()?;
        draw_lines(&mut chart, series, floor)?;
    } else {
        let pad = (hi - lo).max(1e-3) * 0.1;
        let mut chart = builder.build_cartesian_2d(0..len - 1, lo - pad..hi + pad)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 16))
            .draw()?;
        draw_lines(&mut chart, series, f32::NEG_INFINITY)?;
    }
    root.present()?;
    Ok(())
}
