use super::*;
use crate::network::Network;
use crate::optim::{OptimizerConfig, Schedule};
use crate::train::{EarlyStopping, TrainData};
use ndarray::Array2;
use safetensors::tensor::{Dtype, TensorView};

/// Draws three Gaussian blobs in 2-D with standard deviation 1.5, labels one-hot over 3 classes.
fn blobs(m: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    crate::test_data::blobs(m, seed, 1.5)
}

fn trainer(config: TrainConfig) -> Trainer {
    let network = Network::random(
        &[2, 12, 8, 3],
        &[Activation::Tanh, Activation::Relu, Activation::Softmax],
        &mut Rng::new(7),
    )
    .unwrap();
    Trainer::new(network, Cost::CategoricalCrossEntropy, config).unwrap()
}

/// Dropout, a cosine schedule, L2, clipping and early stopping: every piece of state a
/// resumed run must restore.
fn full_config() -> TrainConfig {
    TrainConfig {
        epochs: 12,
        batch_size: 16,
        optimizer: OptimizerConfig::adam().with_lr(0.02),
        schedule: Schedule::Cosine {
            total_epochs: None,
            min_lr: 1e-4,
        },
        l2: 1e-3,
        clip_norm: Some(2.0),
        dropout: 0.25,
        seed: 11,
        early_stopping: Some(EarlyStopping {
            patience: 3,
            min_delta: 1e-3,
        }),
        order_by_zeros: true,
    }
}

/// Returns a copy of the history with the wall-clock timings, which differ between runs, set
/// to zero.
fn without_timings(history: &History) -> History {
    let mut history = history.clone();
    for record in &mut history.epochs {
        record.seconds = 0.0;
    }
    history
}

/// Trains `config` straight through, and again with a save and resume after `stop_after`
/// epochs, and asserts that both end with the same weights and history.
fn assert_resume_matches(config: TrainConfig, stop_after: usize) {
    assert_resume_matches_on(config, stop_after, 150);
}

/// Does what [`assert_resume_matches`] does, on a training set of `examples` blobs.
fn assert_resume_matches_on(config: TrainConfig, stop_after: usize, examples: usize) {
    let (x, y) = blobs(examples, 3);
    let (vx, vy) = blobs(45, 4);
    let train = TrainData::new(x.view(), y.view()).unwrap();
    let validation = TrainData::new(vx.view(), vy.view()).unwrap();

    let mut straight = trainer(config.clone());
    straight.fit(train, Some(validation), &mut ()).unwrap();

    let mut first = trainer(config.clone());
    for _ in 0..stop_after {
        first.run_epoch(train, Some(validation), &mut ()).unwrap();
    }
    let extra = serde_json::json!({"data": "blobs", "seconds": 1.25});
    let bytes = first.checkpoint_bytes(&extra).unwrap();
    drop(first);
    let (mut resumed, stored_extra) =
        Trainer::resume_from_bytes(&bytes, Path::new("run.ckpt")).unwrap();
    assert_eq!(stored_extra, extra);
    assert_eq!(resumed.epochs_done(), stop_after);
    resumed.fit(train, Some(validation), &mut ()).unwrap();

    assert_eq!(
        without_timings(resumed.history()),
        without_timings(straight.history()),
        "{config:?}"
    );
    assert_eq!(resumed.optimizer, straight.optimizer, "{config:?}");
    assert_eq!(resumed.finish(), straight.finish(), "{config:?}");
}

#[test]
fn resume_matches_uninterrupted_run() {
    assert_resume_matches(full_config(), 4);
}

/// Batches of 256 are ordered by their inputs (`TrainConfig::order_by_zeros`), which a resumed
/// run must repeat.
#[test]
fn resume_matches_with_ordered_batches() {
    let config = TrainConfig {
        epochs: 4,
        batch_size: 256,
        ..full_config()
    };
    assert_resume_matches_on(config, 2, 600);
}

#[test]
fn resume_matches_for_every_optimizer() {
    for optimizer in ["sgd", "nesterov(lr=0.05)", "rmsprop(momentum=0.5)", "adamw"] {
        let config = TrainConfig {
            optimizer: optimizer.parse().unwrap(),
            early_stopping: None,
            ..full_config()
        };
        assert_resume_matches(config, 2);
    }
}

#[test]
fn resume_after_early_stop_is_finished() {
    let config = TrainConfig {
        epochs: 60,
        early_stopping: Some(EarlyStopping {
            patience: 1,
            min_delta: 10.0,
        }),
        ..full_config()
    };
    let (x, y) = blobs(60, 5);
    let train = TrainData::new(x.view(), y.view()).unwrap();
    let mut run = trainer(config);
    run.fit(train, None, &mut ()).unwrap();
    assert!(run.history().stopped_early, "{:?}", run.history());

    let bytes = run.checkpoint_bytes(&serde_json::Value::Null).unwrap();
    let (resumed, _) = Trainer::resume_from_bytes(&bytes, Path::new("run.ckpt")).unwrap();
    assert!(resumed.is_finished());
    assert_eq!(
        without_times(resumed.history()),
        without_times(run.history())
    );
    assert_eq!(resumed.finish(), run.finish());
}

#[test]
fn resume_before_first_epoch() {
    let run = trainer(full_config());
    let bytes = run.checkpoint_bytes(&serde_json::Value::Null).unwrap();
    let (resumed, _) = Trainer::resume_from_bytes(&bytes, Path::new("run.ckpt")).unwrap();
    assert_eq!(resumed.epochs_done(), 0);
    assert_eq!(resumed.rng, run.rng);
    assert_eq!(resumed.optimizer, run.optimizer);
}

#[test]
fn save_and_resume_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ckpt");
    let (x, y) = blobs(60, 6);
    let train = TrainData::new(x.view(), y.view()).unwrap();
    let mut run = trainer(full_config());
    run.run_epoch(train, None, &mut ()).unwrap();
    run.save_checkpoint(&path, &serde_json::json!([1, 2]))
        .unwrap();
    run.run_epoch(train, None, &mut ()).unwrap();
    run.save_checkpoint(&path, &serde_json::json!([3])).unwrap();

    let (resumed, extra) = Trainer::resume(&path).unwrap();
    assert_eq!(resumed.epochs_done(), 2);
    assert_eq!(extra, serde_json::json!([3]));
    let leftovers = fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "a temporary file was left behind");
}

#[test]
fn tensor_names_and_prefixes() {
    let (x, y) = blobs(60, 6);
    let train = TrainData::new(x.view(), y.view()).unwrap();
    let mut run = trainer(full_config());
    run.run_epoch(train, None, &mut ()).unwrap();
    let bytes = run.checkpoint_bytes(&serde_json::Value::Null).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();

    let mut names: Vec<String> = tensors.names().into_iter().map(str::to_string).collect();
    names.sort();
    let mut expected = Vec::new();
    for prefix in ["", "best.", "optimizer.exp_avg.", "optimizer.exp_avg_sq."] {
        for layer in 0..3 {
            if prefix.starts_with("optimizer") {
                expected.push(format!("{prefix}{layer}.weight"));
                expected.push(format!("{prefix}{layer}.bias"));
            } else {
                expected.push(format!("{prefix}layers.{layer}.weight"));
                expected.push(format!("{prefix}layers.{layer}.bias"));
            }
        }
    }
    expected.sort();
    assert_eq!(names, expected);

    assert_eq!(
        tensors
            .tensor("optimizer.exp_avg.1.weight")
            .unwrap()
            .shape(),
        &[8, 12]
    );
    assert_eq!(tensors.tensor("best.layers.2.bias").unwrap().shape(), &[3]);
}

// Damaged files.

fn checkpoint() -> Vec<u8> {
    let (x, y) = blobs(60, 8);
    let train = TrainData::new(x.view(), y.view()).unwrap();
    let mut run = trainer(full_config());
    run.run_epoch(train, None, &mut ()).unwrap();
    run.run_epoch(train, None, &mut ()).unwrap();
    run.checkpoint_bytes(&serde_json::json!({"k": 1})).unwrap()
}

fn resume_error(bytes: &[u8]) -> String {
    match Trainer::resume_from_bytes(bytes, Path::new("bad.ckpt")) {
        Ok(_) => panic!("the damaged checkpoint was accepted"),
        Err(error) => error.to_string(),
    }
}

/// A stored tensor, owned so that a test can change it.
struct Stored {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

/// Re-encodes `bytes` after `edit` has changed the description and the tensors.
fn rewrite(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value, &mut Vec<Stored>)) -> Vec<u8> {
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let mut description: serde_json::Value =
        serde_json::from_str(&header.metadata().as_ref().unwrap()[METADATA_KEY]).unwrap();
    let tensors = SafeTensors::deserialize(bytes).unwrap();
    let mut stored: Vec<Stored> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| Stored {
            name,
            dtype: view.dtype(),
            shape: view.shape().to_vec(),
            data: view.data().to_vec(),
        })
        .collect();
    edit(&mut description, &mut stored);
    let views: Vec<(String, TensorView<'_>)> = stored
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                TensorView::new(t.dtype, t.shape.clone(), &t.data).unwrap(),
            )
        })
        .collect();
    let metadata = HashMap::from([(METADATA_KEY.to_string(), description.to_string())]);
    safetensors::serialize(views, Some(metadata)).unwrap()
}

#[test]
fn unchanged_rewrite_resumes() {
    let bytes = rewrite(&checkpoint(), |_, _| {});
    Trainer::resume_from_bytes(&bytes, Path::new("ok.ckpt")).unwrap();
}

#[test]
fn truncated_checkpoint_is_error() {
    let bytes = checkpoint();
    for length in [0, 7, 8, 100, bytes.len() / 2, bytes.len() - 1] {
        let message = resume_error(&bytes[..length]);
        assert!(message.contains("bad.ckpt"), "{length}: {message}");
        assert!(
            message.contains("not a valid safetensors file"),
            "{length}: {message}"
        );
    }
}

#[test]
fn other_format_is_error() {
    let message = resume_error(b"epoch,loss\n1,0.5\n");
    assert!(
        message.contains("not a valid safetensors file"),
        "{message}"
    );
}

#[test]
fn model_file_is_error() {
    let network = trainer(full_config()).network;
    let bytes = model::encode(
        &network,
        HashMap::from([(model::METADATA_KEY.to_string(), "{}".to_string())]),
    )
    .unwrap();
    let message = resume_error(&bytes);
    assert!(
        message.contains("is a feedforward model file, not a checkpoint"),
        "{message}"
    );
}

#[test]
fn unknown_version_is_error() {
    let bytes = rewrite(&checkpoint(), |description, _| {
        description["format_version"] = serde_json::json!(2);
    });
    let message = resume_error(&bytes);
    assert!(
        message.contains("checkpoint format version 2 is not supported"),
        "{message}"
    );
}

#[test]
fn invalid_description_is_error() {
    let bytes = rewrite(&checkpoint(), |description, _| {
        description["rng"] = serde_json::json!({"state": [1, 2, 3]});
    });
    let message = resume_error(&bytes);
    assert!(
        message.contains("invalid checkpoint description"),
        "{message}"
    );

    let bytes = rewrite(&checkpoint(), |description, _| {
        description["unknown"] = serde_json::json!(true);
    });
    let message = resume_error(&bytes);
    assert!(message.contains("unknown field `unknown`"), "{message}");
}

#[test]
fn zero_rng_state_is_error() {
    let bytes = rewrite(&checkpoint(), |description, _| {
        description["rng"] = serde_json::json!({"state": [0, 0, 0, 0]});
    });
    let message = resume_error(&bytes);
    assert!(message.contains("state is all zeros"), "{message}");
}

#[test]
fn layer_shape_disagreement_is_error() {
    let bytes = rewrite(&checkpoint(), |description, _| {
        description["layer_sizes"] = serde_json::json!([2, 13, 8, 3]);
    });
    let message = resume_error(&bytes);
    assert!(
        message.contains(
            "tensor 'layers.0.weight' has shape [12, 2] but the description says [13, 2]"
        ),
        "{message}"
    );
}

#[test]
fn optimizer_shape_disagreement_is_error() {
    let bytes = rewrite(&checkpoint(), |_, tensors| {
        let tensor = tensors
            .iter_mut()
            .find(|t| t.name == "optimizer.exp_avg_sq.1.bias")
            .unwrap();
        tensor.shape = vec![4, 2];
    });
    let message = resume_error(&bytes);
    assert!(message.contains("'exp_avg_sq.1.bias'"), "{message}");
    assert!(message.contains("shape [4, 2]"), "{message}");
}

#[test]
fn missing_optimizer_tensor_is_error() {
    let bytes = rewrite(&checkpoint(), |_, tensors| {
        tensors.retain(|t| t.name != "optimizer.exp_avg.0.weight");
    });
    let message = resume_error(&bytes);
    assert!(
        message.contains("optimizer state tensor 'exp_avg.0.weight' is missing"),
        "{message}"
    );
}

#[test]
fn missing_best_weights_is_error() {
    let bytes = rewrite(&checkpoint(), |_, tensors| {
        tensors.retain(|t| t.name != "best.layers.1.bias");
    });
    let message = resume_error(&bytes);
    assert!(
        message.contains("tensor 'best.layers.1.bias' is missing"),
        "{message}"
    );
}

#[test]
fn unexpected_tensor_is_error() {
    let bytes = rewrite(&checkpoint(), |_, tensors| {
        tensors.push(Stored {
            name: "layers.3.weight".into(),
            dtype: Dtype::F32,
            shape: vec![1],
            data: vec![0; 4],
        });
    });
    let message = resume_error(&bytes);
    assert!(
        message.contains("unexpected tensor 'layers.3.weight'"),
        "{message}"
    );

    let bytes = rewrite(&checkpoint(), |description, _| {
        description["best"] = serde_json::Value::Null;
        description["history"]["best_epoch"] = serde_json::Value::Null;
    });
    let message = resume_error(&bytes);
    assert!(
        message.contains("unexpected tensor 'best.layers.0.bias'"),
        "{message}"
    );
}

#[test]
fn wrong_dtype_is_error() {
    let bytes = rewrite(&checkpoint(), |_, tensors| {
        let tensor = tensors
            .iter_mut()
            .find(|t| t.name == "optimizer.exp_avg.2.bias")
            .unwrap();
        tensor.dtype = Dtype::I32;
    });
    let message = resume_error(&bytes);
    assert!(
        message.contains("tensor 'optimizer.exp_avg.2.bias' is I32"),
        "{message}"
    );
}

#[test]
fn non_finite_optimizer_state_is_error() {
    let bytes = rewrite(&checkpoint(), |_, tensors| {
        let tensor = tensors
            .iter_mut()
            .find(|t| t.name == "optimizer.exp_avg.0.bias")
            .unwrap();
        tensor.data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    let message = resume_error(&bytes);
    assert!(message.contains("NaN or infinite"), "{message}");
}

#[test]
fn inconsistent_progress_is_error() {
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 4] = [
        ("stale_epochs is 5", |d| d["stale_epochs"] = 5.into()),
        ("differs from the stored best epoch", |d| {
            d["history"]["best_epoch"] = 1.into();
            d["best"]["epoch"] = 2.into();
        }),
        ("history record 2 is numbered epoch 7", |d| {
            d["history"]["epochs"][1]["epoch"] = 7.into();
        }),
        ("early-stopping state but early stopping is off", |d| {
            d["config"]["early_stopping"] = serde_json::Value::Null;
        }),
    ];
    for (expected, edit) in cases {
        let bytes = rewrite(&checkpoint(), |description, _| edit(description));
        let message = resume_error(&bytes);
        assert!(message.contains(expected), "{expected}: {message}");
    }
}

#[test]
fn other_optimizer_in_config_is_error() {
    let bytes = rewrite(&checkpoint(), |description, _| {
        description["config"]["optimizer"] =
            serde_json::to_value(OptimizerConfig::sgd().with_lr(0.1)).unwrap();
    });
    let message = resume_error(&bytes);
    assert!(
        message.contains("unexpected optimizer state tensors"),
        "{message}"
    );
}

#[test]
fn non_finite_weights_are_not_saved() {
    let mut run = trainer(full_config());
    run.network.layers_mut()[1].weights_mut()[[0, 0]] = f32::INFINITY;
    let message = run
        .checkpoint_bytes(&serde_json::Value::Null)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("layer 2 has a NaN or infinite weight"),
        "{message}"
    );
}

#[test]
fn float_settings_survive_exactly() {
    // serde_json 1.0.154 without its float_roundtrip feature parsed these two values to a
    // neighbouring f64.
    let lr = 1.4095714864048923;
    let config = TrainConfig {
        optimizer: OptimizerConfig::adam().with_lr(lr),
        l2: 1.9221585984357878,
        ..full_config()
    };
    let run = trainer(config.clone());
    let bytes = run
        .checkpoint_bytes(&serde_json::json!(0.1f64 + 0.2))
        .unwrap();
    let (resumed, extra) = Trainer::resume_from_bytes(&bytes, Path::new("run.ckpt")).unwrap();
    assert_eq!(resumed.config().optimizer.lr().to_bits(), lr.to_bits());
    assert_eq!(resumed.config().l2.to_bits(), config.l2.to_bits());
    assert_eq!(extra.as_f64().unwrap().to_bits(), (0.1f64 + 0.2).to_bits());
}

/// The history with the wall-clock seconds cleared: checkpoints do not store them.
fn without_times(history: &crate::train::History) -> crate::train::History {
    let mut history = history.clone();
    for record in &mut history.epochs {
        record.seconds = 0.0;
    }
    history
}
