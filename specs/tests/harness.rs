//! The harness itself: scenarios that must fail, and how their failures read.

use std::time::{Duration, Instant};

use specs::scenario::parse_scenario;
use specs::{Failure, run};

const ECHO: &str = "
title: t
description: d
config:
  name: spec
  bindings:
    client:
      type: spec
      kind: client
      exit: echo_server
    echo_server:
      type: echo
      kind: server
peers:
  client:
    stream:
      - open
      - window:
          credit: 100
      - expect: begin
";

/// The echo scenario's text with more steps.
fn echo(steps: &str) -> String {
    format!("{ECHO}{steps}")
}

fn fails(text: &str) -> Failure {
    let scenario = match parse_scenario(text) {
        Ok(scenario) => scenario,
        Err(err) => return Failure::Invalid(err),
    };
    match run(scenario) {
        Ok(()) => panic!("the scenario passed:\n{text}"),
        Err(failure) => failure,
    }
}

fn step_failure(text: &str) -> specs::StepFailure {
    match fails(text) {
        Failure::Step(step) => step,
        other => panic!("expected a step failure, got {other}"),
    }
}

#[test]
fn the_base_scenario_passes() {
    let scenario = parse_scenario(&echo(
        "      - send:\n          data: hi\n      - expect:\n          data: hi\n",
    ))
    .unwrap();
    run(scenario).unwrap();
}

#[test]
fn wrong_data_names_the_step_and_both_sides() {
    let failure = step_failure(&echo(
        "      - send:\n          data: hello\n      - expect:\n          data: help!\n",
    ));
    assert_eq!(
        (failure.peer.as_str(), failure.step, failure.action.as_str()),
        ("client", 5, "expect")
    );
    assert_eq!(failure.mark.line, 23);
    assert!(
        failure.message.contains("\"help!\"") && failure.message.contains("\"hello\""),
        "{}",
        failure.message
    );
}

#[test]
fn a_frame_of_another_type_fails() {
    let failure = step_failure(&echo(
        "      - send: end\n      - expect:\n          data: x\n",
    ));
    assert!(failure.message.contains("got end"), "{}", failure.message);
}

#[test]
fn expect_nothing_fails_when_data_arrives() {
    let failure = step_failure(&echo(
        "      - send:\n          data: x\n      - expect-nothing: 300ms\n",
    ));
    assert!(
        failure.message.contains("1 data bytes arrived"),
        "{}",
        failure.message
    );
}

#[test]
fn a_step_timeout_overrides_the_default() {
    let started = Instant::now();
    let failure = step_failure(&echo("      - expect: end\n        timeout: 100ms\n"));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        failure.message.contains("nothing arrived within 100ms"),
        "{}",
        failure.message
    );
}

#[test]
fn an_unknown_action_is_reported_where_it_is_written() {
    let Failure::Invalid(err) = fails(&echo("      - expekt: end\n")) else {
        panic!("expected an invalid scenario");
    };
    let text = err.to_string();
    assert!(text.starts_with("21:9:"), "{text}");
    assert!(
        text.contains("expekt") && text.contains("expect-nothing"),
        "{text}"
    );
}

#[test]
fn a_bad_argument_is_reported_where_it_is_written() {
    let Failure::Invalid(err) = fails(&echo("      - window:\n          credit: lots\n")) else {
        panic!("expected an invalid scenario");
    };
    assert!(err.to_string().starts_with("22:19:"), "{err}");
}

#[test]
fn await_needs_a_notify() {
    let Failure::Invalid(err) = fails(&echo("      - await: NEVER\n")) else {
        panic!("expected an invalid scenario");
    };
    assert!(
        err.to_string().contains("no step notifies 'NEVER'"),
        "{err}"
    );
}

#[test]
fn only_port_placeholders_are_allowed() {
    let Failure::Invalid(err) = fails(&echo("      - send:\n          data: ${{env.HOME}}\n"))
    else {
        panic!("expected an invalid scenario");
    };
    assert!(err.to_string().contains("PORT"), "{err}");
}

#[test]
fn a_stream_peer_needs_its_spec_binding() {
    let text = echo("").replace("  client:\n    stream:", "  nobody:\n    stream:");
    let Failure::Invalid(err) = fails(&text) else {
        panic!("expected an invalid scenario");
    };
    assert!(
        err.to_string()
            .contains("add a binding 'nobody' of type spec"),
        "{err}"
    );
}

#[test]
fn ports_are_substituted_consistently() {
    let scenario = parse_scenario(&echo("      - send:\n          data: \"${{env.PORT_X}}\"\n      - expect:\n          data: \"${{env.PORT_X}}\"\n")).unwrap();
    assert_eq!(scenario.ports.len(), 1);
    run(scenario).unwrap();
}
