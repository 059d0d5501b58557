//! Runs every scenario under `specs/*/*.yaml`, each as its own case: prints `PASS` or `FAIL`
//! per file and fails at the end, listing every failure.
//!
//! `SPECS_FILTER=tcp/` runs only the files whose path (relative to `specs/`) contains the
//! filter; `RUST_LOG=debug` shows the engine's logs.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    // Run from the workspace root so that reported paths read `specs/tcp/....yaml`.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(workspace) = manifest.parent() {
        let _ = std::env::set_current_dir(workspace);
    }
    let root = Path::new("specs");
    let filter = std::env::var("SPECS_FILTER").unwrap_or_default();
    let files = match specs::discover(root) {
        Ok(files) => files,
        Err(err) => {
            eprintln!("cannot list {}: {err}", root.display());
            return ExitCode::FAILURE;
        }
    };
    let selected: Vec<_> = files
        .iter()
        .filter(|f| {
            let relative = f.strip_prefix(root).unwrap_or(f);
            relative.to_string_lossy().contains(filter.as_str())
        })
        .collect();
    if selected.is_empty() {
        eprintln!("no scenario matches SPECS_FILTER='{filter}'");
        return ExitCode::FAILURE;
    }
    println!("\nrunning {} conformance scenarios", selected.len());
    let started = Instant::now();
    let mut failures = Vec::new();
    for file in selected.iter().copied() {
        let outcome = specs::run_file(file);
        let line = outcome.report();
        println!("{line}");
        if !outcome.passed() {
            failures.push(line);
        }
    }
    println!(
        "\n{} passed, {} failed in {:.1} s",
        selected.len() - failures.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("\nfailures:");
        for failure in &failures {
            println!("  {failure}");
        }
        ExitCode::FAILURE
    }
}
