//! A jwt guard's JWKS file reloaded while zilla runs: the real binary with
//! `tests/configs/sse.ticker.jwks.yaml` (a guarded sse route in front of the ticker, the
//! guard's keys in a JWKS file this test writes), curl, and tokens signed here with ring.
//! An issuer's key rotation takes effect without a restart, and a broken file keeps the keys
//! in use; a guard rebuilt by a configuration reload keeps following its file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use e2e_tests::jwt::Issuer;
use e2e_tests::sse::curl;
use e2e_tests::zilla::Zilla;
use serde_json::{Value, json};

const CONFIG: &str = "tests/configs/sse.ticker.jwks.yaml";

/// How long a change may take to be seen: the engine polls every 2 s.
const RELOAD_WITHIN: Duration = Duration::from_secs(10);

/// Replaces `path` as a key-management tool would: a new file renamed over the old one.
fn write_jwks(path: &Path, text: &str) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, text).expect("write the JWKS file");
    std::fs::rename(&fresh, path).expect("rename the JWKS file into place");
}

fn jwks(issuers: &[&Issuer]) -> String {
    let keys: Vec<Value> = issuers.iter().map(|issuer| issuer.jwk()).collect();
    json!({"keys": keys}).to_string()
}

/// The status line and the first tick, if any, of a request with `token`.
fn answer(port: u16, token: &str) -> String {
    let url = format!("http://127.0.0.1:{port}/ticks");
    let bearer = format!("authorization: Bearer {token}");
    curl(&url, &["-D", "-", "-H", &bearer], 2)
}

fn status(answer: &str) -> &str {
    answer.lines().next().unwrap_or("(no answer)")
}

/// Waits until zilla has logged a line holding `needle` `count` times.
fn wait_for_count(zilla: &Zilla, needle: &str, count: usize) -> String {
    let deadline = Instant::now() + RELOAD_WITHIN;
    loop {
        let lines: Vec<String> = zilla
            .log()
            .into_iter()
            .filter(|line| line.contains(needle))
            .collect();
        if lines.len() >= count {
            return lines[count - 1].clone();
        }
        assert!(
            Instant::now() < deadline,
            "zilla did not log {needle:?} {count} times within {RELOAD_WITHIN:?}; log:\n{}",
            zilla.log().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A directory of its own under the system's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zilla-jwks-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// Starts zilla with `config` and the guard's keys in `jwks_file`.
fn start(config: &Path, jwks_file: &Path) -> (Zilla, u16) {
    let port = e2e_tests::free_port();
    let env = [
        ("PORT", port.to_string()),
        ("JWKS_FILE", jwks_file.display().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    (Zilla::start(config, &env), port)
}

#[test]
fn a_changed_jwks_file_takes_effect_without_a_restart_and_a_broken_one_keeps_the_keys() {
    let dir = temp_dir("reload");
    let file = dir.join("jwks.json");
    let old = Issuer::with_kid("old");
    let new = Issuer::with_kid("new");
    write_jwks(&file, &jwks(&[&old]));
    let (zilla, port) = start(Path::new(CONFIG), &file);

    // Before the change: the old key's tokens stream, the new key's are refused.
    let by_old = answer(port, &old.token("alice", "proxy:stream", 300));
    assert!(status(&by_old).starts_with("HTTP/1.1 200"), "{by_old}");
    assert!(by_old.contains("data:{\"n\":"), "ticks arrive: {by_old}");
    let by_new = answer(port, &new.token("alice", "proxy:stream", 300));
    assert!(status(&by_new).starts_with("HTTP/1.1 401"), "{by_new}");
    assert!(
        by_new.contains("error=\"invalid_token\""),
        "the new key is unknown yet: {by_new}"
    );

    // The issuer publishes its new key: within a poll, the new key's tokens stream.
    write_jwks(&file, &jwks(&[&old, &new]));
    let reloaded = wait_for_count(&zilla, "verifies with its new keys", 1);
    assert!(
        reloaded.contains("authn_jwt") && reloaded.contains(&file.display().to_string()),
        "the log names the guard and the file: {reloaded}"
    );
    let by_new = answer(port, &new.token("alice", "proxy:stream", 300));
    assert!(status(&by_new).starts_with("HTTP/1.1 200"), "{by_new}");
    assert!(by_new.contains("data:{\"n\":"), "ticks arrive: {by_new}");

    // A broken file: logged with the file and the reason, the keys in use kept.
    write_jwks(&file, "{\"keys\": [");
    let failed = wait_for_count(&zilla, "keeps the keys in use", 1);
    assert!(
        failed.contains(&file.display().to_string()) && failed.contains("WARN"),
        "a warning naming the file: {failed}"
    );
    let by_new = answer(port, &new.token("alice", "proxy:stream", 300));
    assert!(status(&by_new).starts_with("HTTP/1.1 200"), "{by_new}");

    // The old key retired: its tokens are refused from then on.
    write_jwks(&file, &jwks(&[&new]));
    wait_for_count(&zilla, "verifies with its new keys", 2);
    let by_old = answer(port, &old.token("alice", "proxy:stream", 300));
    assert!(status(&by_old).starts_with("HTTP/1.1 401"), "{by_old}");
    let by_new = answer(port, &new.token("alice", "proxy:stream", 300));
    assert!(status(&by_new).starts_with("HTTP/1.1 200"), "{by_new}");

    drop(zilla);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_guard_rebuilt_by_a_configuration_reload_still_follows_its_jwks_file() {
    let dir = temp_dir("config");
    let file = dir.join("jwks.json");
    let config = dir.join("zilla.yaml");
    let old = Issuer::with_kid("old");
    let new = Issuer::with_kid("new");
    write_jwks(&file, &jwks(&[&old]));
    let text = std::fs::read_to_string(e2e_tests::repo_root().join(CONFIG)).expect("the config");
    write_jwks(&config, &text);
    let (zilla, port) = start(&config, &file);
    let by_old = answer(port, &old.token("alice", "proxy:stream", 300));
    assert!(status(&by_old).starts_with("HTTP/1.1 200"), "{by_old}");

    // The guard's options change: the http and sse servers are rebuilt with a new guard.
    write_jwks(
        &config,
        &text.replace("roles: scope", "roles: scope\n      challenge: 60"),
    );
    wait_for_count(&zilla, "configuration reloaded", 1);
    let by_old = answer(port, &old.token("alice", "proxy:stream", 300));
    assert!(status(&by_old).starts_with("HTTP/1.1 200"), "{by_old}");

    // The new guard reloads the file when it changes.
    write_jwks(&file, &jwks(&[&new]));
    wait_for_count(&zilla, "verifies with its new keys", 1);
    let by_new = answer(port, &new.token("alice", "proxy:stream", 300));
    assert!(status(&by_new).starts_with("HTTP/1.1 200"), "{by_new}");
    let by_old = answer(port, &old.token("alice", "proxy:stream", 300));
    assert!(status(&by_old).starts_with("HTTP/1.1 401"), "{by_old}");

    drop(zilla);
    let _ = std::fs::remove_dir_all(&dir);
}
