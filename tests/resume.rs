//! Runs `feedforward train` as a user would: kills a run with SIGKILL, resumes it from its
//! checkpoint, and compares the model with that of a run that was never interrupted.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use feedforward::Trainer;
use safetensors::SafeTensors;

/// A digits run of 40 epochs with a checkpoint after each, long enough for the test to kill it
/// after a few. Each test adds the model path.
const DIGITS_RUN: &[&str] = &[
    "train",
    "--layers",
    "256,256",
    "--epochs",
    "40",
    "--batch-size",
    "16",
    "--checkpoint-every",
    "1",
    "--seed",
    "3",
    "--quiet",
    "--threads",
    "1",
];

fn feedforward(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_feedforward"));
    command.current_dir(dir);
    command
}

fn run(dir: &Path, args: &[&str]) -> Output {
    feedforward(dir)
        .args(args)
        .output()
        .expect("cannot start feedforward")
}

fn assert_success(output: &Output, run_name: &str) {
    assert!(
        output.status.success(),
        "{run_name} failed with {}:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A stored tensor: name, dtype, shape and bytes.
type Tensor = (String, String, Vec<usize>, Vec<u8>);

/// Reads a model file's tensors, sorted by name, and its JSON description.
fn model_contents(path: &Path) -> (Vec<Tensor>, serde_json::Value) {
    let bytes = fs::read(path).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let mut contents: Vec<_> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                format!("{:?}", view.dtype()),
                view.shape().to_vec(),
                view.data().to_vec(),
            )
        })
        .collect();
    contents.sort_by(|a, b| a.0.cmp(&b.0));

    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let description = &header.metadata().as_ref().unwrap()["feedforward"];
    let mut description: serde_json::Value = serde_json::from_str(description).unwrap();
    // Model files record no wall-clock times, so the whole description must match too.
    let training = description["training"].as_object_mut().unwrap();
    assert!(!training.contains_key("train_seconds"));
    for record in training["history"]["epochs"].as_array().unwrap() {
        assert!(!record.as_object().unwrap().contains_key("seconds"));
    }
    (contents, description)
}

fn epochs_done(checkpoint: &Path) -> Option<usize> {
    // A checkpoint is replaced by a rename, so a read returns a whole file, old or new.
    Trainer::resume(checkpoint)
        .ok()
        .map(|(trainer, _)| trainer.epochs_done())
}

#[test]
fn killed_run_resumes_to_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    let mut args = DIGITS_RUN.to_vec();
    args.extend(["--model", "full.safetensors"]);
    let output = run(dir, &args);
    assert_success(&output, "the uninterrupted run");

    let mut args = DIGITS_RUN.to_vec();
    args.extend(["--model", "killed.safetensors"]);
    let mut child = feedforward(dir)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = dir.join("killed.ckpt");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended with {status} before it could be killed");
        }
        if epochs_done(&checkpoint).is_some_and(|done| done >= 3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of epoch 3 after 120 s"
        );
        thread::sleep(Duration::from_millis(10));
    }
    // On Unix, Child::kill sends SIGKILL.
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(
        !dir.join("killed.safetensors").exists(),
        "the killed run finished and saved its model"
    );
    let killed_at = epochs_done(&checkpoint).expect("the checkpoint cannot be read");
    assert!(
        (3..40).contains(&killed_at),
        "checkpoint of epoch {killed_at}"
    );

    let output = run(
        dir,
        &[
            "train",
            "--resume",
            "killed.ckpt",
            "--model",
            "resumed.safetensors",
            "--quiet",
            "--threads",
            "1",
        ],
    );
    assert_success(&output, "the resumed run");

    let (full_tensors, full_description) = model_contents(&dir.join("full.safetensors"));
    let (resumed_tensors, resumed_description) = model_contents(&dir.join("resumed.safetensors"));
    assert_eq!(full_tensors.len(), 6);
    let names: Vec<&str> = resumed_tensors.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        names,
        full_tensors
            .iter()
            .map(|t| t.0.as_str())
            .collect::<Vec<_>>()
    );
    for (full, resumed) in full_tensors.iter().zip(&resumed_tensors) {
        assert!(full == resumed, "tensor {} differs", full.0);
    }
    assert_eq!(
        resumed_description["training"]["history"]["epochs"]
            .as_array()
            .unwrap()
            .len(),
        40
    );
    assert_eq!(resumed_description, full_description);
    assert_eq!(epochs_done(&checkpoint), Some(40));
}

/// Writes a small CSV classification set: two numeric features and a text label.
fn write_csv(path: &Path, shift: f32) {
    let mut file = fs::File::create(path).unwrap();
    writeln!(file, "x1,x2,label").unwrap();
    for i in 0..90 {
        let class = i % 3;
        let x1 = class as f32 + (i as f32 * 0.37).sin() * 0.6 + shift;
        let x2 = (i as f32 * 0.11).cos() - class as f32;
        writeln!(file, "{x1},{x2},c{class}").unwrap();
    }
}

const CSV_RUN: &[&str] = &[
    "train",
    "--data",
    "blobs.csv",
    "--layers",
    "8",
    "--epochs",
    "6",
    "--batch-size",
    "8",
    "--validation-split",
    "0.2",
    "--early-stopping",
    "--patience",
    "4",
    "--dropout",
    "0.2",
    "--schedule",
    "cosine",
    "--scale",
    "minmax",
    "--optimizer",
    "nesterov(lr=0.05)",
    "--seed",
    "9",
    "--quiet",
    "--threads",
    "1",
];

#[test]
fn resume_from_earlier_checkpoint_matches() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_csv(&dir.join("blobs.csv"), 0.0);

    // With 6 epochs and a checkpoint every 4, the last checkpoint is that of epoch 4, so the
    // run leaves behind a mid-run checkpoint without being killed.
    let mut args = CSV_RUN.to_vec();
    args.extend(["--checkpoint-every", "4", "--checkpoint", "run.ckpt"]);
    assert_success(&run(dir, &args), "the first run");
    assert_eq!(epochs_done(&dir.join("run.ckpt")), Some(4));

    let output = run(
        dir,
        &[
            "train",
            "--resume",
            "run.ckpt",
            "--data",
            "./blobs.csv",
            "--model",
            "resumed.safetensors",
            "--quiet",
            "--threads",
            "1",
        ],
    );
    assert_success(&output, "the resumed run");
    assert_eq!(
        model_contents(&dir.join("resumed.safetensors")),
        model_contents(&dir.join("model.safetensors"))
    );
}

#[test]
fn resume_with_other_data_is_error() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_csv(&dir.join("blobs.csv"), 0.0);
    write_csv(&dir.join("other.csv"), 0.0);
    let mut args = CSV_RUN.to_vec();
    args.extend(["--checkpoint-every", "4"]);
    assert_success(&run(dir, &args), "the first run");

    let output = run(
        dir,
        &[
            "train",
            "--resume",
            "model.ckpt",
            "--data",
            "other.csv",
            "--quiet",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("--data other.csv is not the checkpoint's training data"),
        "{message}"
    );

    write_csv(&dir.join("blobs.csv"), 0.5);
    let output = run(dir, &["train", "--resume", "model.ckpt", "--quiet"]);
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("has changed since the checkpoint was saved"),
        "{message}"
    );
    assert!(message.contains("other feature statistics"), "{message}");
}

#[test]
fn resume_rejects_training_options() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &["train", "--resume", "model.ckpt", "--epochs", "5"],
    );
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("'--resume <CHECKPOINT>' cannot be used with '--epochs <EPOCHS>'"),
        "{message}"
    );

    // The batch order is part of the recorded settings too.
    let output = run(
        dir.path(),
        &["train", "--resume", "model.ckpt", "--no-zero-order"],
    );
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("'--resume <CHECKPOINT>' cannot be used with '--no-zero-order'"),
        "{message}"
    );
}

#[test]
fn resume_from_model_file_is_error() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_csv(&dir.join("blobs.csv"), 0.0);
    assert_success(&run(dir, CSV_RUN), "the first run");

    let output = run(dir, &["train", "--resume", "model.safetensors", "--quiet"]);
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("is a feedforward model file, not a checkpoint"),
        "{message}"
    );
    assert!(!dir.join("model.ckpt").exists());
}
