//! The progress bar and per-epoch log lines of `train`.

use std::io::IsTerminal;

use feedforward::train::{EpochRecord, TrainObserver};
use indicatif::{ProgressBar, ProgressStyle};

/// Shows a bar per epoch with batches done and ETA when stderr is a terminal and `--quiet` is
/// off, and logs one line per epoch at info level.
pub struct Progress {
    bar: Option<ProgressBar>,
    enabled: bool,
    epochs: usize,
}

impl Progress {
    /// A progress display for a run of `epochs` epochs.
    pub fn new(epochs: usize, quiet: bool) -> Self {
        Progress {
            bar: None,
            enabled: !quiet && std::io::stderr().is_terminal(),
            epochs,
        }
    }
}

impl TrainObserver for Progress {
    fn epoch_started(&mut self, epoch: usize, batches: usize) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::new(batches as u64);
        let style = ProgressStyle::with_template(
            "epoch {msg} [{bar:30}] {pos}/{len} batches, {elapsed} elapsed, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(format!("{epoch}/{}", self.epochs));
        self.bar = Some(bar);
    }

    fn batch_finished(&mut self, _batch: usize, _loss: f64) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn epoch_finished(&mut self, record: &EpochRecord) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let mut line = format!(
            "epoch {:>3}/{}  loss {:.4}",
            record.epoch, self.epochs, record.train_loss
        );
        if let Some(accuracy) = record.train_accuracy {
            line += &format!("  accuracy {accuracy:.4}");
        }
        if let Some(loss) = record.validation_loss {
            line += &format!("  val_loss {loss:.4}");
        }
        if let Some(accuracy) = record.validation_accuracy {
            line += &format!("  val_accuracy {accuracy:.4}");
        }
        line += &format!("  lr {:.2e}  {:.2} s", record.learning_rate, record.seconds);
        log::info!("{line}");
    }
}
