//! Sequence classification through the shared loop: a classifier over
//! padded sequences of different lengths learns a task only the valid
//! steps decide, forward and bidirectional.

mod common;

use burn::data::dataset::InMemDataset;
use burn::module::AutodiffModule;
use burn::prelude::*;
use ncps::cells::CfCCellOptions;
use ncps::datasets::uea::{UeaBatcher, UeaItem};
use ncps::rnn::{Bidirectional, CfCConfig, Merge, Units};
use ncps::train::{
    Clipping, CrossEntropy, SequenceClassifier, SequenceEncoder, TrainConfig, Trainer, accuracy,
};

use common::AD;

/// Class 1 when the sequence's valid steps sum above 0; the padding after
/// them holds large values of the opposite sign, so a model that reads
/// the padding gets it wrong.
fn cases(count: usize, seed: u64) -> Vec<UeaItem> {
    let mut state = seed * 2 + 1;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..count)
        .map(|_| {
            let length = 2 + (next() * 9.0) as usize;
            let series: Vec<f32> = (0..length).map(|_| next() * 2.0 - 1.0).collect();
            let class = usize::from(series.iter().sum::<f32>() > 0.0);
            UeaItem {
                series,
                length,
                dims: 1,
                class,
            }
        })
        .collect()
}

/// Burn's RNG is one per process and the trainer reseeds it every epoch:
/// the tests take turns, so that each one's run is the same every time.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Trains a classifier over the encoder `make` builds (after seeding
/// Burn's RNG) and returns its test accuracy.
fn train_and_test<E>(make: impl FnOnce(&Device<AD>) -> E) -> f64
where
    E: SequenceEncoder<AD> + AutodiffModule<AD> + burn::module::ModuleDisplay + Send + 'static,
    E::InnerModule: SequenceEncoder<burn::backend::NdArray> + burn::module::ModuleDisplay,
{
    use burn::data::dataloader::batcher::Batcher;
    let _turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let device = Default::default();
    AD::seed(&device, 0);
    let model = SequenceClassifier::new(make(&device), 2, &device);
    let train = InMemDataset::new(cases(256, 1));
    let valid = InMemDataset::new(cases(64, 2));
    let config = TrainConfig::new(25, 16)
        .with_learning_rate(0.01)
        .with_clipping(Clipping::GlobalNorm(1.0));
    let trained = Trainer::new(config, device)
        .fit(model, &CrossEntropy, &train, &valid, &UeaBatcher, &mut ())
        .unwrap();
    assert!(
        trained
            .log
            .iter()
            .all(|l| l.valid_metrics.contains_key("accuracy"))
    );
    let test = cases(200, 3);
    // The test batch is padded to its longest case (10 steps), with the
    // opposite-sign padding of real padding replaced by the batcher's zeros:
    // re-pad it here with large values to show the padding is not read.
    let batch = Batcher::<burn::backend::NdArray, _, _>::batch(&UeaBatcher, test, &device);
    let lengths: Vec<i64> = batch.lengths.to_data().to_vec().unwrap();
    let [n, steps, _] = batch.inputs.dims();
    let mut values: Vec<f32> = batch.inputs.to_data().to_vec().unwrap();
    for (b, &len) in lengths.iter().enumerate() {
        for t in len as usize..steps {
            values[b * steps + t] = 50.0;
        }
    }
    let inputs = Tensor::from_data(
        burn::tensor::TensorData::new(values, [n, steps, 1]),
        &device,
    );
    let logits = trained.model.valid().logits(inputs, batch.lengths);
    accuracy(logits, batch.targets)
}

#[test]
fn a_cfc_classifier_learns_from_the_valid_steps_only() {
    let accuracy = train_and_test(|device| {
        CfCConfig::new(1, Units::from(8))
            .with_cell(CfCCellOptions::new().with_backbone_units(16))
            .with_return_sequences(false)
            .init::<AD>(device)
            .unwrap()
    });
    assert!(accuracy >= 0.9, "test accuracy {accuracy}");
}

#[test]
fn a_bidirectional_classifier_learns_from_the_valid_steps_only() {
    let accuracy = train_and_test(|device| {
        let direction = || {
            CfCConfig::new(1, Units::from(6))
                .with_cell(CfCCellOptions::new().with_backbone_units(12))
                .with_return_sequences(false)
                .init::<AD>(device)
                .unwrap()
        };
        Bidirectional::new(direction(), direction(), Merge::Concat).unwrap()
    });
    assert!(accuracy >= 0.9, "test accuracy {accuracy}");
}
