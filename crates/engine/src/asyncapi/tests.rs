use zilla_config::ConfigError;

use super::*;
use crate::model;

const SSE: &str = "
          asyncapi: 3.0.0
          servers: {a: {host: 'localhost:7114', protocol: http}, b: {host: 'localhost:7115', protocol: http}}
          channels:
            all: {address: /orders}
            one: {address: '/orders/{id}'}
          operations:
            receiveAll: {action: receive, channel: {$ref: '#/channels/all'}, bindings: {x-zilla-sse: {}}}
            receiveOne:
              action: receive
              channel: {$ref: '#/channels/one'}
              bindings:
                x-zilla-sse: {method: GET}
                x-zilla-sse-kafka: {filters: [{key: '${params.id}', headers: {kind: update}}]}
            sendNothing: {action: send, channel: {$ref: '#/channels/all'}}";

const KAFKA: &str = "
          asyncapi: 3.0.0
          servers: {k: {host: 'broker:9092', protocol: kafka}}
          channels:
            orders: {address: orders}
            perOrder: {address: 'orders-{id}'}
          operations:
            receiveAll: {action: receive, channel: {$ref: '#/channels/orders'}}
            receiveOne: {action: receive, channel: {$ref: '#/channels/orders'}}
            receivePerOrder: {action: receive, channel: {$ref: '#/channels/perOrder'}}";

/// Expands `bindings` (YAML) with the two documents above as catalog `docs`.
fn expand_with(bindings: &str) -> Result<Expansion, ConfigError> {
    let catalogs = format!(
        "docs:\n  type: inline\n  options:\n    subjects:\n      sse:\n        schema: |\n{}\n      kafka:\n        schema: |\n{}\n",
        SSE.trim_start_matches('\n'),
        KAFKA.trim_start_matches('\n'),
    );
    let catalogs = zilla_config::parse(&catalogs)?;
    let named = model::named(Some(&catalogs), "catalog")?;
    let catalogs = Catalogs::read(&named, Some(&catalogs), std::path::Path::new("."))?;
    let bindings = zilla_config::parse(bindings)?;
    Ok(expand(&bindings, &catalogs)?.expect("asyncapi bindings were expanded"))
}

fn spec(label: &str, subject: &str) -> String {
    format!("{label}: {{catalog: {{docs: {{subject: {subject}}}}}}}")
}

#[test]
fn a_server_listens_on_every_http_server_and_routes_each_sse_path() {
    let expansion = expand_with(&format!(
        "api: {{type: asyncapi, kind: server, exit: proxy, options: {{specs: {{{}}}}}}}\n",
        spec("sse_api", "sse")
    ))
    .unwrap();
    let tcp = expansion.bindings.get("api").unwrap();
    let ports: Vec<&str> = tcp
        .get("options")
        .unwrap()
        .get("port")
        .unwrap()
        .as_seq()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(ports, ["7114", "7115"]);
    let http = expansion.bindings.get("api.http").unwrap();
    let paths: Vec<&str> = http
        .get("routes")
        .unwrap()
        .as_seq()
        .unwrap()
        .iter()
        .map(|r| {
            r.get("when").unwrap().as_seq().unwrap()[0]
                .get("headers")
                .unwrap()
                .get(":path")
                .unwrap()
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        paths,
        ["/orders", "/orders/*"],
        "send operations are not served"
    );
    assert_eq!(
        expansion.generated,
        [
            "api: tcp server → api.http",
            "api.http: http server → api.sse",
            "api.sse: sse server → proxy"
        ]
    );
}

#[test]
fn a_proxy_maps_sse_operations_to_kafka_operations_by_name_or_as_told() {
    let expansion = expand_with(&format!(
        "proxy:\n  type: asyncapi\n  kind: proxy\n  options: {{specs: {{{}, {}}}}}\n  routes:\n    - {{when: [{{spec: sse_api}}], with: {{spec: kafka_api}}, exit: client}}\n    - {{when: [{{spec: sse_api, operation: receiveOne}}], with: {{spec: kafka_api, operation: receivePerOrder}}, exit: client}}\n",
        spec("sse_api", "sse"),
        spec("kafka_api", "kafka")
    ))
    .unwrap();
    let routes = expansion
        .bindings
        .get("proxy")
        .unwrap()
        .get("routes")
        .unwrap()
        .as_seq()
        .unwrap()
        .to_vec();
    let summary: Vec<(String, String)> = routes
        .iter()
        .map(|r| {
            let path = r.get("when").unwrap().as_seq().unwrap()[0]
                .get("path")
                .unwrap()
                .as_str()
                .unwrap();
            let topic = r
                .get("with")
                .unwrap()
                .get("topic")
                .unwrap()
                .as_str()
                .unwrap();
            (path.to_owned(), topic.to_owned())
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("/orders".to_owned(), "orders".to_owned()),
            ("/orders/{id}".to_owned(), "orders".to_owned()),
            ("/orders/{id}".to_owned(), "orders-${params.id}".to_owned()),
        ]
    );
    let filter = &routes[1]
        .get("with")
        .unwrap()
        .get("filters")
        .unwrap()
        .as_seq()
        .unwrap()[0];
    assert_eq!(filter.get("key").unwrap().as_str(), Some("${params.id}"));
    assert_eq!(
        filter.get("headers").unwrap().get("kind").unwrap().as_str(),
        Some("update")
    );
}

#[test]
fn a_client_bootstraps_from_the_documents_kafka_servers() {
    let expansion = expand_with(&format!(
        "client: {{type: asyncapi, kind: client, options: {{specs: {{{}}}}}}}\n",
        spec("kafka_api", "kafka")
    ))
    .unwrap();
    let kafka = expansion.bindings.get("client.kafka").unwrap();
    let servers = kafka
        .get("options")
        .unwrap()
        .get("servers")
        .unwrap()
        .as_seq()
        .unwrap();
    assert_eq!(servers[0].as_str(), Some("broker:9092"));
    assert_eq!(expansion.generated.len(), 4);
}

#[test]
fn what_cannot_be_built_is_refused_with_its_reason() {
    let error = |bindings: String| expand_with(&bindings).err().expect("refused").to_string();
    let unmapped = error(format!(
        "proxy:\n  type: asyncapi\n  kind: proxy\n  options: {{specs: {{{}, {}}}}}\n  routes:\n    - {{when: [{{spec: sse_api}}], with: {{spec: kafka_api, operation: nothing}}, exit: client}}\n",
        spec("sse_api", "sse"),
        spec("kafka_api", "kafka")
    ));
    assert!(
        unmapped.contains("maps to a Kafka receive operation of spec 'kafka_api'"),
        "{unmapped}"
    );
    let unknown_spec = error(format!(
        "proxy:\n  type: asyncapi\n  kind: proxy\n  options: {{specs: {{{}}}}}\n  routes:\n    - {{when: [{{spec: sse_api}}], with: {{spec: kafka}}, exit: client}}\n",
        spec("sse_api", "sse")
    ));
    assert!(
        unknown_spec.contains("spec 'kafka' is not in options.specs"),
        "{unknown_spec}"
    );
    let no_exit = error(format!(
        "api: {{type: asyncapi, kind: server, options: {{specs: {{{}}}}}}}\n",
        spec("sse_api", "sse")
    ));
    assert!(no_exit.contains("needs an exit"), "{no_exit}");
    let no_subject = error("api: {type: asyncapi, kind: client, options: {specs: {k: {catalog: {docs: {subject: nope}}}}}}\n".into());
    assert!(
        no_subject.contains("catalog 'docs' has no subject 'nope' (subjects: kafka, sse)"),
        "{no_subject}"
    );
    let kind = error(format!(
        "api: {{type: asyncapi, kind: remote_server, options: {{specs: {{{}}}}}}}\n",
        spec("k", "kafka")
    ));
    assert!(
        kind.contains("kind 'remote_server' is not one of asyncapi's kinds"),
        "{kind}"
    );
}
