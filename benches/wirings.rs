//! Time to construct, build, serialize and draw wirings.
//!
//! `cargo bench --bench wirings` prints `<name> <median ms> ms` per line
//! (median of at least 5 runs and 1 second, after 2 warm-up runs).

use std::hint::black_box;
use std::time::{Duration, Instant};

use ncps::wirings::{AnyWiring, AutoNCP, Draw, DrawOptions, FullyConnected, Layout, Wiring};

fn median_ms(mut f: impl FnMut()) -> f64 {
    for _ in 0..2 {
        f();
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5 || start.elapsed() < Duration::from_secs(1) {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn built_ncp(units: usize, outputs: usize, inputs: usize) -> AutoNCP {
    let mut wiring = AutoNCP::new(units, outputs).unwrap();
    wiring.build(inputs).unwrap();
    wiring
}

/// A named workload.
type Case = (&'static str, Box<dyn FnMut()>);

fn main() {
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    let cases: Vec<Case> = vec![
        (
            "autoncp_build_64",
            Box::new(|| drop(black_box(built_ncp(64, 8, 32)))),
        ),
        (
            "autoncp_build_1024",
            Box::new(|| drop(black_box(built_ncp(1024, 64, 256)))),
        ),
        (
            "fully_connected_build_256",
            Box::new(|| {
                let mut w = FullyConnected::new(256, 8).unwrap();
                w.build(64).unwrap();
                black_box(w);
            }),
        ),
        (
            "json_round_trip_256",
            Box::new({
                let wiring = AnyWiring::from(built_ncp(256, 16, 64));
                move || drop(black_box(AnyWiring::from_json(&wiring.to_json()).unwrap()))
            }),
        ),
        (
            "draw_shell_64",
            Box::new({
                let wiring = built_ncp(64, 8, 32);
                move || {
                    drop(black_box(
                        wiring.draw_graph(&DrawOptions::default()).unwrap(),
                    ))
                }
            }),
        ),
        (
            "draw_kamada_kawai_64",
            Box::new({
                let wiring = built_ncp(64, 8, 32);
                let options = DrawOptions::default().with_layout(Layout::KamadaKawai);
                move || drop(black_box(wiring.draw_graph(&options).unwrap()))
            }),
        ),
    ];
    for (name, mut run) in cases {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        println!("{name} {:.3} ms", median_ms(&mut run));
    }
}
