//! `bench-chart BARS.json OUT.svg`: draws the chart of `cargo xtask bench`, one bar per
//! ratio (how many times better this project is, log scale), with plotters' SVG backend
//! (text as SVG `<text>`, so no font library is needed).
//!
//! A binary of its own behind xtask's `chart` feature: the xtask that every CI run compiles
//! first does not compile plotters.

use std::process::ExitCode;

use plotters::prelude::*;
use serde_json::Value;

struct Bar {
    label: String,
    ratio: f64,
    against: String,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: bench-chart BARS.json OUT.svg");
        return ExitCode::FAILURE;
    };
    match draw(input, output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench-chart: {message}");
            ExitCode::FAILURE
        }
    }
}

fn draw(input: &str, output: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(input).map_err(|e| format!("cannot read {input}: {e}"))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| format!("{input}: {e}"))?;
    let bars: Vec<Bar> = json
        .as_array()
        .ok_or("the bars are a JSON array")?
        .iter()
        .filter_map(|b| {
            Some(Bar {
                label: b["label"].as_str()?.to_owned(),
                ratio: b["ratio"].as_f64().filter(|r| *r > 0.0)?,
                against: b["against"].as_str()?.to_owned(),
            })
        })
        .collect();
    if bars.is_empty() {
        return Err("no bars to draw".into());
    }
    let n = bars.len();
    let low = bars.iter().map(|b| b.ratio).fold(1.0, f64::min) / 2.0;
    let high = bars.iter().map(|b| b.ratio).fold(1.0, f64::max) * 3.0;
    let height = 90 + 22 * n as u32;
    let root = SVGBackend::new(output, (1000, height)).into_drawing_area();
    let error = |e: DrawingAreaErrorKind<_>| format!("drawing {output}: {e:?}");
    root.fill(&WHITE).map_err(error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "How many times better this project is (log scale; above 1: better)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(430)
        .build_cartesian_2d((low..high).log_scale(), (0..n).into_segmented())
        .map_err(error)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_style(("sans-serif", 12))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => (n - 1)
                .checked_sub(*i)
                .and_then(|k| bars.get(k))
                .map(|b| format!("{} (vs {})", b.label, b.against))
                .unwrap_or_default(),
            _ => String::new(),
        })
        .x_label_formatter(&|v| {
            if *v >= 1.0 {
                format!("×{v:.0}")
            } else {
                format!("×{v:.2}")
            }
        })
        .draw()
        .map_err(error)?;
    // Top to bottom in table order.
    chart
        .draw_series(bars.iter().enumerate().map(|(i, bar)| {
            let y = n - 1 - i;
            let color = if bar.ratio >= 1.0 {
                RGBColor(46, 125, 50)
            } else {
                RGBColor(198, 40, 40)
            };
            let mut rect = Rectangle::new(
                [
                    (1.0, SegmentValue::Exact(y)),
                    (bar.ratio, SegmentValue::Exact(y + 1)),
                ],
                color.filled(),
            );
            rect.set_margin(3, 3, 0, 0);
            rect
        }))
        .map_err(error)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, bar)| {
            let label = if bar.ratio >= 100.0 {
                format!("×{:.0}", bar.ratio)
            } else {
                format!("×{:.2}", bar.ratio)
            };
            Text::new(
                label,
                (bar.ratio.max(1.0) * 1.08, SegmentValue::CenterOf(n - 1 - i)),
                ("sans-serif", 11),
            )
        }))
        .map_err(error)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(n))],
            BLACK.stroke_width(1),
        )))
        .map_err(error)?;
    root.present().map_err(error)
}
