//! Fuzzes the model-file parser with the whole input as the file. A model that loads is then
//! used once, on one example of zero features, as `feedforward predict` would use it.

#![no_main]

use std::path::Path;

use feedforward::model::Model;
use libfuzzer_sys::fuzz_target;
use ndarray::Array2;

fuzz_target!(|input: &[u8]| {
    let Ok(model) = Model::from_bytes(input, Path::new("fuzz.safetensors")) else {
        return;
    };
    let features = Array2::<f32>::zeros((1, model.network.inputs()));
    let _ = model.predict(features.view());
});
