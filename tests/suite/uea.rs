//! The UEA/UCR `.ts` reader (`ncps::datasets::uea`) on slices of the
//! archive's JapaneseVowels (unequal lengths) and BasicMotions (equal
//! lengths) files in tests/fixtures/uea, and its bad-input table: one test
//! per malformed input, each asserting the `TsProblem` and that the message
//! names the file, line and column.

use std::path::{Path, PathBuf};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use ncps::datasets::uea::{Standardization, TsProblem, UeaBatch, UeaBatcher, UeaDataset, UeaError};
use proptest::prelude::*;

use crate::common::{B, device};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/uea")
        .join(name)
}

fn load(name: &str) -> UeaDataset {
    UeaDataset::from_file(fixture(name)).unwrap()
}

/// A case as the file writes it: dimension after dimension, and its label.
struct RawCase {
    dimensions: Vec<Vec<f32>>,
    label: String,
}

/// The cases of a well-formed file, read the plainest way (no checks): what
/// the reader must agree with.
fn raw_cases(name: &str) -> Vec<RawCase> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let data = text.split("@data").nth(1).unwrap();
    data.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut fields: Vec<&str> = line.split(':').collect();
            let label = fields.pop().unwrap().trim().to_string();
            let dimensions = fields
                .iter()
                .map(|dim| dim.split(',').map(|v| v.trim().parse().unwrap()).collect())
                .collect();
            RawCase { dimensions, label }
        })
        .collect()
}

/// The `@classLabel` line's labels.
fn declared_labels(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let line = text.lines().find(|l| l.starts_with("@classLabel")).unwrap();
    line.split_whitespace().skip(2).map(String::from).collect()
}

/// Checks every value, length, dimension count and class of `name` against
/// the plain reading.
fn check_against_raw(name: &str) -> UeaDataset {
    let data = load(name);
    let raw = raw_cases(name);
    let labels = declared_labels(name);
    assert_eq!(data.class_names(), labels, "classes in the declared order");
    assert_eq!(data.len(), raw.len());
    for (i, case) in raw.iter().enumerate() {
        let item = data.get(i).unwrap();
        let length = case.dimensions[0].len();
        assert_eq!(item.dims, case.dimensions.len());
        assert_eq!(item.length, length, "case {i}");
        assert_eq!(data.class_names()[item.class], case.label, "case {i}");
        for (d, values) in case.dimensions.iter().enumerate() {
            for (t, &value) in values.iter().enumerate() {
                assert_eq!(
                    item.series[t * item.dims + d],
                    value,
                    "case {i} step {t} dim {d}"
                );
            }
        }
    }
    assert!(data.get(raw.len()).is_none());
    data
}

#[test]
fn japanese_vowels_unequal_lengths() {
    let data = check_against_raw("JapaneseVowels_TRAIN.ts");
    assert_eq!(data.problem_name(), Some("JapaneseVowels"));
    assert_eq!(data.len(), 10);
    assert_eq!(data.dims(), 12);
    let names: Vec<String> = (1..=9).map(|i| i.to_string()).collect();
    assert_eq!(data.class_names(), names);
    // Every 27th case of 9 x 30 sorted by speaker.
    let expected: Vec<usize> = (0..10).map(|i| i * 27 / 30).collect();
    assert_eq!(data.classes(), expected);
    let lengths: Vec<usize> = data.lengths().collect();
    assert!(lengths.iter().any(|&l| l != lengths[0]), "{lengths:?}");
    assert!(lengths.iter().all(|l| (7..=29).contains(l)), "{lengths:?}");
}

#[test]
fn basic_motions_equal_lengths() {
    let data = check_against_raw("BasicMotions_TRAIN.ts");
    assert_eq!(data.problem_name(), Some("BasicMotions"));
    assert_eq!(data.dims(), 6);
    assert!(data.lengths().all(|l| l == 100), "@seriesLength 100");
    assert_eq!(
        data.class_names(),
        ["Standing", "Running", "Walking", "Badminton"]
    );
    // Every 4th case of 4 x 10 sorted by activity.
    let expected: Vec<usize> = (0..10).map(|i| i * 4 / 10).collect();
    assert_eq!(data.classes(), expected);
}

#[test]
fn the_test_split_declares_the_training_classes() {
    let train = load("JapaneseVowels_TRAIN.ts");
    let test = check_against_raw("JapaneseVowels_TEST.ts");
    assert_eq!(test.class_names(), train.class_names());
    assert_eq!(test.dims(), train.dims());
}

fn batch_of(data: &UeaDataset) -> UeaBatch<B> {
    let items = (0..data.len()).map(|i| data.get(i).unwrap()).collect();
    UeaBatcher.batch(items, &device())
}

#[test]
fn a_batch_is_padded_with_zeros_after_each_length() {
    let data = load("JapaneseVowels_TRAIN.ts");
    let batch = batch_of(&data);
    let lengths: Vec<usize> = data.lengths().collect();
    let longest = *lengths.iter().max().unwrap();
    assert_eq!(batch.inputs.dims(), [10, longest, 12]);
    let inputs = batch.inputs.into_data().to_vec::<f32>().unwrap();
    for (i, row) in inputs.chunks_exact(longest * 12).enumerate() {
        let valid = lengths[i] * 12;
        assert_eq!(&row[..valid], data.series(i).unwrap(), "case {i}");
        assert!(row[valid..].iter().all(|&x| x == 0.0), "case {i} padding");
    }
    let batch_lengths = batch.lengths.into_data().to_vec::<i64>().unwrap();
    assert_eq!(
        batch_lengths,
        lengths.iter().map(|&l| l as i64).collect::<Vec<_>>()
    );
    let targets = batch.targets.into_data().to_vec::<i64>().unwrap();
    assert_eq!(
        targets,
        data.classes().iter().map(|&c| c as i64).collect::<Vec<_>>()
    );
}

#[test]
fn standardization_uses_valid_steps_only() {
    let mut train = load("JapaneseVowels_TRAIN.ts");
    let raw = raw_cases("JapaneseVowels_TRAIN.ts");
    let stats = Standardization::fit(&train);
    for d in 0..12 {
        let values: Vec<f64> = raw
            .iter()
            .flat_map(|case| case.dimensions[d].iter().map(|&x| f64::from(x)))
            .collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!((f64::from(stats.mean[d]) - mean).abs() < 1e-6, "dim {d}");
        assert!((f64::from(stats.std[d]) - std).abs() < 1e-6, "dim {d}");
    }
    // A padded batch's mean counts the zeros: it is not the statistic.
    let padded = batch_of(&train).inputs.mean_dim(0).mean_dim(1);
    let padded = padded.into_data().to_vec::<f32>().unwrap();
    assert!(
        (padded[0] - stats.mean[0]).abs() > 1e-3,
        "{} vs {}",
        padded[0],
        stats.mean[0]
    );

    stats.apply(&mut train);
    let refit = Standardization::fit(&train);
    for d in 0..12 {
        assert!(refit.mean[d].abs() < 1e-5, "dim {d}: {}", refit.mean[d]);
        assert!(
            (refit.std[d] - 1.0).abs() < 1e-5,
            "dim {d}: {}",
            refit.std[d]
        );
    }
    // Padding stays zero after standardization: the batcher pads later.
    let batch = batch_of(&train);
    let longest = train.lengths().max().unwrap();
    let inputs = batch.inputs.into_data().to_vec::<f32>().unwrap();
    for (row, length) in inputs.chunks_exact(longest * 12).zip(train.lengths()) {
        assert!(row[length * 12..].iter().all(|&x| x == 0.0));
    }
}

#[test]
fn standardization_applies_the_training_statistics_to_another_split() {
    let train = load("JapaneseVowels_TRAIN.ts");
    let stats = Standardization::fit(&train);
    let mut test = load("JapaneseVowels_TEST.ts");
    let before = test.clone();
    stats.apply(&mut test);
    for i in 0..test.len() {
        let (x, z) = (before.series(i).unwrap(), test.series(i).unwrap());
        for (k, (x, z)) in x.iter().zip(z).enumerate() {
            let d = k % 12;
            assert_eq!(*z, (x - stats.mean[d]) / stats.std[d]);
        }
    }
}

#[test]
fn a_constant_dimension_is_centred_not_scaled() {
    let data = UeaDataset::parse("c.ts", "@classLabel true a\n@data\n4,4:1,3:a\n4:5:a\n").unwrap();
    let stats = Standardization::fit(&data);
    assert_eq!(stats.mean, [4.0, 3.0]);
    assert_eq!(stats.std[0], 1.0);
    assert!((stats.std[1] - (8.0f32 / 3.0).sqrt()).abs() < 1e-6);
}

#[test]
#[should_panic(expected = "dataset has 6 dimensions, but the standardization was fitted on 12")]
fn standardization_of_another_problem() {
    let stats = Standardization::fit(&load("JapaneseVowels_TRAIN.ts"));
    stats.apply(&mut load("BasicMotions_TRAIN.ts"));
}

#[test]
#[should_panic(expected = "items[1] has 6 dims, but items[0] has 12")]
fn a_batch_of_two_problems() {
    let a = load("JapaneseVowels_TRAIN.ts").get(0).unwrap();
    let b = load("BasicMotions_TRAIN.ts").get(0).unwrap();
    let _: UeaBatch<B> = UeaBatcher.batch(vec![a, b], &device());
}

#[test]
#[should_panic(expected = "items is empty")]
fn an_empty_batch() {
    let _: UeaBatch<B> = UeaBatcher.batch(vec![], &device());
}

#[test]
fn comments_blank_lines_crlf_bom_and_case_of_keys_are_allowed() {
    let clean = "@problemName T\n@dimensions 2\n@classLabel true a b\n@data\n1,2:3,4:b\n5:6:a\n";
    // A byte-order mark, and `@missing true` with no `?` in the data.
    let messy = "\u{feff}# a comment\r\n\r\n@PROBLEMNAME T\r\n@timeStamps FALSE\r\n@missing true\r\n  # indented comment\r\n@Dimensions 2\r\n\
                 @classlabel TRUE a b\r\n\r\n@DATA\r\n# between cases\r\n 1, 2 : 3,4 : b \r\n\r\n5:6:a";
    let clean = UeaDataset::parse("clean.ts", clean).unwrap();
    assert_eq!(UeaDataset::parse("messy.ts", messy).unwrap(), clean);
}

#[test]
fn univariate_files_need_no_dimensions_header() {
    let text =
        "@univariate true\n@equalLength true\n@classLabel true 0 1\n@data\n1,2,3:1\n4,5,6:0\n";
    let data = UeaDataset::parse("u.ts", text).unwrap();
    assert_eq!(data.dims(), 1);
    assert_eq!(data.series(0).unwrap(), [1.0, 2.0, 3.0]);
    assert_eq!(data.classes(), [1, 0]);
}

// ------------------------------------------------------------- bad input

/// A header for the rows below: 2 dimensions, labels `a` and `b`; the data
/// start at line 5.
const HEADER: &str = "@problemName Toy\n@dimensions 2\n@classLabel true a b\n@data\n";

/// The error of parsing `text` as file `bad.ts`: asserts the message names
/// the file, line and column, and returns the problem.
fn parse_error(text: &str, line: usize, column: usize) -> TsProblem {
    let err = UeaDataset::parse("bad.ts", text).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("bad.ts:{line}:{column}: ")),
        "{message}"
    );
    match err {
        UeaError::Parse {
            line: l,
            column: c,
            problem,
            ..
        } => {
            assert_eq!((l, c), (line, column), "{message}");
            problem
        }
        other => panic!("expected UeaError::Parse, got {other:?}"),
    }
}

#[test]
fn a_missing_value() {
    let problem = parse_error(&format!("{HEADER}1,2:3,4:a\n1,?,3:4,5,6:b\n"), 6, 3);
    assert_eq!(problem, TsProblem::MissingValue);
}

#[test]
fn a_missing_value_in_a_real_file_names_the_file() {
    let path = fixture("JapaneseVowels_TRAIN.ts");
    let text = std::fs::read_to_string(&path).unwrap();
    // The third value of the second case.
    let data_line = text.lines().position(|l| l == "@data").unwrap() + 2;
    let case = text.lines().nth(data_line).unwrap();
    let second_comma = case.match_indices(',').nth(1).unwrap().0;
    let third_value = case[second_comma + 1..].split(',').next().unwrap();
    let after = second_comma + 1 + third_value.len();
    let edited = text.replacen(
        case,
        &format!("{}?{}", &case[..=second_comma], &case[after..]),
        1,
    );
    let err = UeaDataset::parse(&path, &edited).unwrap_err();
    let expected = format!(
        "{}:{}:{}: missing value",
        path.display(),
        data_line + 1,
        second_comma + 2
    );
    assert!(err.to_string().starts_with(&expected), "{err}");
}

#[test]
fn an_unknown_header() {
    let problem = parse_error("@problemName Toy\n@sampleRate 100\n", 2, 1);
    assert!(
        matches!(&problem, TsProblem::UnknownHeader { key } if key == "sampleRate"),
        "{problem:?}"
    );
    // A space after `@`: the key is empty (found by the any-text property).
    let problem = parse_error("@ \u{e9} data\n", 1, 1);
    assert_eq!(problem, TsProblem::UnknownHeader { key: "".into() });
}

#[test]
fn a_header_given_twice() {
    let problem = parse_error("@dimensions 2\n@Dimensions 2\n", 2, 1);
    assert!(
        matches!(&problem, TsProblem::DuplicateHeader { key } if key == "dimensions"),
        "{problem:?}"
    );
}

#[test]
fn a_header_value_of_the_wrong_kind() {
    let problem = parse_error("@problemName Toy\n@dimensions   zero\n", 2, 15);
    assert!(
        matches!(&problem, TsProblem::HeaderValue { key, value, .. } if key == "dimensions" && value == "zero"),
        "{problem:?}"
    );
    let problem = parse_error("@dimensions 0\n", 1, 13);
    assert!(
        matches!(problem, TsProblem::HeaderValue { .. }),
        "{problem:?}"
    );
    let problem = parse_error("@equalLength yes\n", 1, 14);
    assert!(
        matches!(
            problem,
            TsProblem::HeaderValue {
                expected: "`true` or `false`",
                ..
            }
        ),
        "{problem:?}"
    );
    let problem = parse_error("@classLabel true\n", 1, 13);
    assert!(
        matches!(problem, TsProblem::HeaderValue { .. }),
        "{problem:?}"
    );
}

#[test]
fn univariate_with_several_dimensions() {
    let problem = parse_error("@dimensions 3\n@univariate true\n", 2, 1);
    assert_eq!(
        problem,
        TsProblem::HeaderConflict {
            header: "@univariate true".into(),
            earlier: "@dimensions 3".into()
        }
    );
}

#[test]
fn unsupported_files() {
    for (text, what) in [
        ("@timeStamps true\n", "timestamped series"),
        ("@targetLabel true\n", "regression targets"),
        ("@problemName X\n@classLabel false\n", "unlabelled cases"),
    ] {
        let problem = parse_error(text, text.lines().count(), 1);
        assert!(
            matches!(problem, TsProblem::Unsupported { what: w } if w.starts_with(what)),
            "{problem:?}"
        );
    }
}

#[test]
fn a_label_declared_twice() {
    let problem = parse_error("@classLabel true a b a\n", 1, 22);
    assert_eq!(problem, TsProblem::DuplicateLabel { label: "a".into() });
}

#[test]
fn data_before_the_data_header() {
    assert_eq!(
        parse_error("@dimensions 2\n1,2:3,4:a\n", 2, 1),
        TsProblem::DataBeforeHeader
    );
}

#[test]
fn a_header_after_the_data_header() {
    let problem = parse_error(&format!("{HEADER}1:2:a\n@dimensions 2\n"), 6, 1);
    assert!(
        matches!(&problem, TsProblem::HeaderAfterData { key } if key == "dimensions"),
        "{problem:?}"
    );
}

#[test]
fn data_without_class_labels() {
    let problem = parse_error("@dimensions 2\n@data\n", 2, 1);
    assert_eq!(problem, TsProblem::MissingHeader { key: "classLabel" });
}

#[test]
fn no_data_and_no_cases() {
    assert_eq!(
        parse_error("@dimensions 2\n@classLabel true a\n", 3, 1),
        TsProblem::NoData
    );
    assert_eq!(parse_error("", 1, 1), TsProblem::NoData);
    assert_eq!(
        parse_error(&format!("{HEADER}\n# nothing\n"), 7, 1),
        TsProblem::NoCases
    );
}

#[test]
fn a_wrong_dimension_count() {
    let problem = parse_error(&format!("{HEADER}1:2:a\n1:2:3:b\n"), 6, 1);
    assert_eq!(
        problem,
        TsProblem::DimensionCount {
            expected: 2,
            found: 3,
            declared_by: "@dimensions"
        }
    );
    let text = "@classLabel true a\n@data\n1:2:a\n  1,2:a\n";
    let problem = parse_error(text, 4, 3);
    assert_eq!(
        problem,
        TsProblem::DimensionCount {
            expected: 2,
            found: 1,
            declared_by: "the first case"
        }
    );
}

#[test]
fn a_label_not_declared() {
    let problem = parse_error(&format!("{HEADER}1:2:a\n1:2: c\n"), 6, 6);
    assert_eq!(
        problem,
        TsProblem::UnknownLabel {
            label: "c".into(),
            declared: "a b".into()
        }
    );
    assert!(
        problem
            .to_string()
            .contains("not declared in @classLabel (a b)")
    );
}

#[test]
fn a_case_without_label() {
    assert_eq!(
        parse_error(&format!("{HEADER}1,2,3\n"), 5, 1),
        TsProblem::NoLabel
    );
    assert_eq!(
        parse_error(&format!("{HEADER}1:2:\n"), 5, 5),
        TsProblem::NoLabel
    );
}

#[test]
fn a_value_that_is_not_a_number() {
    let problem = parse_error(&format!("{HEADER}1,2:3,4x,5:a\n"), 5, 7);
    assert_eq!(problem, TsProblem::NotANumber { text: "4x".into() });
    let problem = parse_error(&format!("{HEADER}1,,2:3,4,5:a\n"), 5, 3);
    assert_eq!(problem, TsProblem::NotANumber { text: "".into() });
}

#[test]
fn a_value_that_is_not_finite() {
    for value in ["NaN", "inf", "-infinity", "1e39"] {
        let text = format!("{HEADER}1,{value}:3,4:a\n");
        assert_eq!(
            parse_error(&text, 5, 3),
            TsProblem::NonFinite { text: value.into() }
        );
    }
}

#[test]
fn a_series_of_length_0() {
    assert_eq!(
        parse_error(&format!("{HEADER}1,2:  :a\n"), 5, 7),
        TsProblem::EmptySeries { dimension: 2 }
    );
    assert_eq!(
        parse_error(&format!("{HEADER}:1:a\n"), 5, 1),
        TsProblem::EmptySeries { dimension: 1 }
    );
}

#[test]
fn dimensions_of_different_lengths() {
    let problem = parse_error(&format!("{HEADER}1,2,3:4,5:a\n"), 5, 7);
    assert_eq!(
        problem,
        TsProblem::UnequalDimensions {
            dimension: 2,
            expected: 3,
            found: 2
        }
    );
}

#[test]
fn a_series_of_another_length_than_the_header_says() {
    let text = "@seriesLength 3\n@classLabel true a\n@data\n1,2,3:a\n1,2:a\n";
    let problem = parse_error(text, 5, 1);
    assert_eq!(
        problem,
        TsProblem::SeriesLength {
            expected: 3,
            found: 2,
            declared_by: "@seriesLength"
        }
    );
    let text = "@equalLength true\n@classLabel true a\n@data\n1,2:a\n1,2,3:a\n";
    let problem = parse_error(text, 5, 1);
    assert!(
        matches!(
            problem,
            TsProblem::SeriesLength {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{problem:?}"
    );
    // Unequal lengths declared: @seriesLength fixes nothing.
    let text = "@equalLength false\n@seriesLength 3\n@classLabel true a\n@data\n1,2,3:a\n1,2:a\n";
    assert_eq!(
        UeaDataset::parse("ok.ts", text)
            .unwrap()
            .lengths()
            .collect::<Vec<_>>(),
        [3, 2]
    );
}

/// A unique path in the system's temporary folder.
fn temporary(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ncps-uea-{}-{name}", std::process::id()))
}

#[test]
fn a_file_that_is_not_utf8() {
    let path = temporary("latin1.ts");
    std::fs::write(&path, b"@problemName Caf\xe9\n").unwrap();
    let err = UeaDataset::from_file(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(
        matches!(
            err,
            UeaError::Parse {
                line: 1,
                column: 17,
                problem: TsProblem::NotUtf8,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("{}:1:17: ", path.display())),
        "{err}"
    );
}

#[test]
fn a_file_that_does_not_exist() {
    let path = temporary("missing.ts");
    let err = UeaDataset::from_file(&path).unwrap_err();
    assert!(
        matches!(&err, UeaError::Io { file, .. } if *file == path),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

// ------------------------------------------------------------- any text

/// Pieces of `.ts` files, multi-byte characters and odd spacing included:
/// texts made of them reach every branch of the header reader.
const PIECES: [&str; 26] = [
    "@",
    "data",
    "classLabel",
    "dimensions",
    "univariate",
    "equalLength",
    "seriesLength",
    "true",
    "false",
    " ",
    "\t",
    "\n",
    "\r\n",
    ":",
    ",",
    "#",
    "?",
    "1.5",
    "-2",
    "0",
    "3",
    "a",
    "b",
    "\u{e9}",
    "\u{feff}",
    "1e39",
];

/// Text made of [`PIECES`] in any order.
fn pieces() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES.to_vec()), 0..80).prop_map(|p| p.concat())
}

/// A header, then cases that are mostly valid (a bad value, label or
/// dimension count now and then), then a few pieces: texts that parse and
/// texts that fail late.
fn mostly_cases() -> impl Strategy<Value = String> {
    let header = prop::sample::select(vec![
        "@classLabel true a b\n@data\n",
        "@dimensions 2\n@equalLength true\n@classLabel true a b\n@data\n",
        "@univariate true\n@seriesLength 2\n@classLabel true a b\n@data\n",
    ]);
    let value = prop_oneof![
        8 => prop::sample::select(vec!["1.5", "-2", "0", "3e2", " 4 "]),
        1 => prop::sample::select(vec!["?", "x", "\u{e9}", "", "NaN"]),
    ];
    let dims = prop_oneof![6 => Just(2usize), 1 => 1usize..4];
    let label = prop_oneof![8 => prop::sample::select(vec!["a", "b", " a "]), 1 => Just("c")];
    let case =
        (dims, prop::collection::vec(value, 1..4), label).prop_map(|(dims, values, label)| {
            let dimension = values.join(",");
            format!("{}:{label}", vec![dimension; dims].join(":"))
        });
    let separator = prop::sample::select(vec!["\n", "\r\n", "\n\n", "\n# comment\n"]);
    let cases = prop::collection::vec((case, separator), 1..5);
    let tail = prop_oneof![4 => Just(String::new()), 1 => pieces()];
    (header, cases, tail).prop_map(|(header, cases, tail)| {
        let cases: String = cases.into_iter().map(|(case, sep)| case + sep).collect();
        format!("{header}{cases}{tail}")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Any text is a dataset whose parts agree, or an error located inside
    /// the text: never a panic.
    #[test]
    fn any_text_parses_or_names_a_place_in_it(text in prop_oneof![pieces(), mostly_cases()]) {
        match UeaDataset::parse("any.ts", &text) {
            Ok(data) => {
                prop_assert!(data.len() > 0 && data.dims() > 0);
                for i in 0..data.len() {
                    let item = data.get(i).unwrap();
                    prop_assert!(item.length > 0);
                    prop_assert_eq!(item.series.len(), item.length * data.dims());
                    prop_assert!(item.class < data.class_names().len());
                    prop_assert!(item.series.iter().all(|x| x.is_finite()));
                }
            }
            Err(UeaError::Parse { line, column, .. }) => {
                let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
                let lines: Vec<&str> = text.split('\n').collect();
                prop_assert!(line >= 1 && line <= lines.len(), "line {}", line);
                let chars = lines[line - 1].trim_end_matches('\r').chars().count();
                prop_assert!(column >= 1 && column <= chars + 1, "column {} of {}", column, chars);
            }
            Err(other) => prop_assert!(false, "{other}"),
        }
    }
}
