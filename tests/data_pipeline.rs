//! Loads, splits and scales data through the public API only, as a user of the library would.

use std::io::Write;

use feedforward::data::{CsvOptions, Scaler, ScalerKind, Task, digits, load_csv};
use feedforward::{Dataset, Rng, Targets};

#[test]
fn csv_split_scale() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "height,weight,species").unwrap();
    for i in 0..20 {
        let species = if i % 2 == 0 { "setosa" } else { "virginica" };
        writeln!(file, "{},{},{species}", i as f32 * 0.5, 100 - i).unwrap();
    }

    let options = CsvOptions {
        target: Some("species".parse().unwrap()),
        task: Task::Classification,
        ..CsvOptions::default()
    };
    let data: Dataset = load_csv(file.path(), &options).unwrap();
    assert_eq!(data.len(), 20);
    assert_eq!(data.n_classes(), Some(2));
    data.check_finite(file.path()).unwrap();

    let (mut train, mut validation) = data.split(0.25, &mut Rng::new(42)).unwrap();
    assert_eq!((train.len(), validation.len()), (15, 5));

    let scaler = Scaler::fit(ScalerKind::Standard, train.features.view());
    scaler.transform(&mut train.features).unwrap();
    scaler.transform(&mut validation.features).unwrap();
    let mean: f32 = train.features.column(0).iter().sum::<f32>() / train.len() as f32;
    assert!(mean.abs() < 1e-5, "training mean after scaling {mean}");

    let Targets::Classes { class_names, .. } = &validation.targets else {
        panic!("expected class targets");
    };
    assert_eq!(class_names, &["setosa".to_owned(), "virginica".to_owned()]);
}

#[test]
fn digits_min_max_scaled() {
    let mut data = digits();
    let scaler = Scaler::fit(ScalerKind::MinMax, data.features.view());
    scaler.transform(&mut data.features).unwrap();
    assert!(
        data.features
            .iter()
            .all(|value| (0.0..=1.0).contains(value))
    );
}
