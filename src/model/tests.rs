use super::*;
use crate::activation::Activation;
use crate::data::ScalerKind;
use crate::rng::Rng;

fn model() -> Model {
    let mut rng = Rng::new(1);
    let network = Network::random(
        &[3, 5, 2],
        &[Activation::Relu, Activation::Softmax],
        &mut rng,
    )
    .unwrap();
    let features = ndarray::array![[1.0f32, 2.0, 3.0], [2.0, 0.0, 1.0]];
    Model {
        network,
        cost: Cost::CategoricalCrossEntropy,
        class_names: Some(vec!["cat".into(), "dog".into()]),
        feature_names: Some(vec!["a".into(), "b".into(), "c".into()]),
        scaler: Scaler::fit(ScalerKind::Standard, features.view()),
        training: serde_json::json!({"epochs": 3}),
    }
}

#[test]
fn save_and_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let original = model();
    original.save(&path).unwrap();
    let loaded = Model::load(&path).unwrap();
    assert_eq!(loaded, original);
    let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "a temporary file was left behind");
}

#[test]
fn tensors_use_pytorch_names_and_layout() {
    let original = model();
    let bytes = encode(&original.network, HashMap::new()).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let weight = tensors.tensor("layers.0.weight").unwrap();
    assert_eq!(weight.shape(), &[5, 3]);
    assert_eq!(weight.dtype(), Dtype::F32);
    let first = f32::from_le_bytes(weight.data()[..4].try_into().unwrap());
    assert_eq!(first, original.network.layers()[0].weights()[[0, 0]]);
    assert_eq!(tensors.tensor("layers.1.bias").unwrap().shape(), &[2]);
}

fn load_error(bytes: &[u8]) -> String {
    Model::from_bytes(bytes, Path::new("bad.safetensors"))
        .unwrap_err()
        .to_string()
}

fn saved_bytes(model: &Model) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    model.save(&path).unwrap();
    fs::read(path).unwrap()
}

fn with_description(network: &Network<f32>, description: &str) -> Vec<u8> {
    encode(
        network,
        HashMap::from([(METADATA_KEY.to_string(), description.to_string())]),
    )
    .unwrap()
}

#[test]
fn truncated_file_is_error() {
    let bytes = saved_bytes(&model());
    for length in [0, 7, 8, 20, bytes.len() - 1] {
        let message = load_error(&bytes[..length]);
        assert!(message.contains("bad.safetensors"), "{message}");
        assert!(
            message.contains("not a valid safetensors file"),
            "{length}: {message}"
        );
    }
}

#[test]
fn truncated_file_names_byte_offset() {
    let bytes = saved_bytes(&model());
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;

    let cut = bytes.len() - 10;
    let message = load_error(&bytes[..cut]);
    assert!(message.contains("it is truncated"), "{message}");
    assert!(
        message.contains(&format!(
            "describes {} bytes, but the file ends at byte offset {cut}",
            bytes.len()
        )),
        "{message}"
    );

    let message = load_error(&bytes[..20]);
    assert!(
        message.contains(&format!(
            "ends at byte offset 20, inside its {header_len}-byte JSON header"
        )),
        "{message}"
    );
}

#[test]
fn other_format_is_error() {
    let message = load_error(b"label,x\n1,2\n");
    assert!(
        message.contains("not a valid safetensors file"),
        "{message}"
    );
    assert!(!message.contains("truncated, because"), "{message}");
}

#[test]
fn missing_description_is_error() {
    let bytes = encode(&model().network, HashMap::new()).unwrap();
    let message = load_error(&bytes);
    assert!(message.contains("no 'feedforward' metadata"), "{message}");
}

#[test]
fn unknown_version_is_error() {
    let original = model();
    let mut metadata = serde_json::to_value(original.metadata()).unwrap();
    metadata["format_version"] = serde_json::json!(99);
    let message = load_error(&with_description(&original.network, &metadata.to_string()));
    assert!(
        message.contains("format version 99 is not supported"),
        "{message}"
    );
}

#[test]
fn shape_disagreement_is_error() {
    let original = model();
    let mut metadata = serde_json::to_value(original.metadata()).unwrap();
    metadata["layer_sizes"] = serde_json::json!([3, 6, 2]);
    let message = load_error(&with_description(&original.network, &metadata.to_string()));
    assert!(
        message.contains("has shape [5, 3] but the description says [6, 3]"),
        "{message}"
    );
}

#[test]
fn wrong_tensor_count_is_error() {
    let original = model();
    let mut metadata = serde_json::to_value(original.metadata()).unwrap();
    metadata["layer_sizes"] = serde_json::json!([3, 5, 2, 2]);
    metadata["activations"] = serde_json::json!(["relu", "relu", "softmax"]);
    let message = load_error(&with_description(&original.network, &metadata.to_string()));
    assert!(
        message.contains("holds 4 tensors but the description's 3 layers need 6"),
        "{message}"
    );
}

#[test]
fn invalid_description_is_error() {
    let original = model();
    let message = load_error(&with_description(
        &original.network,
        "{\"format_version\": 1}",
    ));
    assert!(message.contains("invalid model description"), "{message}");
    let message = load_error(&with_description(&original.network, "not json"));
    assert!(message.contains("no format_version"), "{message}");
}

#[test]
fn non_finite_weights_are_not_saved() {
    let mut broken = model();
    broken.network.layers_mut()[1].weights_mut()[[0, 0]] = f32::NAN;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let message = broken.save(&path).unwrap_err().to_string();
    assert!(
        message.contains("layer 2 has a NaN or infinite weight"),
        "{message}"
    );
    assert!(!path.exists());
}

#[test]
fn predict_applies_scaler() {
    let original = model();
    let raw = ndarray::array![[1.0f32, 2.0, 3.0]];
    let mut scaled = raw.clone();
    original.scaler.transform(&mut scaled).unwrap();
    let expected = original.network.forward(scaled.t()).unwrap();
    assert_eq!(original.predict(raw.view()).unwrap(), expected);
    assert!(
        original
            .predict(ndarray::array![[1.0f32, 2.0]].view())
            .is_err()
    );
}

#[test]
fn save_rejects_what_load_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");

    let mut wrong_classes = model();
    wrong_classes.class_names = Some(vec!["cat".into()]);
    let error = wrong_classes.save(&path).unwrap_err().to_string();
    assert!(error.contains("1 class names"), "{error}");

    let mut wrong_scaler = model();
    wrong_scaler.scaler = Scaler::fit(ScalerKind::MinMax, ndarray::Array2::zeros((2, 5)).view());
    let error = wrong_scaler.save(&path).unwrap_err().to_string();
    assert!(error.contains("scaler is for 5 features"), "{error}");

    assert!(!path.exists(), "a rejected model was written");
}

#[test]
fn oversized_description_is_error() {
    let original = model();
    let mut metadata = serde_json::to_value(original.metadata()).unwrap();
    metadata["training"] = serde_json::json!(vec![0u8; MAX_DESCRIPTION_BYTES / 2]);
    let message = load_error(&with_description(&original.network, &metadata.to_string()));
    assert!(
        message.contains("more than the 4194304 that feedforward reads"),
        "{message}"
    );
}
