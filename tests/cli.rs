//! End-to-end runs of the `feedforward` binary: train on the embedded digits and on
//! Fashion-MNIST, then evaluate, predict and inspect the saved model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use feedforward::data::{self, Targets};
use feedforward::{Model, Rng};

fn feedforward(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_feedforward"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the feedforward binary runs")
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The number after `test accuracy: ` in a report.
fn test_accuracy(report: &str) -> f64 {
    let line = report
        .lines()
        .find(|l| l.starts_with("test accuracy: "))
        .unwrap_or_else(|| panic!("no test accuracy in:\n{report}"));
    line["test accuracy: ".len()..].trim().parse().unwrap()
}

/// The Fashion-MNIST directory installed by Debian's dataset-fashion-mnist package, or `None`
/// (with a note) when it is missing. Under CI it must be there.
fn fashion_mnist() -> Option<PathBuf> {
    let dir = PathBuf::from("/usr/share/datasets/fashion-mnist");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
    );
    eprintln!(
        "skipped: {} is missing (apt-get install dataset-fashion-mnist)",
        dir.display()
    );
    None
}

#[test]
fn digits_train_evaluate_predict_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let report = stdout_of(&feedforward(
        &["train", "--quiet", "--seed", "3"],
        dir.path(),
    ));
    let trained = test_accuracy(&report);
    assert!(
        trained >= 0.95,
        "test accuracy {trained} on the embedded digits"
    );
    assert!(report.contains("confusion matrix"), "{report}");
    let model_path = dir.path().join("model.safetensors");
    assert!(model_path.exists());

    let evaluation = stdout_of(&feedforward(&["evaluate"], dir.path()));
    assert_eq!(test_accuracy(&evaluation), trained, "{evaluation}");
    assert!(
        evaluation.contains("test split 0.2 with seed 3"),
        "{evaluation}"
    );

    let predictions = stdout_of(&feedforward(&["predict"], dir.path()));
    let mut lines = predictions.lines();
    let header = lines.next().unwrap();
    assert_eq!(header, "label,p_0,p_1,p_2,p_3,p_4,p_5,p_6,p_7,p_8,p_9");
    let predicted: Vec<String> = lines
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    let (_, test) = data::digits().split(0.2, &mut Rng::new(3)).unwrap();
    let Targets::Classes {
        labels,
        class_names,
    } = &test.targets
    else {
        panic!("digits are classes")
    };
    assert_eq!(predicted.len(), labels.len());
    let correct = predicted
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == class_names[**l])
        .count();
    let accuracy = correct as f64 / labels.len() as f64;
    assert!(
        (accuracy - trained).abs() < 1e-4,
        "predict gives {accuracy}, train {trained}"
    );

    let output = dir.path().join("predictions.csv");
    stdout_of(&feedforward(
        &["predict", "--output", "predictions.csv"],
        dir.path(),
    ));
    assert_eq!(std::fs::read_to_string(output).unwrap(), predictions);

    let inspection = stdout_of(&feedforward(&["inspect"], dir.path()));
    assert!(
        inspection.contains("Dense(64 -> 100, relu)"),
        "{inspection}"
    );
    assert!(inspection.contains("parameters: 7510"), "{inspection}");
    assert!(inspection.contains("\"epochs\": 20"), "{inspection}");

    let model = Model::load(&model_path).unwrap();
    assert_eq!(model.network.sizes(), vec![64, 100, 10]);
}

#[test]
fn same_seed_gives_identical_model_files() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: &str| {
        let args = [
            "train",
            "--quiet",
            "--seed",
            seed,
            "--epochs",
            "5",
            "--dropout",
            "0.1",
            "--threads",
            "2",
            "--model",
            name,
        ];
        stdout_of(&feedforward(&args, dir.path()));
        let model = Model::load(&dir.path().join(name)).unwrap();
        let bytes = std::fs::read(dir.path().join(name)).unwrap();
        (model.network, bytes)
    };
    let (first, first_bytes) = run("a.safetensors", "7");
    let (second, second_bytes) = run("b.safetensors", "7");
    let (other, _) = run("c.safetensors", "8");
    assert_eq!(first, second);
    assert!(first_bytes == second_bytes, "the two model files differ");
    assert_ne!(first, other);
}

/// The `f32` products sum every element in the same order whatever the thread count, so the
/// thread count must not change a bit of the model. That holds for the crate's own product,
/// used on x86-64 CPUs with AVX2 and FMA; elsewhere the `gemm` crate may round differently.
#[test]
fn thread_count_gives_identical_model_files() {
    #[cfg(target_arch = "x86_64")]
    let own_product = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    let own_product = false;
    if !own_product {
        eprintln!("skipped: this CPU uses the gemm crate's product");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |threads: &str, batch: &str| {
        let name = format!("threads-{threads}-batch-{batch}.safetensors");
        // Wide layers and batches, so that the products and the largest elementwise passes
        // between them (600 x 128 values) are split across threads. Clipping makes the weights
        // depend on the gradient norm, whose sum is split too. Batches of 256 are also ordered
        // by their inputs, and their products skip zero steps.
        let args = [
            "train",
            "--quiet",
            "--seed",
            "3",
            "--epochs",
            "3",
            "--layers",
            "600,300",
            "--batch-size",
            batch,
            "--clip-norm",
            "0.5",
            "--threads",
            threads,
            "--model",
            &name,
        ];
        stdout_of(&feedforward(&args, dir.path()));
        std::fs::read(dir.path().join(&name)).unwrap()
    };
    for batch in ["128", "256"] {
        let single_thread = run("1", batch);
        for threads in ["2", "3"] {
            assert!(
                single_thread == run(threads, batch),
                "{threads} threads changed the model file at batch {batch}"
            );
        }
    }
}

#[test]
fn csv_classification_with_string_labels() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("x,y,species\n");
    let mut rng = Rng::new(5);
    for i in 0..300 {
        let (name, cx, cy) = [
            ("setosa", -2.0, 0.0),
            ("versicolor", 2.0, 0.0),
            ("virginica", 0.0, 3.0),
        ][i % 3];
        csv += &format!(
            "{},{},{name}\n",
            cx + 0.4 * rng.normal(),
            cy + 0.4 * rng.normal()
        );
    }
    std::fs::write(dir.path().join("flowers.csv"), csv).unwrap();
    let args = [
        "train",
        "--quiet",
        "--data",
        "flowers.csv",
        "--target",
        "species",
        "--layers",
        "8",
        "--epochs",
        "60",
    ];
    let report = stdout_of(&feedforward(&args, dir.path()));
    assert!(test_accuracy(&report) > 0.95, "{report}");
    let predictions = stdout_of(&feedforward(
        &["predict", "--data", "flowers.csv", "--target", "species"],
        dir.path(),
    ));
    assert!(
        predictions.starts_with("label,p_setosa,p_versicolor,p_virginica\n"),
        "{predictions}"
    );
    assert_eq!(predictions.lines().count(), 301);
}

#[test]
fn csv_regression() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("a,b,target\n");
    let mut rng = Rng::new(6);
    for _ in 0..400 {
        let (a, b) = (rng.uniform_range(-1.0, 1.0), rng.uniform_range(-1.0, 1.0));
        csv += &format!("{a},{b},{}\n", 3.0 * a - 2.0 * b + 0.5);
    }
    std::fs::write(dir.path().join("linear.csv"), csv).unwrap();
    let args = [
        "train",
        "--quiet",
        "--data",
        "linear.csv",
        "--task",
        "regression",
        "--layers",
        "16",
        "--epochs",
        "100",
        "--lr",
        "0.01",
    ];
    let report = stdout_of(&feedforward(&args, dir.path()));
    let r2: f64 = report
        .lines()
        .find_map(|l| l.strip_prefix("test R²: "))
        .unwrap_or_else(|| panic!("{report}"))
        .parse()
        .unwrap();
    assert!(r2 > 0.99, "{report}");
}

#[test]
fn fashion_mnist_reaches_088() {
    let Some(data) = fashion_mnist() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = data.to_str().unwrap();
    // The README's recommended command.
    let args = [
        "train",
        "--quiet",
        "--data",
        data,
        "--layers",
        "256,128",
        "--batch-size",
        "128",
        "--epochs",
        "15",
        "--schedule",
        "cosine",
        "--dropout",
        "0.2",
        "--seed",
        "1",
    ];
    let report = stdout_of(&feedforward(&args, dir.path()));
    let trained = test_accuracy(&report);
    assert!(
        trained >= 0.88,
        "Fashion-MNIST test accuracy {trained}\n{report}"
    );
    let evaluation = stdout_of(&feedforward(&["evaluate", "--data", data], dir.path()));
    assert_eq!(test_accuracy(&evaluation), trained);
    assert!(evaluation.contains("10000 examples"), "{evaluation}");
}

/// The model file opens in Python's `safetensors` package with the expected tensors. Runs
/// when `FEEDFORWARD_TEST_PYTHON` names a Python with `safetensors` and `numpy`, as `.ci/run`
/// sets up.
#[test]
fn model_opens_in_python_safetensors() {
    let Some(python) = std::env::var_os("FEEDFORWARD_TEST_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI sets FEEDFORWARD_TEST_PYTHON to a Python with safetensors and numpy"
        );
        eprintln!("skipped: set FEEDFORWARD_TEST_PYTHON to a Python with safetensors and numpy");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    stdout_of(&feedforward(
        &["train", "--quiet", "--epochs", "2"],
        dir.path(),
    ));
    let script = r#"
import json, sys
from safetensors import safe_open
from safetensors.numpy import load_file
tensors = load_file("model.safetensors")
shapes = {name: list(t.shape) for name, t in tensors.items()}
with safe_open("model.safetensors", "np") as f:
    description = json.loads(f.metadata()["feedforward"])
print(json.dumps({"shapes": shapes, "sizes": description["layer_sizes"], "dtype": str(tensors["layers.0.weight"].dtype)}))
"#;
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = stdout_of(&output);
    let result: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(result["sizes"], serde_json::json!([64, 100, 10]));
    assert_eq!(
        result["shapes"]["layers.0.weight"],
        serde_json::json!([100, 64])
    );
    assert_eq!(result["shapes"]["layers.1.bias"], serde_json::json!([10]));
    assert_eq!(result["dtype"], "float32");
}

#[test]
fn separate_validation_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(9);
    for name in ["train.csv", "validation.csv"] {
        let mut csv = String::from("x,label\n");
        for i in 0..120 {
            let label = ["low", "high"][i % 2];
            let center = if i % 2 == 0 { -1.0 } else { 1.0 };
            csv += &format!("{},{label}\n", center + 0.3 * rng.normal());
        }
        std::fs::write(dir.path().join(name), csv).unwrap();
    }
    let args = [
        "train",
        "--quiet",
        "--data",
        "train.csv",
        "--validation-data",
        "validation.csv",
        "--epochs",
        "3",
    ];
    stdout_of(&feedforward(&args, dir.path()));
    let model = Model::load(&dir.path().join("model.safetensors")).unwrap();
    let epochs = model.training["history"]["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 3);
    assert!(
        epochs[2]["validation_accuracy"].as_f64().is_some(),
        "{epochs:?}"
    );

    let both = [
        "train",
        "--data",
        "train.csv",
        "--validation-data",
        "validation.csv",
        "--validation-split",
        "0.2",
    ];
    assert_eq!(feedforward(&both, dir.path()).status.code(), Some(2));
}
