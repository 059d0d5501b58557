#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::Deserialize;

use super::super::{Mark, Spanned, env_resolver_from};
use super::*;

fn at(line: u32, column: u32) -> Option<Mark> {
    Some(Mark { line, column })
}

fn load<'de, T: Deserialize<'de>>(root: &'de Node) -> Result<T, ConfigError> {
    from_node(root)
}

/// The engine's view: binding options stay raw until the binding parses them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Zilla {
    name: String,
    #[serde(default)]
    bindings: BTreeMap<String, Binding>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Binding {
    #[serde(rename = "type")]
    type_: String,
    kind: Kind,
    options: Option<Node>,
    #[allow(dead_code)]
    exit: Option<String>,
    #[serde(default)]
    routes: Vec<Route>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Client,
    Server,
    Proxy,
    CacheClient,
    CacheServer,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Route {
    exit: Option<String>,
    #[serde(default)]
    when: Vec<Node>,
    with: Option<Node>,
}

/// A binding's options, as the tcp binding would write them.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TcpOptions {
    host: Option<String>,
    port: Option<Ports>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
enum Ports {
    One(Port),
    Many(Vec<Port>),
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
enum Port {
    Number(u16),
    Range(String),
}

const PIPELINE: &str = r#"name: example
bindings:
  north_tcp_server:
    type: tcp
    kind: server
    options:
      host: 0.0.0.0
      port: [7114, "8000-8010"]
    routes:
      - when:
          - port: 7114
        exit: north_sse_server
  north_sse_server: {type: sse, kind: server, exit: south_kafka_client}
  south_kafka_client:
    type: kafka
    kind: client
    options: {servers: ["${{env.KAFKA_BOOTSTRAP_SERVER}}"]}
"#;

#[test]
fn engine_model_keeps_options_raw() {
    let env =
        env_resolver_from(|n| Ok((n == "KAFKA_BOOTSTRAP_SERVER").then(|| "kafka:9092".to_owned())));
    let mut root = parse(PIPELINE).unwrap();
    substitute(&mut root, &env).unwrap();
    let zilla: Zilla = load(&root).unwrap();
    assert_eq!(zilla.name, "example");
    let tcp = &zilla.bindings["north_tcp_server"];
    assert_eq!((tcp.type_.as_str(), &tcp.kind), ("tcp", &Kind::Server));
    assert_eq!(tcp.routes[0].exit.as_deref(), Some("north_sse_server"));
    assert!(tcp.routes[0].with.is_none());
    assert_eq!(
        tcp.routes[0].when[0].get("port").unwrap().mark,
        Mark {
            line: 11,
            column: 19
        }
    );

    // The raw subtree is a faithful copy, positions included.
    let options = tcp.options.as_ref().unwrap();
    assert_eq!(
        options,
        root.get("bindings")
            .unwrap()
            .get("north_tcp_server")
            .unwrap()
            .get("options")
            .unwrap()
    );
    assert_eq!(options.mark, Mark { line: 7, column: 7 });
    let tcp_options: TcpOptions =
        from_node_at(options, "bindings.north_tcp_server.options").unwrap();
    assert_eq!(
        tcp_options,
        TcpOptions {
            host: Some("0.0.0.0".into()),
            port: Some(Ports::Many(vec![
                Port::Number(7114),
                Port::Range("8000-8010".into())
            ])),
        }
    );
    let kafka = zilla.bindings["south_kafka_client"]
        .options
        .as_ref()
        .unwrap();
    assert_eq!(
        kafka.get("servers").unwrap().as_seq().unwrap()[0].as_str(),
        Some("kafka:9092")
    );
    assert!(zilla.bindings["north_sse_server"].options.is_none());
}

#[test]
fn unknown_field_points_at_the_key() {
    let root = parse("host: 0.0.0.0\nprot: 7114\n").unwrap();
    let err = from_node_at::<TcpOptions>(&root, "bindings.north_tcp_server.options")
        .unwrap_err()
        .with_binding("north_tcp_server")
        .with_file("zilla.yaml");
    assert_eq!(err.mark, at(2, 1));
    assert_eq!(
        err.path.as_deref(),
        Some("bindings.north_tcp_server.options.prot")
    );
    assert_eq!(
        err.to_string(),
        "zilla.yaml:2:1: binding 'north_tcp_server': unknown option 'prot' (allowed: host, port); did you mean 'port'?"
    );
}

#[test]
fn binding_is_detected_from_the_root() {
    #[derive(Debug, Deserialize)]
    struct Typed {
        #[allow(dead_code)]
        bindings: BTreeMap<String, TypedBinding>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TypedBinding {
        #[allow(dead_code)]
        options: TcpOptions,
    }
    let root = parse("bindings:\n  tcp0:\n    options:\n      port: [7114, [1]]\n").unwrap();
    let err = load::<Typed>(&root).unwrap_err();
    assert_eq!(err.binding.as_deref(), Some("tcp0"));
    assert_eq!(err.path.as_deref(), Some("bindings.tcp0.options.port"));
    assert_eq!(err.mark, at(4, 13));
    assert_eq!(
        err.to_string(),
        "4:13: binding 'tcp0': expected a valid Ports, found a sequence"
    );
}

#[test]
fn wrong_type_points_at_the_value() {
    #[derive(Debug, Deserialize)]
    struct Strict {
        #[allow(dead_code)]
        port: u16,
    }
    let root = parse("a: 1\nlist:\n  - port:\n      - 1\n").unwrap();
    let err = from_node_at::<Strict>(&root.get("list").unwrap().as_seq().unwrap()[0], "list[0]")
        .unwrap_err();
    assert_eq!(err.mark, at(4, 7));
    assert_eq!(err.path.as_deref(), Some("list[0].port"));
    assert_eq!(
        err.to_string(),
        "4:7: expected an integer between 0 and 65535, found a sequence"
    );

    let root = parse("port: \"7114\"\n").unwrap();
    let err = load::<Strict>(&root).unwrap_err();
    assert_eq!(err.mark, at(1, 7));
    assert_eq!(
        err.to_string(),
        "1:7: expected an integer between 0 and 65535, found the string \"7114\"; remove the quotes: a quoted value is a string"
    );

    let root = parse("port: 70000\n").unwrap();
    let err = load::<Strict>(&root).unwrap_err();
    assert_eq!(
        err.to_string(),
        "1:7: invalid value 70000, expected an integer between 0 and 65535"
    );
}

#[test]
fn missing_field_points_at_the_mapping() {
    let root = parse("name: x\nbindings:\n  tcp0:\n    type: tcp\n    exit: echo\n").unwrap();
    let err = load::<Zilla>(&root).unwrap_err();
    assert_eq!(
        err.kind,
        ConfigErrorKind::MissingField {
            field: "kind".into()
        }
    );
    assert_eq!(err.mark, at(4, 5));
    assert_eq!(err.binding.as_deref(), Some("tcp0"));
    assert_eq!(
        err.to_string(),
        "4:5: binding 'tcp0': missing required key 'kind'"
    );
}

#[test]
fn unknown_variant_points_at_the_value() {
    let root = parse("name: x\nbindings:\n  tcp0:\n    type: tcp\n    kind: serv\n").unwrap();
    let err = load::<Zilla>(&root).unwrap_err();
    assert_eq!(err.mark, at(5, 11));
    assert_eq!(err.path.as_deref(), Some("bindings.tcp0.kind"));
    assert_eq!(
        err.to_string(),
        "5:11: binding 'tcp0': unknown kind 'serv' (allowed: client, server, proxy, cache_client, cache_server); \
         did you mean 'server'?"
    );
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
enum Mode {
    Off,
    Fixed(u32),
    Window { size: u32, step: Option<u32> },
    Pair(u8, u8),
}

#[test]
fn enums_unit_newtype_struct_tuple() {
    let root = parse("- off\n- fixed: 3\n- window: {size: 2}\n- pair: [1, 2]\n").unwrap();
    let modes: Vec<Mode> = load(&root).unwrap();
    assert_eq!(
        modes,
        [
            Mode::Off,
            Mode::Fixed(3),
            Mode::Window {
                size: 2,
                step: None
            },
            Mode::Pair(1, 2)
        ]
    );

    let root = parse("- off\n- fixd: 3\n").unwrap();
    let err = load::<Vec<Mode>>(&root).unwrap_err();
    assert_eq!(err.mark, at(2, 3));
    assert_eq!(err.help.as_deref(), Some("did you mean 'fixed'?"));

    let err = load::<Vec<Mode>>(&parse("- window: {size: 2, stp: 1}\n").unwrap()).unwrap_err();
    assert_eq!(err.mark, at(1, 21));
    assert_eq!(err.path.as_deref(), Some("[0].window.stp"));

    let err = load::<Mode>(&parse("fixed\n").unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "1:1: expected a mapping 'fixed: ...', found the string \"fixed\""
    );
    let err = load::<Mode>(&parse("{off: ~, fixed: 1}\n").unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "1:1: expected one of: off, fixed, window, pair, found a mapping with 2 keys"
    );
    let err = load::<Mode>(&parse("pair: [1, 2, 3]\n").unwrap()).unwrap_err();
    assert_eq!(err.mark, at(1, 7));
    assert!(
        matches!(err.kind, ConfigErrorKind::InvalidLength { len: 3, .. }),
        "{err}"
    );
}

#[test]
fn scalars_are_typed_by_style() {
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(untagged)]
    enum Any {
        Null(()),
        Bool(bool),
        Int(i64),
        Big(u64),
        Float(f64),
        Str(String),
        List(Vec<Any>),
    }
    let root = parse("[~, true, -7, 18446744073709551615, 1.5, abc, \"7\", '', [1]]").unwrap();
    let values: Vec<Any> = load(&root).unwrap();
    assert_eq!(
        values,
        [
            Any::Null(()),
            Any::Bool(true),
            Any::Int(-7),
            Any::Big(u64::MAX),
            Any::Float(1.5),
            Any::Str("abc".into()),
            Any::Str("7".into()),
            Any::Str(String::new()),
            Any::List(vec![Any::Int(1)]),
        ]
    );
    // A string target takes any scalar's text; floats take integers.
    let strings: Vec<String> = load(&parse("[7114, true, 1.50, x]").unwrap()).unwrap();
    assert_eq!(strings, ["7114", "true", "1.50", "x"]);
    let floats: Vec<f64> = load(&parse("[1, 2.5, -.inf]").unwrap()).unwrap();
    assert_eq!(floats, [1.0, 2.5, f64::NEG_INFINITY]);
    let err = load::<String>(&parse("a: ~").unwrap().get("a").unwrap().clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "1:4: expected a string, found null (an empty value)"
    );
    let err = load::<bool>(&parse("'true'").unwrap()).unwrap_err();
    assert_eq!(
        err.help.as_deref(),
        Some("remove the quotes: a quoted value is a string")
    );
}

#[test]
fn options_are_none_when_null() {
    #[derive(Debug, Deserialize, PartialEq)]
    struct Opt {
        a: Option<u32>,
        b: Option<u32>,
        c: Option<u32>,
        d: Option<u32>,
    }
    let value: Opt = load(&parse("a:\nb: ~\nc: 3\n").unwrap()).unwrap();
    assert_eq!(
        value,
        Opt {
            a: None,
            b: None,
            c: Some(3),
            d: None
        }
    );
}

#[test]
fn spanned_values_keep_their_position() {
    #[derive(Debug, Deserialize)]
    struct Options {
        port: Spanned<u32>,
        hosts: Vec<Spanned<String>>,
        maybe: Option<Spanned<Kind>>,
    }
    let root = parse("port: 70000\nhosts:\n  - a\n  - 'b'\nmaybe: proxy\n").unwrap();
    let options: Options = load(&root).unwrap();
    assert_eq!(
        (options.port.value, options.port.mark),
        (70000, Mark { line: 1, column: 7 })
    );
    assert_eq!(options.hosts[1].mark, Mark { line: 4, column: 5 });
    assert_eq!(*options.hosts[1], "b");
    assert_eq!(
        options.maybe.as_ref().map(|k| k.mark),
        Some(Mark { line: 5, column: 8 })
    );
    let err = options.port.error(ConfigErrorKind::InvalidValue {
        found: "70000".into(),
        expected: "a port between 0 and 65535".into(),
    });
    assert_eq!(
        err.with_binding("tcp0").to_string(),
        "1:7: binding 'tcp0': invalid value 70000, expected a port between 0 and 65535"
    );

    // Errors inside a Spanned still point at the value.
    let err = load::<Options>(&parse("port: x\nhosts: []\n").unwrap()).unwrap_err();
    assert_eq!(err.mark, at(1, 7));
}

#[test]
fn flatten_and_untagged_work() {
    #[derive(Debug, Deserialize)]
    struct WithExtra {
        name: String,
        #[serde(flatten)]
        extra: BTreeMap<String, Node>,
    }
    let root = parse("name: x\nother: [1, 'two']\n").unwrap();
    let value: WithExtra = load(&root).unwrap();
    assert_eq!(value.name, "x");
    let other = &value.extra["other"];
    // Buffered by serde: values survive, positions do not.
    assert_eq!(other.as_seq().unwrap()[1].as_str(), Some("two"));
    assert_eq!(other.as_seq().unwrap()[0].describe(), "the integer 1");
    assert!(!other.mark.is_known());

    let err = load::<TcpOptions>(&parse("port:\n  a: 1\n").unwrap()).unwrap_err();
    assert_eq!(err.mark, at(2, 3));
    assert_eq!(
        err.to_string(),
        "2:3: expected a valid Ports, found a mapping"
    );
}

#[test]
fn node_field_is_a_full_copy() {
    #[derive(Debug, Deserialize)]
    struct Holder {
        raw: Node,
        list: Vec<Node>,
    }
    let root = parse("raw: {a: [1, \"2\", ~], ? [k] : v}\nlist: [x]\n").unwrap();
    let holder: Holder = load(&root).unwrap();
    assert_eq!(&holder.raw, root.get("raw").unwrap());
    assert_eq!(holder.list[0].mark, Mark { line: 2, column: 8 });
}

#[test]
fn from_str_substitutes_then_types() {
    #[derive(Debug, Deserialize)]
    struct Server {
        port: u16,
    }
    let env = env_resolver_from(|n| Ok((n == "PORT").then(|| "7114".to_owned())));
    let server: Server = from_str("port: ${{ env.PORT }}\n", &env).unwrap();
    assert_eq!(server.port, 7114);
    let err = from_str::<Server>("port: \"${{ env.PORT }}\"\n", &env).unwrap_err();
    assert!(
        matches!(err.kind, ConfigErrorKind::InvalidType { .. }),
        "{err}"
    );
    let err = from_str::<Server>("port: ${{ env.MISSING }}\n", &env).unwrap_err();
    assert_eq!(
        err.kind,
        ConfigErrorKind::UnresolvedVariable {
            resolver: "env".into(),
            name: "MISSING".into()
        }
    );
}

#[test]
fn path_is_rendered_with_indices() {
    let root = parse("bindings:\n  tcp0:\n    options:\n      port: [1, x, [2]]\n").unwrap();
    #[derive(Debug, Deserialize)]
    struct P {
        #[allow(dead_code)]
        port: Vec<u16>,
    }
    let options = root
        .get("bindings")
        .unwrap()
        .get("tcp0")
        .unwrap()
        .get("options")
        .unwrap();
    let err = from_node_at::<P>(options, "bindings.tcp0.options").unwrap_err();
    assert_eq!(err.path.as_deref(), Some("bindings.tcp0.options.port[1]"));
    assert_eq!(err.mark, at(4, 17));
    assert_eq!(err.binding, None);
}

#[test]
fn deepest_documents_deserialize_without_overflow() {
    #[derive(Debug, Deserialize)]
    #[serde(untagged)]
    enum Tree {
        #[allow(dead_code)]
        Leaf(u16),
        #[allow(dead_code)]
        List(Vec<Tree>),
        #[allow(dead_code)]
        Map(BTreeMap<String, Spanned<Tree>>),
    }
    let mut text = String::new();
    for _ in 0..32 {
        text.push_str("{a: [");
    }
    text.push('1');
    for _ in 0..32 {
        text.push_str("]}");
    }
    let root = parse(&text).unwrap();
    // Test threads have small stacks: depth 64 must fit with room to spare.
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            load::<Tree>(&root).unwrap();
            load::<Node>(&root).unwrap();
            load::<BTreeMap<String, Node>>(&root).unwrap();
        })
        .unwrap()
        .join()
        .unwrap();
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Fuzzed {
    name: Option<String>,
    port: Option<Ports>,
    mode: Option<Vec<Mode>>,
    spanned: Option<Spanned<Vec<Spanned<String>>>>,
    raw: Option<Node>,
    map: Option<BTreeMap<String, Option<f64>>>,
    pair: Option<(bool, i8)>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn from_node_never_panics(input in "[\\[\\]{}:,\\- \\nab0-9.~'\"]{0,120}") {
        let prefixes = ["", "name: ", "port: ", "mode: ", "spanned: ", "raw: ", "map: ", "pair: "];
        for prefix in prefixes {
            if let Ok(root) = parse(&format!("{prefix}{input}")) {
                let _ = from_node::<Fuzzed>(&root);
                let _ = from_node::<Node>(&root);
                let _ = from_node::<Vec<Mode>>(&root);
            }
        }
    }
}
