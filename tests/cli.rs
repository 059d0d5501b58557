//! The `zilla` command line: version, help, and worker count.

use std::path::Path;
use std::time::Duration;

use e2e_tests::zilla::{self, Zilla};

#[test]
fn version() {
    let output = zilla::run(&["--version"]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.trim(),
        format!("zilla {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_the_commands() {
    let output = zilla::run(&["--help"]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for needle in ["start", "validate", "metrics", "--version"] {
        assert!(stdout.contains(needle), "{needle:?} in {stdout}");
    }
    let output = zilla::run(&["start", "--help"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for needle in ["--config", "--workers", "zilla.yaml", "--resolve"] {
        assert!(stdout.contains(needle), "{needle:?} in {stdout}");
    }
}

#[test]
fn unknown_command_is_a_usage_error() {
    let output = zilla::run(&["launch"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn workers_flag_sets_the_worker_count() {
    let config = std::env::temp_dir().join(format!("zilla-workers-{}.yaml", std::process::id()));
    let text = std::fs::read_to_string(e2e_tests::repo_root().join("examples/tcp.echo/zilla.yaml"))
        .expect("example")
        .replace("port: 12345", "port: 12398");
    std::fs::write(&config, text).expect("write config");
    let mut zilla = Zilla::start_with_args(Path::new(&config), &["-w", "3"], &[]);
    let ready = zilla.wait_for_line("workers=", Duration::from_secs(1));
    let _ = std::fs::remove_file(&config);
    assert!(ready.contains("workers=3"), "{ready}");
    let (status, _) = zilla.terminate();
    assert_eq!(status.code(), Some(0));
}
