//! Reading UEA/UCR `.ts` files (`ncps::datasets::uea`): for each `*.ts`
//! file of a folder, its cases, dimensions, classes and lengths, and the
//! median time of `UeaDataset::from_file` (read and parse; at least 5 runs
//! and 1 second, after 1 warm-up run).
//!
//! ```sh
//! cargo bench --bench uea                     # the fixtures, tests/fixtures/uea
//! cargo bench --bench uea -- /path/to/uea     # e.g. the archive's full files
//! ```

mod common;

use std::hint::black_box;
use std::path::PathBuf;

use burn::data::dataset::Dataset;
use ncps::datasets::uea::UeaDataset;

fn main() {
    // `cargo bench` passes `--bench`; the folder is the first other argument.
    let folder = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map_or_else(|| PathBuf::from("tests/fixtures/uea"), PathBuf::from);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "ts"))
        .collect();
    files.sort();
    println!(
        "{:<28} {:>6} {:>5} {:>8} {:>10} {:>9}",
        "file", "cases", "dims", "classes", "length", "parse ms"
    );
    for path in files {
        let data = UeaDataset::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let (ms, _) = common::median_ms(
            || {
                black_box(UeaDataset::from_file(&path).expect("parsed once already"));
            },
            1.0,
        );
        let (min, max) = (data.lengths().min(), data.lengths().max());
        let lengths = match (min, max) {
            (Some(min), Some(max)) if min == max => format!("{min}"),
            (Some(min), Some(max)) => format!("{min}-{max}"),
            _ => unreachable!("a dataset has at least one case"),
        };
        println!(
            "{:<28} {:>6} {:>5} {:>8} {:>10} {:>9.3}",
            path.file_name().expect("a file").to_string_lossy(),
            data.len(),
            data.dims(),
            data.class_names().len(),
            lengths,
            ms
        );
    }
}
