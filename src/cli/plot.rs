//! `train --plot`: the loss and accuracy curves as an SVG file.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use feedforward::train::History;
use plotters::prelude::*;

/// Draws the training (and validation) loss on the left and accuracy on the right of an SVG,
/// written atomically to `path`.
pub fn draw(history: &History, path: &Path) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let (left, right) = root.split_horizontally(500);
        let epochs = history.epochs.len().max(1) as f64;

        let series = |f: fn(&feedforward::train::EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
            history
                .epochs
                .iter()
                .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
                .collect()
        };
        let panels = [
            (
                &left,
                "loss",
                series(|r| Some(r.train_loss)),
                series(|r| r.validation_loss),
            ),
            (
                &right,
                "accuracy",
                series(|r| r.train_accuracy),
                series(|r| r.validation_accuracy),
            ),
        ];
        for (area, name, train, validation) in panels {
            let values = train.iter().chain(&validation).map(|p| p.1);
            let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(v), h.max(v))
            });
            if !low.is_finite() {
                continue;
            }
            let margin = ((high - low) * 0.05).max(1e-3);
            let mut chart = ChartBuilder::on(area)
                .caption(name, ("sans-serif", 20))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(55)
                .build_cartesian_2d(1.0..epochs.max(2.0), (low - margin)..(high + margin))
                .map_err(|e| anyhow!("{e}"))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
            chart
                .draw_series(LineSeries::new(train, &BLUE))
                .map_err(|e| anyhow!("{e}"))?
                .label("training")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
            if !validation.is_empty() {
                chart
                    .draw_series(LineSeries::new(validation, &RED))
                    .map_err(|e| anyhow!("{e}"))?
                    .label("validation")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
            }
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    feedforward::model::write_atomically(path, svg.as_bytes())
        .with_context(|| format!("cannot write the plot {}", path.display()))
}
