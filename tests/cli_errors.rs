//! Runs the `feedforward` binary on bad input, one case per table row. Each failing case must
//! exit with status 2 for usage errors or 1 for data and model errors, without a panic. Its
//! message must name the file and the place of the problem, and it must leave no file behind.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use flate2::Compression;
use flate2::write::GzEncoder;
use safetensors::SafeTensors;
use serde_json::Value;

/// One invocation of the tool and what it must produce.
struct Case {
    name: &'static str,
    /// Files written to an empty working directory before the run.
    files: Vec<(&'static str, Vec<u8>)>,
    args: Vec<&'static str>,
    /// Expected exit status.
    status: i32,
    /// Fragments that stderr must contain.
    stderr: Vec<&'static str>,
    /// Files that must exist after a successful run.
    created: Vec<&'static str>,
}

impl Case {
    fn new(name: &'static str, args: &[&'static str], status: i32) -> Self {
        Case {
            name,
            files: Vec::new(),
            args: args.to_vec(),
            status,
            stderr: Vec::new(),
            created: Vec::new(),
        }
    }

    fn file(mut self, name: &'static str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((name, contents.into()));
        self
    }

    fn files(mut self, files: Vec<(&'static str, Vec<u8>)>) -> Self {
        self.files.extend(files);
        self
    }

    fn stderr(mut self, fragments: &[&'static str]) -> Self {
        self.stderr.extend(fragments);
        self
    }

    fn creates(mut self, name: &'static str) -> Self {
        self.created.push(name);
        self
    }
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_feedforward"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("the feedforward binary runs")
}

/// Runs `case` in a fresh directory and returns one message per check that failed.
fn check(case: &Case) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in &case.files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    let before = listing(dir.path());
    let output = run(dir.path(), &case.args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!(
        "case '{}' (feedforward {}):\n  stderr: {}",
        case.name,
        case.args.join(" "),
        stderr.trim_end().replace('\n', "\n          ")
    );

    let mut failures = Vec::new();
    let status = output.status.code();
    if status != Some(case.status) {
        failures.push(format!(
            "{context}\n  exit status {status:?}, expected {}",
            case.status
        ));
    }
    if stderr.contains("panicked") {
        failures.push(format!("{context}\n  the tool panicked"));
    }
    if let Some(repeat) = repeated_cause(&stderr) {
        failures.push(format!("{context}\n  the message repeats {repeat:?}"));
    }
    for fragment in &case.stderr {
        if !stderr.contains(fragment) {
            failures.push(format!("{context}\n  stderr lacks {fragment:?}"));
        }
    }
    let after = listing(dir.path());
    if case.status != 0 && after != before {
        let new: Vec<_> = after.difference(&before).collect();
        failures.push(format!(
            "{context}\n  a failed run left files behind: {new:?}"
        ));
    }
    for name in &case.created {
        if !dir.path().join(name).is_file() {
            failures.push(format!("{context}\n  {name} was not written"));
        }
    }
    failures
}

/// Returns a part of an `error:` line that appears twice in a row, as in `a.csv: No such
/// file: No such file`.
fn repeated_cause(stderr: &str) -> Option<String> {
    let line = stderr.lines().find(|line| line.starts_with("error: "))?;
    let parts: Vec<&str> = line.split(": ").collect();
    parts
        .windows(2)
        .find(|pair| pair[0] == pair[1])
        .map(|pair| pair[0].to_string())
}

/// Returns the relative paths of every file under `dir`.
fn listing(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap();
                names.insert(relative.display().to_string());
            }
        }
    }
    names
}

/// Trains a model for one epoch on the embedded digits (64 features, classes "0" to "9") and
/// returns its file's bytes.
fn trained_model() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &[
            "train",
            "--quiet",
            "--epochs",
            "1",
            "--model",
            "m.safetensors",
        ],
    );
    assert!(
        output.status.success(),
        "training the reference model failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(dir.path().join("m.safetensors")).unwrap()
}

/// Re-serializes the tensors of `model` with `metadata` in place of its own.
fn with_metadata(model: &[u8], metadata: Option<HashMap<String, String>>) -> Vec<u8> {
    let tensors = SafeTensors::deserialize(model).unwrap();
    safetensors::serialize(tensors.tensors(), metadata).unwrap()
}

/// Applies `edit` to the JSON description of `model`.
fn with_description(model: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let (_, header) = SafeTensors::read_metadata(model).unwrap();
    let mut metadata = header.metadata().clone().unwrap();
    let mut description: Value = serde_json::from_str(&metadata["feedforward"]).unwrap();
    edit(&mut description);
    metadata.insert("feedforward".into(), description.to_string());
    with_metadata(model, Some(metadata))
}

/// Returns a training CSV with a header `a,b,label`, two classes and `rows` rows.
fn good_csv(rows: usize, line_end: &str) -> String {
    let mut text = format!("a,b,label{line_end}");
    for i in 0..rows {
        let label = if i % 2 == 0 { "x" } else { "y" };
        text += &format!("{},{},{label}{line_end}", i, (i * 7) % 5);
    }
    text
}

/// Returns a training CSV whose first column is the label (`label,a,b`), so that a byte-order
/// mark that is not skipped would change the label column's name.
fn label_first_csv(rows: usize) -> String {
    let mut text = "label,a,b\n".to_string();
    for i in 0..rows {
        let label = if i % 2 == 0 { "x" } else { "y" };
        text += &format!("{label},{},{}\n", i, (i * 7) % 5);
    }
    text
}

/// Returns CSV rows of 64 features for the digits model, each followed by the label in `labels` when
/// given.
fn digits_csv(rows: usize, labels: Option<&[&str]>) -> String {
    let mut text = String::new();
    for row in 0..rows {
        let features: Vec<String> = (0..64).map(|k| ((row + k) % 17).to_string()).collect();
        text += &features.join(",");
        if let Some(labels) = labels {
            text += ",";
            text += labels[row % labels.len()];
        }
        text += "\n";
    }
    text
}

/// Encodes an IDX file of unsigned bytes.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for &size in dims {
        bytes.extend(size.to_be_bytes());
    }
    bytes.extend(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Returns the four MNIST files of a tiny set: 10 train and 4 test images of 2 x 2 pixels,
/// labels 0 and 1. `edit` may change any file before they are returned.
fn idx_dir(edit: impl FnOnce(&mut HashMap<&'static str, Vec<u8>>)) -> Vec<(&'static str, Vec<u8>)> {
    let images = |count: usize| {
        let pixels: Vec<u8> = (0..count * 4).map(|i| (i * 37 % 256) as u8).collect();
        idx(&[count as u32, 2, 2], &pixels)
    };
    let labels = |count: usize| {
        let labels: Vec<u8> = (0..count).map(|i| (i % 2) as u8).collect();
        idx(&[count as u32], &labels)
    };
    let mut files = HashMap::from([
        ("mnist/train-images-idx3-ubyte", images(10)),
        ("mnist/train-labels-idx1-ubyte", labels(10)),
        ("mnist/t10k-images-idx3-ubyte", images(4)),
        ("mnist/t10k-labels-idx1-ubyte", labels(4)),
    ]);
    edit(&mut files);
    files.into_iter().collect()
}

const TRAIN: &[&str] = &["train", "--quiet", "--epochs", "1"];

fn train_on(data: &'static str, extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = TRAIN.to_vec();
    args.extend(["--data", data]);
    args.extend(extra);
    args
}

fn csv_cases() -> Vec<Case> {
    vec![
        Case::new("CSV ragged row", &train_on("ragged.csv", &[]), 1)
            .file("ragged.csv", "a,b,label\n1,2,x\n3,4,5,y\n6,7,x\n")
            .stderr(&["ragged.csv", "line 3", "4 fields, expected 3"]),
        Case::new("CSV non-numeric cell", &train_on("text.csv", &[]), 1)
            .file("text.csv", "a,b,label\n1,2,x\n3,four,y\n")
            .stderr(&[
                "text.csv",
                "line 3",
                "column \"b\"",
                "\"four\" is not a number",
            ]),
        Case::new("CSV empty cell", &train_on("hole.csv", &[]), 1)
            .file("hole.csv", "a,b,label\n1,2,x\n3,,y\n")
            .stderr(&["hole.csv", "line 3", "column \"b\"", "empty"]),
        Case::new("CSV NaN cell", &train_on("nan.csv", &[]), 1)
            .file("nan.csv", "a,b,label\n1,2,x\n3,NaN,y\n")
            .stderr(&["nan.csv", "line 3", "column \"b\"", "not finite"]),
        Case::new("CSV infinite cell", &train_on("inf.csv", &[]), 1)
            .file("inf.csv", "a,b,label\n1,2,x\ninf,4,y\n")
            .stderr(&["inf.csv", "line 3", "column \"a\"", "not finite"]),
        Case::new("CSV empty file", &train_on("empty.csv", &[]), 1)
            .file("empty.csv", "")
            .stderr(&["empty.csv", "the file is empty"]),
        Case::new("CSV header only", &train_on("header.csv", &[]), 1)
            .file("header.csv", "a,b,label\n")
            .stderr(&["header.csv", "line 1 is a header", "no data rows"]),
        Case::new(
            "CSV byte-order mark works",
            &train_on("bom.csv", &["--target", "label"]),
            0,
        )
        .file("bom.csv", format!("\u{feff}{}", label_first_csv(10)))
        .creates("model.safetensors"),
        Case::new("CSV CRLF line ends work", &train_on("crlf.csv", &[]), 0)
            .file("crlf.csv", good_csv(10, "\r\n"))
            .creates("model.safetensors"),
        Case::new(
            "CSV quoted fields work",
            &train_on("quoted.csv", &["--target", "kind, colour"]),
            0,
        )
        .file(
            "quoted.csv",
            "\"a\",\"b\",\"kind, colour\"\n\"1.5\",2,\"cat, black\"\n3,\"4\",\"dog \"\"rex\"\"\"\n\
                 5,6,\"cat, black\"\n7,8,\"dog \"\"rex\"\"\"\n9,10,\"cat, black\"\n",
        )
        .creates("model.safetensors"),
        Case::new(
            "CSV missing target column",
            &train_on("good.csv", &["--target", "species"]),
            1,
        )
        .file("good.csv", good_csv(10, "\n"))
        .stderr(&[
            "good.csv",
            "no target column named \"species\"",
            "\"a\", \"b\", \"label\"",
        ]),
        Case::new(
            "CSV target index out of range",
            &train_on("good.csv", &["--target", "7"]),
            1,
        )
        .file("good.csv", good_csv(10, "\n"))
        .stderr(&["good.csv", "index 7 is out of range", "0 to 2"]),
        Case::new("CSV single class", &train_on("one.csv", &[]), 1)
            .file("one.csv", "a,label\n1,x\n2,x\n3,x\n")
            .stderr(&["one.csv", "single class (\"x\")", "regression"]),
        Case::new(
            "CSV regression target text",
            &train_on("reg.csv", &["--task", "regression"]),
            1,
        )
        .file("reg.csv", "a,y\n1,0.5\n2,high\n3,0.1\n")
        .stderr(&["reg.csv", "line 3", "\"high\" is not a number"]),
        Case::new("CSV missing file", &train_on("absent.csv", &[]), 1)
            .stderr(&["absent.csv", "No such file"]),
        Case::new("CSV too few rows to split", &train_on("two.csv", &[]), 1)
            .file("two.csv", "a,label\n1,x\n2,y\n")
            .stderr(&["two.csv", "--test-split 0.2", "2 examples", "more data"]),
    ]
}

fn idx_cases() -> Vec<Case> {
    vec![
        Case::new("IDX wrong magic number", &train_on("mnist", &[]), 1)
            .files(idx_dir(|files| {
                let images = files.get_mut("mnist/train-images-idx3-ubyte").unwrap();
                images[..2].copy_from_slice(&[0x12, 0x34]);
            }))
            .stderr(&["train-images-idx3-ubyte", "not an IDX file", "12 34 08 03"]),
        Case::new(
            "IDX gzip without .gz name works",
            &train_on("mnist", &[]),
            0,
        )
        .files(idx_dir(|files| {
            let images = files.get_mut("mnist/train-images-idx3-ubyte").unwrap();
            *images = gzip(images);
        }))
        .creates("model.safetensors"),
        Case::new("IDX .gz name but not gzip", &train_on("mnist", &[]), 1)
            .files(idx_dir(|files| {
                let labels = files.remove("mnist/train-labels-idx1-ubyte").unwrap();
                files.insert("mnist/train-labels-idx1-ubyte.gz", labels);
            }))
            .stderr(&["train-labels-idx1-ubyte.gz", "not gzip", "remove .gz"]),
        Case::new("IDX truncated data", &train_on("mnist", &[]), 1)
            .files(idx_dir(|files| {
                let images = files.get_mut("mnist/t10k-images-idx3-ubyte").unwrap();
                images.truncate(images.len() - 3);
            }))
            .stderr(&["t10k-images-idx3-ubyte", "truncated", "byte offset 29"]),
        Case::new("IDX truncated gzip", &train_on("mnist", &[]), 1)
            .files(idx_dir(|files| {
                let images = files.remove("mnist/train-images-idx3-ubyte").unwrap();
                let compressed = gzip(&images);
                let half = compressed[..compressed.len() / 2].to_vec();
                files.insert("mnist/train-images-idx3-ubyte.gz", half);
            }))
            .stderr(&["train-images-idx3-ubyte.gz", "truncated or damaged"]),
        Case::new(
            "IDX image and label counts differ",
            &train_on("mnist", &[]),
            1,
        )
        .files(idx_dir(|files| {
            files.insert(
                "mnist/train-labels-idx1-ubyte",
                idx(&[9], &[0, 1, 0, 1, 0, 1, 0, 1, 0]),
            );
        }))
        .stderr(&["train-images-idx3-ubyte", "10 images", "9 labels"]),
        Case::new("IDX directory without files", &train_on("mnist", &[]), 1)
            .file("mnist/readme.txt", "nothing here")
            .stderr(&["mnist", "4 of the 4 MNIST files are missing"]),
    ]
}

fn model_cases(model: &[u8]) -> Vec<Case> {
    let truncated = model[..model.len() / 2].to_vec();
    let no_metadata = with_metadata(model, None);
    let future = with_description(model, |d| d["format_version"] = 99.into());
    let wrong_shape = with_description(model, |d| d["layer_sizes"][1] = 50.into());
    let wrong_classes = with_description(model, |d| {
        d["class_names"] = serde_json::json!(["a", "b", "c"]);
    });
    vec![
        Case::new("model truncated, inspect", &["inspect", "m.safetensors"], 1)
            .file("m.safetensors", truncated.clone())
            .stderr(&["m.safetensors", "truncated", "ends at byte offset"]),
        Case::new(
            "model truncated, evaluate",
            &["evaluate", "--model", "m.safetensors"],
            1,
        )
        .file("m.safetensors", truncated.clone())
        .stderr(&["m.safetensors", "truncated"]),
        Case::new(
            "model truncated, predict",
            &["predict", "--model", "m.safetensors", "--data", "x.csv"],
            1,
        )
        .file("m.safetensors", truncated)
        .file("x.csv", digits_csv(3, None))
        .stderr(&["m.safetensors", "truncated"]),
        Case::new("model is a CSV file", &["inspect", "m.safetensors"], 1)
            .file("m.safetensors", good_csv(4, "\n"))
            .stderr(&["m.safetensors", "not a valid safetensors file"]),
        Case::new("model empty file", &["inspect", "m.safetensors"], 1)
            .file("m.safetensors", "")
            .stderr(&["m.safetensors", "not a valid safetensors file"]),
        Case::new(
            "model without metadata",
            &["evaluate", "--model", "m.safetensors"],
            1,
        )
        .file("m.safetensors", no_metadata)
        .stderr(&["m.safetensors", "no 'feedforward' metadata"]),
        Case::new(
            "model of unknown format version",
            &["predict", "--model", "m.safetensors", "--data", "x.csv"],
            1,
        )
        .file("m.safetensors", future)
        .file("x.csv", digits_csv(3, None))
        .stderr(&["m.safetensors", "format version 99", "version 1"]),
        Case::new(
            "model shapes disagree with metadata",
            &["inspect", "m.safetensors"],
            1,
        )
        .file("m.safetensors", wrong_shape)
        .stderr(&["m.safetensors", "layers.0.weight", "[100, 64]", "[50, 64]"]),
        Case::new(
            "model class names disagree with outputs",
            &["inspect", "m.safetensors"],
            1,
        )
        .file("m.safetensors", wrong_classes)
        .stderr(&["m.safetensors", "3 class names", "10 outputs"]),
        Case::new(
            "model file missing",
            &["evaluate", "--model", "absent.safetensors"],
            1,
        )
        .stderr(&[
            "absent.safetensors",
            "No such file",
            "feedforward train --model absent.safetensors",
        ]),
    ]
}

fn prediction_cases(model: &[u8]) -> Vec<Case> {
    vec![
        Case::new(
            "predict works",
            &[
                "predict",
                "--model",
                "m.safetensors",
                "--data",
                "x.csv",
                "--output",
                "out.csv",
            ],
            0,
        )
        .file("m.safetensors", model)
        .file("x.csv", digits_csv(3, None))
        .creates("out.csv"),
        Case::new(
            "predict wrong feature count",
            &["predict", "--model", "m.safetensors", "--data", "x.csv"],
            1,
        )
        .file("m.safetensors", model)
        .file("x.csv", "1,2,3\n4,5,6\n")
        .stderr(&["x.csv", "expects 64 features", "3 columns", "line 1"]),
        Case::new(
            "predict bad cell leaves no output",
            &[
                "predict",
                "--model",
                "m.safetensors",
                "--data",
                "x.csv",
                "--output",
                "out.csv",
            ],
            1,
        )
        .file("m.safetensors", model)
        .file("x.csv", digits_csv(3, None).replacen("\n1,", "\none,", 1))
        .stderr(&["x.csv", "line 2", "\"one\" is not a number"]),
        Case::new(
            "predict with label column of one class",
            &[
                "predict",
                "--model",
                "m.safetensors",
                "--data",
                "x.csv",
                "--target",
                "64",
            ],
            0,
        )
        .file("m.safetensors", model)
        .file("x.csv", digits_csv(3, Some(&["4"]))),
        Case::new(
            "evaluate wrong feature count",
            &["evaluate", "--model", "m.safetensors", "--data", "x.csv"],
            1,
        )
        .file("m.safetensors", model)
        .file("x.csv", "1,2,3\n4,5,6\n")
        .stderr(&["x.csv", "expects 64 features", "has 2"]),
        Case::new(
            "evaluate unseen label",
            &["evaluate", "--model", "m.safetensors", "--data", "x.csv"],
            1,
        )
        .file("m.safetensors", model)
        .file("x.csv", digits_csv(4, Some(&["3", "12"])))
        .stderr(&[
            "x.csv",
            "line 2",
            "\"12\"",
            "not one of the model's 10 classes",
        ]),
        Case::new(
            "evaluate one class works",
            &["evaluate", "--model", "m.safetensors", "--data", "x.csv"],
            0,
        )
        .file("m.safetensors", model)
        .file("x.csv", digits_csv(4, Some(&["3"]))),
        Case::new(
            "evaluate regression task on classifier",
            &[
                "evaluate",
                "--model",
                "m.safetensors",
                "--data",
                "x.csv",
                "--task",
                "regression",
            ],
            1,
        )
        .file("m.safetensors", model)
        .file("x.csv", digits_csv(4, Some(&["3", "5"])))
        .stderr(&["x.csv", "classifier", "drop --task regression"]),
    ]
}

fn usage_cases() -> Vec<Case> {
    vec![
        Case::new("unknown flag", &["train", "--bogus"], 2).stderr(&["--bogus"]),
        Case::new("unknown subcommand", &["fit"], 2).stderr(&["fit"]),
        Case::new(
            "zero-width layer",
            &["train", "--quiet", "--layers", "0"],
            2,
        )
        .stderr(&["--layers", "at least 1"]),
        Case::new(
            "zero-width second layer",
            &["train", "--quiet", "--layers", "8,0"],
            2,
        )
        .stderr(&["--layers", "at least 1"]),
        Case::new(
            "test split above 1",
            &["train", "--quiet", "--test-split", "2"],
            2,
        )
        .stderr(&["--test-split", "between 0 and 1"]),
        Case::new(
            "validation split above 1",
            &["train", "--quiet", "--validation-split", "1.5"],
            2,
        )
        .stderr(&["--validation-split", "at least 0 and below 1"]),
        Case::new(
            "negative learning rate",
            &["train", "--quiet", "--lr", "-1"],
            2,
        )
        .stderr(&["learning rate", "-1"]),
        Case::new(
            "negative learning rate with =",
            &["train", "--quiet", "--lr=-1"],
            2,
        )
        .stderr(&["learning rate", "-1"]),
        Case::new(
            "unknown activation",
            &["train", "--quiet", "--activation", "banana"],
            2,
        )
        .stderr(&["--activation", "banana"]),
        Case::new(
            "negative L2 penalty",
            &["train", "--quiet", "--l2", "-1"],
            2,
        )
        .stderr(&["L2 penalty", "-1"]),
        Case::new(
            "negative validation split",
            &["train", "--quiet", "--validation-split", "-0.1"],
            2,
        )
        .stderr(&["--validation-split", "-0.1"]),
        Case::new("zero epochs", &["train", "--quiet", "--epochs", "0"], 2)
            .stderr(&["epochs", "at least 1"]),
        Case::new(
            "zero batch size",
            &["train", "--quiet", "--batch-size", "0"],
            2,
        )
        .stderr(&["batch size", "at least 1"]),
        Case::new("dropout of 1", &["train", "--quiet", "--dropout", "1"], 2)
            .stderr(&["dropout", "[0, 1)"]),
        Case::new(
            "test data with IDX directory",
            &[
                "train",
                "--quiet",
                "--data",
                "mnist",
                "--test-data",
                "t.csv",
            ],
            2,
        )
        .files(idx_dir(|_| {}))
        .stderr(&["mnist", "drop --test-data"]),
    ]
}

#[test]
fn cli_error_table() {
    let model = trained_model();
    let cases: Vec<Case> = [
        csv_cases(),
        idx_cases(),
        model_cases(&model),
        prediction_cases(&model),
        usage_cases(),
    ]
    .into_iter()
    .flatten()
    .collect();

    let failures: Vec<String> = cases.iter().flat_map(check).collect();
    assert!(
        failures.is_empty(),
        "{} checks failed in {} cases:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
