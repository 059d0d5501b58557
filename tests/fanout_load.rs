//! Many subscribers on two workers, one topic, records at a steady rate: every subscriber
//! receives every record once and in order. The cache's upstream runs on one worker and
//! wakes subscribers on both; a wake lost on the way (as the per-worker relay once lost
//! them under load) shows here as events never delivered.
//!
//! The subscribers and the producer are `zilla-loadgen` (HTTP/1.1 SSE clients that check
//! each key's sequence, and the Kafka producer of the benchmarks).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use e2e_tests::kafka;
use e2e_tests::zilla::Zilla;

/// `zilla-loadgen`, built once per test process.
fn loadgen() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "loadgen",
                "--bin",
                "zilla-loadgen",
            ])
            .current_dir(e2e_tests::repo_root())
            .status()
            .expect("cannot run cargo to build zilla-loadgen");
        assert!(status.success(), "building zilla-loadgen failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| e2e_tests::repo_root().join("target"));
        target.join("debug").join("zilla-loadgen")
    })
}

/// A figure of the loadgen's JSON report.
fn figure(report: &str, name: &str) -> u64 {
    let key = format!("\"{name}\":");
    let at = report
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {report}"));
    report[at + key.len()..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in {report}"))
}

#[test]
fn every_subscriber_on_either_worker_gets_every_record_once_in_order() {
    let topic = kafka::unique_topic("fanout-load");
    kafka::create_topic(&topic, 1, &[]);
    let port = e2e_tests::free_port();
    let env = [
        ("KAFKA_BOOTSTRAP", kafka::bootstrap().to_owned()),
        ("BENCH_TOPIC", topic.clone()),
        ("BENCH_PORT", port.to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _zilla = Zilla::start_with_args(Path::new("bench/zilla.yaml"), &["-w", "2"], &env);

    let json = std::env::temp_dir().join(format!("zilla-fanout-load-{}.json", std::process::id()));
    let output = Command::new(loadgen())
        .args(["fanout", "--url"])
        .arg(format!("http://127.0.0.1:{port}/events?start=live"))
        .args([
            "-n",
            "200",
            "--rate",
            "1000",
            "--size",
            "64",
            "--duration",
            "3",
        ])
        .args(["--warmup", "2", "--drain", "20"])
        .arg("--produce")
        .arg(format!("kafka://{}/{topic}", kafka::bootstrap()))
        .arg("--json")
        .arg(&json)
        .output()
        .expect("cannot run zilla-loadgen");
    assert!(
        output.status.success(),
        "zilla-loadgen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = std::fs::read_to_string(&json).expect("the loadgen's report");
    let _ = std::fs::remove_file(&json);
    let expected = figure(&report, "expected");
    assert!(expected >= 200 * 2000, "too few records produced: {report}");
    assert_eq!(figure(&report, "lost"), 0, "events lost: {report}");
    assert_eq!(
        figure(&report, "duplicated"),
        0,
        "events repeated: {report}"
    );
    assert_eq!(figure(&report, "delivered"), expected, "{report}");
}
