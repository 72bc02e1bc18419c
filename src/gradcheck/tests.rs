use super::*;
use crate::activation::Activation;
use crate::rng::Rng;

#[test]
fn passes_correct_and_fails_wrong_gradient() {
    let mut rng = Rng::new(1);
    let network = Network::random(
        &[3, 4, 2],
        &[Activation::Tanh, Activation::Softmax],
        &mut rng,
    )
    .unwrap();
    let x = Array2::from_shape_fn((3, 5), |_| rng.normal());
    let mut y = Array2::zeros((2, 5));
    for j in 0..5 {
        y[[j % 2, j]] = 1.0;
    }
    let checks = check_gradients(
        &network,
        x.view(),
        y.view(),
        Cost::CategoricalCrossEntropy,
        1e-6,
    )
    .unwrap();
    assert!(
        checks.iter().all(|c| c.max_relative_error < 1e-6),
        "{checks:?}"
    );
    let wrong = compare(
        "W".into(),
        vec![2],
        [1.0, 2.0].into_iter(),
        [1.0, 2.1].into_iter(),
    );
    assert!(wrong.max_relative_error > 1e-2);
    assert_eq!(wrong.worst_entry, 1);
}

#[test]
fn nan_fails() {
    let check = compare(
        "W".into(),
        vec![2],
        [1.0, f64::NAN].into_iter(),
        [1.0, 1.0].into_iter(),
    );
    assert!(check.max_relative_error.is_nan());
}

#[test]
fn rejects_bad_step() {
    let mut rng = Rng::new(1);
    let network = Network::random(&[2, 1], &[Activation::Identity], &mut rng).unwrap();
    let x = Array2::zeros((2, 1));
    let y = Array2::zeros((1, 1));
    assert!(check_gradients(&network, x.view(), y.view(), Cost::MeanSquaredError, 0.0).is_err());
}
