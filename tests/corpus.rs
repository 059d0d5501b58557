//! The compatibility corpus (issue 13): `tests/configs/zilla/` holds Zilla-style
//! configurations written for this project, one per documented option of each binding we
//! implement (Zilla's schema is the reference), and each must pass `zilla validate`.

use std::path::PathBuf;

use e2e_tests::zilla;

/// Every file of the corpus, sorted.
fn corpus() -> Vec<PathBuf> {
    let dir = e2e_tests::repo_root().join("tests/configs/zilla");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_configuration_of_the_corpus_validates() {
    let files = corpus();
    assert!(!files.is_empty(), "the corpus is empty");
    let failures: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let output = std::process::Command::new(zilla::binary())
                .args(["validate", "-c"])
                .arg(file)
                .current_dir(e2e_tests::repo_root())
                .env("KEYSTORE_PASSWORD", "any")
                .env("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
                .output()
                .expect("cannot run zilla");
            let stdout = String::from_utf8_lossy(&output.stdout);
            (!output.status.success() || !stdout.contains("is valid")).then(|| {
                format!(
                    "{}: {}",
                    file.display(),
                    String::from_utf8_lossy(&output.stderr).trim()
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
