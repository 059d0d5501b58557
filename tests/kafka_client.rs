//! `zilla validate` on kafka client configurations: Zilla's own shape is accepted, an
//! unsupported SASL mechanism is rejected with its position and the fix.

use e2e_tests::zilla;

#[test]
fn a_kafka_client_behind_a_tcp_client_validates() {
    let output = zilla::run(&["validate", "-c", "tests/configs/kafka.client.yaml"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn an_unsupported_sasl_mechanism_is_rejected() {
    let file = "tests/configs/invalid/kafka_sasl_mechanism.yaml";
    let output = zilla::run(&["validate", "-c", file]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: {file}:9:20: ")),
        "{stderr}"
    );
    assert!(stderr.contains("binding 'south_kafka_client'"), "{stderr}");
    assert!(stderr.contains("'gssapi'"), "{stderr}");
    assert!(stderr.contains("scram-sha-256"), "{stderr}");
}
