use super::*;

const SSE: &str = "\
asyncapi: 3.0.0
info: {title: Events, version: 1.0.0}
servers:
  plain:
    host: localhost:7114
    protocol: http
channels:
  events:
    address: /events/{id}
    messages:
      event: {$ref: '#/components/messages/event'}
operations:
  receiveEvents:
    action: receive
    channel: {$ref: '#/channels/events'}
    bindings:
      x-zilla-sse: {method: get}
      x-zilla-sse-kafka:
        filters:
          - key: ${params.id}
            headers: {tag: blue}
components:
  messages:
    event: {payload: {type: object}}
";

#[test]
fn reads_servers_channels_and_sse_operations() {
    let doc = parse(SSE).unwrap();
    assert_eq!(doc.version, "3.0.0");
    assert_eq!(doc.servers[0].host, "localhost:7114");
    assert_eq!(doc.servers[0].protocol, "http");
    let operation = doc.operation("receiveEvents").unwrap();
    assert_eq!(operation.action, Action::Receive);
    assert_eq!(doc.channel(operation).address, "/events/{id}");
    assert_eq!(doc.channel(operation).parameters, ["id"]);
    assert_eq!(operation.sse.as_ref().unwrap().method, "GET");
    assert_eq!(
        operation.filters,
        [Filter {
            key: Some("${params.id}".into()),
            headers: vec![("tag".into(), "blue".into())],
        }]
    );
}

#[test]
fn a_channel_without_address_is_its_name_and_refs_are_followed() {
    let doc = parse(
        "asyncapi: 3.0.0\n\
         channels:\n  events: {$ref: '#/components/channels/ev'}\n\
         operations:\n  receiveEvents: {action: receive, channel: {$ref: '#/channels/events'}}\n\
         components:\n  channels:\n    ev: {$ref: '#/components/channels/plain'}\n    plain: {description: none}\n",
    )
    .unwrap();
    assert_eq!(doc.channels[0].address, "events");
    assert!(doc.operations[0].sse.is_none());
}

fn error_of(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn bad_documents_are_refused_where_they_are_wrong() {
    let unknown = error_of(
        "asyncapi: 3.0.0\nchannels: {events: {}}\noperations:\n  op:\n    action: receive\n    channel: {$ref: '#/channels/event'}\n",
    );
    assert!(unknown.starts_with("6:21:"), "{unknown}");
    assert!(
        unknown.contains("unknown $ref '#/channels/event'"),
        "{unknown}"
    );

    let no_channel = error_of("asyncapi: 3.0.0\noperations:\n  op: {action: send}\n");
    assert!(
        no_channel.contains("operation 'op' has no 'channel'"),
        "{no_channel}"
    );

    let old = error_of("asyncapi: 2.6.0\n");
    assert!(
        old.starts_with("1:11:") && old.contains("AsyncAPI 2.6.0 is not supported"),
        "{old}"
    );

    let action = error_of(
        "asyncapi: 3.0.0\nchannels: {c: {}}\noperations:\n  op: {action: publish, channel: {$ref: '#/channels/c'}}\n",
    );
    assert!(action.contains("action 'publish' is neither"), "{action}");

    let outside = error_of("asyncapi: 3.0.0\nchannels: {c: {$ref: 'other.yaml#/channels/c'}}\n");
    assert!(
        outside.contains("only '#/...' within this document"),
        "{outside}"
    );

    let looped = error_of("asyncapi: 3.0.0\nchannels: {c: {$ref: '#/channels/c'}}\n");
    assert!(looped.contains("$ref chain too long"), "{looped}");

    assert!(error_of("info: {}\n").contains("no 'asyncapi' version"));
    assert!(error_of("asyncapi: [3]\n").contains("'asyncapi' must be a string"));
}

#[test]
fn parameters_of_addresses() {
    assert_eq!(parameters("/a/{x}/b/{y}"), ["x", "y"]);
    assert_eq!(parameters("events"), Vec::<String>::new());
    assert_eq!(parameters("/broken/{x"), Vec::<String>::new());
}
