//! `zilla validate` rejects each class of configuration error with exit code 2 and a message
//! that names the file, line and column, the binding, what is wrong and the fix.

use e2e_tests::zilla;

/// Validates `tests/configs/invalid/NAME.yaml` and checks the message.
fn rejects(name: &str, position: &str, binding: Option<&str>, needles: &[&str]) {
    let file = format!("tests/configs/invalid/{name}.yaml");
    let output = zilla::run(&["validate", "-c", &file]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "exit code for {file}: {stderr}"
    );
    let expected_start = format!("error: {file}:{position}: ");
    assert!(
        stderr.starts_with(&expected_start),
        "expected {expected_start:?} at the start of: {stderr}"
    );
    if let Some(binding) = binding {
        let named = format!("binding '{binding}': ");
        assert!(stderr.contains(&named), "expected {named:?} in: {stderr}");
    }
    for needle in needles {
        assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    }
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout for an invalid config"
    );
}

#[test]
fn unknown_type() {
    let needles = ["unknown type 'tpc' (allowed: echo, ", "did you mean 'tcp'?"];
    rejects("unknown_type", "4:11", Some("north_tcp_server"), &needles);
}

#[test]
fn unknown_kind() {
    let needles = [
        "type 'tcp' has no kind 'proxy'",
        "use kind: server or client",
    ];
    rejects("unknown_kind", "5:11", Some("north_tcp_server"), &needles);
}

#[test]
fn unknown_option() {
    let needles = [
        "unknown option 'prot' (allowed: host, port)",
        "did you mean 'port'?",
    ];
    rejects("unknown_option", "8:7", Some("north_tcp_server"), &needles);
}

#[test]
fn wrong_value_type() {
    let needles = ["expected a string, found a sequence"];
    rejects(
        "wrong_value_type",
        "8:9",
        Some("north_tcp_server"),
        &needles,
    );
}

#[test]
fn port_out_of_range() {
    let needles = ["'70000'", "a port from 1 to 65535", "write a range as"];
    rejects(
        "port_out_of_range",
        "9:11",
        Some("north_tcp_server"),
        &needles,
    );
}

#[test]
fn exit_names_no_binding() {
    let needles = [
        "exit 'north_echo_sever' is not a binding",
        "did you mean 'north_echo_server'?",
    ];
    rejects("exit_missing", "8:11", Some("north_tcp_server"), &needles);
}

#[test]
fn route_loop() {
    let needles = [
        "route loop: north_tcp_server → east_tcp_server → north_tcp_server",
        "an exit must lead away",
    ];
    rejects("route_loop", "15:9", Some("east_tcp_server"), &needles);
}

#[test]
fn server_with_nowhere_to_go() {
    let needles = [
        "a tcp server has nowhere to go",
        "add 'exit: <binding name>'",
    ];
    rejects("nowhere_to_go", "3:3", Some("north_tcp_server"), &needles);
}

#[test]
fn exit_on_an_end_point() {
    let needles = ["takes no exit (found 'north_tcp_server')", "remove 'exit'"];
    rejects("exit_forbidden", "12:11", Some("north_echo"), &needles);
}

#[test]
fn missing_environment_variable() {
    let needles = ["environment variable ZILLA_TEST_UNSET_PORT is not set"];
    rejects("env_missing", "7:13", Some("north_tcp_server"), &needles);
}

#[test]
fn undefined_vault() {
    let needles = ["vault 'my_servers' is not defined", "no vaults are defined"];
    rejects(
        "undefined_vault",
        "6:12",
        Some("north_tcp_server"),
        &needles,
    );
}

#[test]
fn jwt_guard_with_a_private_key() {
    let needles = [
        "guard 'authn_jwt': inline keys: key signing: is a private key (it has \"d\")",
        "give the issuer's public JWK",
    ];
    rejects("jwt_private_key", "8:11", None, &needles);
}

#[test]
fn route_guarded_by_an_undefined_guard() {
    let needles = ["guard 'authn_jwt' is not defined", "defined guards: authn"];
    rejects(
        "guarded_by_undefined",
        "22:9",
        Some("north_sse_server"),
        &needles,
    );
}

#[test]
fn route_guarded_by_a_guard_that_verifies_nothing() {
    let needles = [
        "guard 'authn' verifies no credentials",
        "guard the route with a guard of type jwt",
    ];
    rejects(
        "guarded_by_inline",
        "22:9",
        Some("north_sse_server"),
        &needles,
    );
}

#[test]
fn yaml_syntax() {
    rejects("yaml_syntax", "7:9", None, &["invalid YAML"]);
}

#[test]
fn duplicate_key() {
    let needles = ["duplicate key 'exit' (first defined at line 8, column 5)"];
    rejects("duplicate_key", "9:5", None, &needles);
}

#[test]
fn unknown_top_level_key() {
    let needles = ["unknown key 'bindngs'", "did you mean 'bindings'?"];
    rejects("unknown_top_level_key", "2:1", None, &needles);
}

#[test]
fn missing_file() {
    let output = zilla::run(&["validate", "-c", "tests/configs/invalid/no_such_file.yaml"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no_such_file.yaml: cannot read"),
        "{stderr}"
    );
    assert!(
        stderr.contains("pass the configuration with -c FILE"),
        "{stderr}"
    );
}

#[test]
fn start_refuses_an_invalid_config_and_starts_nothing() {
    let output = zilla::run(&["start", "-c", "tests/configs/invalid/route_loop.yaml"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("listening"), "nothing may start: {stderr}");
    assert!(!stderr.contains(" started"), "nothing may start: {stderr}");
}

#[test]
fn valid_examples_validate() {
    let files = [
        "zilla.yaml",
        "examples/tcp.echo/zilla.yaml",
        "examples/sse.kafka.fanout/zilla.yaml",
        "examples/http.metrics/zilla.yaml",
    ];
    for file in files {
        // The variables the examples document (the keystore is not opened by validate).
        let output = std::process::Command::new(zilla::binary())
            .args(["validate", "-c", file])
            .current_dir(e2e_tests::repo_root())
            .env("KEYSTORE_PASSWORD", "any")
            .env("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
            .output()
            .expect("cannot run zilla");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{file}: {stderr}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("is valid"), "{file}: {stdout}");
    }
}

#[test]
fn sse_requests_unsupported() {
    let needles = [
        "sse options.requests (event validation with models) is not supported yet",
        "remove 'requests'",
    ];
    rejects(
        "sse_requests_unsupported",
        "8:9",
        Some("north_sse_server"),
        &needles,
    );
}

#[test]
fn sse_route_capture() {
    let needles = ["sse route paths take '*' wildcards, not '{name}' captures"];
    rejects(
        "sse_route_capture",
        "8:19",
        Some("north_sse_server"),
        &needles,
    );
}

#[test]
fn http_override_of_a_hop_by_hop_header() {
    let needles = [
        "'connection' is connection-specific and cannot be overridden",
        "remove it",
    ];
    rejects(
        "http_override_hop_by_hop",
        "8:9",
        Some("north_http_server"),
        &needles,
    );
}

#[test]
fn http_override_naming_no_path_parameter() {
    let needles = [
        "'${params.item}' in with.headers.overrides names no parameter of the route's :path",
        "or use one of: id",
    ];
    rejects(
        "http_override_param",
        "14:22",
        Some("north_http_server"),
        &needles,
    );
}

#[test]
fn kafka_client_with_nowhere_to_bootstrap() {
    let needles = [
        "a kafka client needs options.servers, or an exit tcp client with options.host and port",
        "add options: {servers: [localhost:9092]}",
    ];
    rejects(
        "kafka_client_no_bootstrap",
        "3:3",
        Some("south_kafka_client"),
        &needles,
    );
}

#[test]
fn kafka_bootstrap_topic_no_route_takes() {
    let needles = [
        "bootstrap topic 'events' matches no route",
        "add a route whose when.topic matches it, or a top-level 'exit'",
    ];
    rejects(
        "kafka_bootstrap_unrouted",
        "7:18",
        Some("south_kafka_cache_server"),
        &needles,
    );
}

#[test]
fn entry_outside_remote_kinds() {
    let needles = [
        "'entry' is only for kinds remote_client and remote_server, not a tcp server",
        "remove 'entry'",
    ];
    rejects(
        "entry_on_tcp_server",
        "9:12",
        Some("north_tcp_server"),
        &needles,
    );
}

#[test]
fn exit_in_another_namespace() {
    let needles = [
        "exit 'echoes:north_echo' names binding 'north_echo' of namespace 'echoes', and zilla-rs loads one namespace, this configuration's ('example')",
        "move 'north_echo' into this file and write exit: north_echo",
    ];
    rejects(
        "exit_other_namespace",
        "9:11",
        Some("north_tcp_server"),
        &needles,
    );
}

/// Validates `tests/configs/invalid/NAME.yaml` and returns its one-line error.
fn error_of(name: &str) -> String {
    let file = format!("tests/configs/invalid/{name}.yaml");
    let output = zilla::run(&["validate", "-c", &file]);
    assert_eq!(output.status.code(), Some(2), "exit code for {file}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn asyncapi_documents_are_checked_at_start_where_they_are_wrong() {
    // An error inside a document points into the document, and names the binding, the
    // catalog and the subject it came from.
    let unknown = error_of("asyncapi_unknown_ref");
    assert!(
        unknown.starts_with("error: tests/configs/invalid/asyncapi/unknown-ref.yaml:9:13: binding 'north_sse_server': catalog 'docs' subject 'sse': operation 'receiveEvents': unknown $ref '#/channels/event'"),
        "{unknown}"
    );
    let no_channel = error_of("asyncapi_no_channel");
    assert!(
        no_channel.starts_with("error: tests/configs/invalid/asyncapi/no-channel.yaml:4:5: binding 'north_sse_server': ")
            && no_channel.contains("operation 'receiveEvents' has no 'channel'"),
        "{no_channel}"
    );
    // A document that cannot be read: the subject's line in the configuration.
    let missing = error_of("asyncapi_missing");
    assert!(
        missing.starts_with("error: tests/configs/invalid/asyncapi_missing.yaml:8:11: catalog 'docs' subject 'sse': cannot read ")
            && missing.contains("asyncapi/missing.yaml")
            && missing.contains("relative to the configuration file's directory"),
        "{missing}"
    );
    let protocol = error_of("asyncapi_protocol");
    assert!(
        protocol.starts_with("error: tests/configs/invalid/asyncapi_protocol.yaml:23:19: binding 'north_sse_server': ")
            && protocol.contains("server 'ws://localhost:7114' is ws, this binding serves http:// only"),
        "{protocol}"
    );
}

#[test]
fn unknown_metric() {
    let needles = [
        "unknown metric 'http.durations'",
        "did you mean 'http.duration'?",
    ];
    rejects("unknown_metric", "5:7", None, &needles);
}

#[test]
fn binding_metric_not_in_telemetry_metrics() {
    let needles = [
        "metric 'stream.closes.received' is not in telemetry.metrics",
        "add to telemetry.metrics: stream.closes.received",
    ];
    rejects(
        "metric_not_enabled",
        "15:11",
        Some("north_tcp_server"),
        &needles,
    );
}

#[test]
fn unknown_attribute_source() {
    let needles = [
        "unknown source '${http.request.methods}'",
        "did you mean '${http.request.method}'?",
    ];
    rejects(
        "unknown_attribute_source",
        "17:17",
        Some("north_tcp_server"),
        &needles,
    );
}

#[test]
fn http_client_unknown_version() {
    let needles = ["http/2", "http/1.1", "h2"];
    rejects(
        "http_client_version",
        "12:11",
        Some("south_http_client"),
        &needles,
    );
}

#[test]
fn sse_client_event_size_too_small() {
    let needles = ["invalid value 100", "at least 1024"];
    rejects(
        "sse_client_event_size",
        "7:23",
        Some("south_sse_client"),
        &needles,
    );
}
