//! Times `analyze_dir` on a local repository: `cargo run --release -p slipway-analyzer
//! --example analyze_bench -- <path> [runs]`. Prints one line: median, p90, min, max in ms.

use std::path::PathBuf;
use std::time::Instant;

use slipway_analyzer::{analyze_dir, AnalyzeOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(500);
    let options = AnalyzeOptions::default();
    // One warm-up run, and the plan's outcome for the record.
    let outcome = match analyze_dir(&path, &options) {
        Ok(p) => format!(
            "{} / {}",
            p.language.as_deref().unwrap_or("-"),
            p.start
                .as_deref()
                .or(p.static_dir.as_deref())
                .unwrap_or("-")
        ),
        Err(e) => format!("error: {e}"),
    };
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            let _ = std::hint::black_box(analyze_dir(&path, &options));
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{}\truns={}\tmedian={:.3}ms\tp90={:.3}ms\tmin={:.3}ms\tmax={:.3}ms\t{}",
        path.display(),
        times.len(),
        at(0.5),
        at(0.9),
        at(0.0),
        at(1.0),
        outcome
    );
}
