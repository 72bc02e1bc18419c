//! `feedforward bench`: end-to-end speed of training and inference on an IDX data set, beside
//! the machine's measured matrix-multiply peak.
//!
//! The run mirrors the comparison scripts in `bench/`: ReLU hidden layers, a softmax output
//! under categorical cross-entropy, He-normal weights, Adam at 1e-3, pixels scaled to [0, 1]
//! and nothing else, reshuffled every epoch.
//!
//! GFLOP/s counts every multiply-add of the dense products, including the steps that the
//! product skips because they are zero. It is the rate a dense product would need to match
//! the epoch's time, and it can exceed the measured peak.
//!
//! Memory figures are in SI megabytes (10^6 bytes). The peak resident set size is read on Linux
//! after training and again at the end of the run. The data set size counts the features and
//! encoded targets of the training and test sets in `f32`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use feedforward::data::load_idx_dir;
use feedforward::inference::Predictor;
use feedforward::linalg;
use feedforward::train::{self, TrainConfig, TrainData, Trainer, encode_targets};
use feedforward::{Activation, Cost, Init, Network, Rng};
use ndarray::{Array2, s};
use serde_json::json;

use super::UsageError;

/// Options of `feedforward bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration: a = 784-256-128-10 at batch 128 for 10 epochs, b = 784-1024-1024-10 at
    /// batch 512 for 2 epochs.
    #[arg(long, default_value = "a")]
    config: String,

    /// Number of epochs [default: 10 for a, 2 for b].
    #[arg(long)]
    epochs: Option<usize>,

    /// Directory of IDX files in the MNIST layout.
    #[arg(
        long,
        default_value = "/usr/share/datasets/fashion-mnist",
        value_name = "DIR"
    )]
    data: PathBuf,

    /// Seed for weights and shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Keep each mini-batch in its shuffled order instead of ordering it so that similar
    /// images are neighbours (see `train --help`).
    #[arg(long)]
    no_zero_order: bool,
}

/// Floating-point operations of one training example: the forward product and `dW` of every
/// layer, and `dA` of every layer but the first (its input gradient is not needed).
fn training_flop_per_example(sizes: &[usize]) -> f64 {
    let products: Vec<f64> = sizes
        .windows(2)
        .map(|p| 2.0 * p[0] as f64 * p[1] as f64)
        .collect();
    let all: f64 = products.iter().sum();
    2.0 * all + (all - products[0])
}

/// Bytes in the megabyte of the memory figures: 10^6, the SI megabyte.
const MEGABYTE: f64 = 1e6;

/// Returns the peak resident set size of this process in bytes, from the `VmHWM` line of
/// `/proc/self/status`, which Linux gives in KiB. Returns `None` where that file or line is
/// missing, as on systems other than Linux.
fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Returns the median time in seconds to predict one image and take its most probable class,
/// over 1,000 timed calls after 100 warm-up calls, cycling through the examples (rows) of
/// `features`.
fn single_image_latency(
    predictor: &mut Predictor<'_, f32>,
    features: ndarray::ArrayView2<'_, f32>,
) -> Result<f64> {
    anyhow::ensure!(
        features.nrows() > 0,
        "the test set has no images, so batch-1 latency cannot be timed. Pass --data a \
         directory whose t10k files contain at least one image"
    );
    let mut latency = Vec::new();
    for round in 0..1100 {
        let image = round % features.nrows();
        let single = features.slice(s![image..image + 1, ..]);
        let start = Instant::now();
        let output = predictor.predict(single.t())?;
        let class = output
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(class, _)| class);
        std::hint::black_box(class);
        if round >= 100 {
            latency.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(median(&mut latency))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

/// GFLOP/s of a 2048 x 2048 x 2048 `f32` product, median of 5 after one warm-up.
fn measure_peak() -> Result<f64> {
    let n = 2048;
    let mut rng = Rng::new(1);
    let a = Array2::from_shape_simple_fn((n, n), || rng.normal() as f32);
    let b = Array2::from_shape_simple_fn((n, n), || rng.normal() as f32);
    let mut c = Array2::<f32>::zeros((n, n));
    let mut times = Vec::new();
    for round in 0..6 {
        let start = Instant::now();
        linalg::gemm(1.0, a.view(), b.view(), 0.0, &mut c.view_mut())?;
        if round > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(2.0 * (n as f64).powi(3) / median(&mut times) / 1e9)
}

/// Runs the benchmark and prints a summary and a `RESULT {json}` line.
pub fn run(args: Args) -> Result<ExitCode> {
    let (hidden, batch, default_epochs): (&[usize], usize, usize) = match args.config.as_str() {
        "a" | "small" => (&[256, 128], 128, 10),
        "b" | "large" => (&[1024, 1024], 512, 2),
        other => return Err(UsageError(format!("unknown --config '{other}'; use a or b")).into()),
    };
    let epochs = args.epochs.unwrap_or(default_epochs);
    let (train_set, test_set) = load_idx_dir(&args.data)?;
    let cost = Cost::CategoricalCrossEntropy;
    let train_targets = encode_targets(&train_set.targets, cost)?;
    let test_targets = encode_targets(&test_set.targets, cost)?;
    let dataset_elements = train_set.features.len()
        + test_set.features.len()
        + train_targets.len()
        + test_targets.len();
    let dataset_f32_mb = (dataset_elements * size_of::<f32>()) as f64 / MEGABYTE;

    let mut sizes = vec![train_set.n_features()];
    sizes.extend(hidden);
    sizes.push(test_targets.ncols());
    let mut activations = vec![Activation::Relu; hidden.len()];
    activations.push(Activation::Softmax);
    let network = Network::random_with_init(
        &sizes,
        &activations,
        Some(Init::HeNormal),
        &mut Rng::new(args.seed),
    )?;
    let threads = linalg::threads();
    println!(
        "feedforward {} threads={threads} layers={} batch={batch} epochs={epochs} train={} test={} \
         zero_order={}",
        env!("CARGO_PKG_VERSION"),
        sizes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("-"),
        train_set.len(),
        test_set.len(),
        !args.no_zero_order
    );

    let config = TrainConfig {
        epochs,
        batch_size: batch,
        seed: args.seed,
        order_by_zeros: !args.no_zero_order,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(network, cost, config)?;
    let train_data = TrainData::new(train_set.features.view(), train_targets.view())?;
    let test_data = TrainData::new(test_set.features.view(), test_targets.view())?;
    let mut epoch_seconds = Vec::new();
    let mut accuracies = Vec::new();
    while !trainer.is_finished() {
        let record = trainer.run_epoch(train_data, None, &mut ())?;
        let (_, accuracy) = train::evaluate(trainer.network(), cost, test_data)?;
        let accuracy = accuracy.unwrap_or(f64::NAN);
        println!(
            "epoch {:2}  train_s {:8.3}  loss {:.4}  test_acc {accuracy:.4}",
            record.epoch, record.seconds, record.train_loss
        );
        epoch_seconds.push(record.seconds);
        accuracies.push(accuracy);
    }
    // Read before the inference and peak-speed measurements below, whose buffers are not
    // part of training.
    let training_peak_mb = peak_resident_bytes().map(|bytes| bytes as f64 / MEGABYTE);
    let network = trainer.finish();
    let median_epoch = median(&mut epoch_seconds.clone());
    let flop_per_epoch = training_flop_per_example(&sizes) * train_set.len() as f64;
    let achieved = flop_per_epoch / median_epoch / 1e9;

    // Both inference measurements reuse one predictor sized for the whole test set, as a
    // serving loop would. Batch 1 then allocates nothing; batch 10,000 allocates only inside
    // the matrix products of linalg::gemm.
    let mut predictor = Predictor::with_capacity(&network, test_set.len());
    let mut full = Vec::new();
    let features = test_set.features.view();
    for round in 0..13 {
        let start = Instant::now();
        let outputs = predictor.predict(features.t())?;
        std::hint::black_box(&outputs);
        if round >= 3 {
            full.push(start.elapsed().as_secs_f64());
        }
    }
    let batch_seconds = median(&mut full);

    // Batch 1 takes the test images in turn, because its time depends on how many pixels are
    // zero. The first 1,000 images with every zero pixel raised to 1/255 give the time without zeros.
    let latency_us = single_image_latency(&mut predictor, features)? * 1e6;
    let first_images = features.slice(s![..features.nrows().min(1000), ..]);
    let no_zeros = first_images.mapv(|v| if v == 0.0 { 1.0 / 255.0 } else { v });
    let latency_dense_us = single_image_latency(&mut predictor, no_zeros.view())? * 1e6;
    let peak = measure_peak().context("cannot measure the matrix-multiply peak")?;

    println!(
        "training: median epoch {median_epoch:.3} s = {:.0} images/s, {achieved:.1} GFLOP/s \
         (skipped zero steps counted) = {:.0}% of the measured peak {peak:.1} GFLOP/s",
        train_set.len() as f64 / median_epoch,
        100.0 * achieved / peak
    );
    println!(
        "inference batch {}: median {:.2} ms = {:.0} images/s",
        test_set.len(),
        batch_seconds * 1e3,
        test_set.len() as f64 / batch_seconds
    );
    println!(
        "inference batch 1 latency: median {latency_us:.1} us ({latency_dense_us:.1} us with no \
         zero pixels)"
    );
    let run_peak_mb = peak_resident_bytes().map(|bytes| bytes as f64 / MEGABYTE);
    match (training_peak_mb, run_peak_mb) {
        (Some(training), Some(run)) => println!(
            "memory: peak resident {training:.1} MB after training ({run:.1} MB for the whole \
             run), data set in f32 {dataset_f32_mb:.1} MB"
        ),
        _ => println!(
            "memory: peak resident size unavailable on this system, data set in f32 \
             {dataset_f32_mb:.1} MB"
        ),
    }
    println!(
        "RESULT {}",
        json!({
            "framework": "feedforward",
            "threads": threads,
            "config": args.config,
            "zero_order": !args.no_zero_order,
            "epoch_secs": epoch_seconds,
            "test_accs": accuracies,
            "median_epoch_s": median_epoch,
            "gflops": achieved,
            "peak_gflops": peak,
            "final_test_acc": accuracies.last(),
            "infer_images_per_s": test_set.len() as f64 / batch_seconds,
            "latency_b1_us": latency_us,
            "latency_b1_no_zeros_us": latency_dense_us,
            "peak_rss_mb": training_peak_mb,
            "peak_rss_run_mb": run_peak_mb,
            "dataset_f32_mb": dataset_f32_mb,
        })
    );
    Ok(ExitCode::SUCCESS)
}
