#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

fn at(line: u32, column: u32) -> Mark {
    Mark { line, column }
}

fn text(node: &Node) -> (&str, bool) {
    match &node.value {
        Value::Scalar(s) => (&s.text, s.plain),
        other => panic!("not a scalar: {other:?}"),
    }
}

#[test]
fn builds_tree_with_positions() {
    let root = parse("a: 1\nb:\n  c: d\n  e: [1, \"2\"]\n").unwrap();
    assert_eq!(root.mark, at(1, 1));
    let map = root.as_map().unwrap();
    assert_eq!(text(&map[0].0), ("a", true));
    assert_eq!((text(&map[0].1), map[0].1.mark), (("1", true), at(1, 4)));
    let b = &map[1].1;
    assert_eq!(b.mark, at(3, 3));
    let e = b.get("e").unwrap();
    assert_eq!(e.mark, at(4, 6));
    let items = e.as_seq().unwrap();
    assert_eq!((text(&items[0]), items[0].mark), (("1", true), at(4, 7)));
    assert_eq!((text(&items[1]), items[1].mark), (("2", false), at(4, 10)));
    let (key, value) = b.get_entry("c").unwrap();
    assert_eq!((key.mark, value.mark), (at(3, 3), at(3, 6)));
}

#[test]
fn keeps_map_order() {
    let root = parse("z: 1\na: 2\nm: 3\n").unwrap();
    let keys: Vec<_> = root
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, ["z", "a", "m"]);
}

#[test]
fn nulls_and_styles() {
    let root = parse("a:\nb: ~\nc: null\nd: 'null'\ne: !!str 5\nf: |\n  lit\n").unwrap();
    let map = root.as_map().unwrap();
    assert!(map[0].1.is_null() && map[1].1.is_null() && map[2].1.is_null());
    assert_eq!(map[0].1.value, Value::Null);
    assert_eq!(text(&map[3].1), ("null", false));
    assert_eq!(text(&map[4].1), ("5", false));
    assert_eq!(text(&map[5].1), ("lit\n", false));
    assert_eq!(map[5].1.mark, at(7, 3));
}

#[test]
fn empty_document_is_null() {
    for input in ["", "\n", "# just a comment\n", "---\n", "--- ~\n"] {
        let root = parse(input).unwrap();
        assert!(root.is_null(), "{input:?}");
    }
}

#[test]
fn syntax_errors_have_the_parser_position() {
    let err = parse("a: [1, 2\n").unwrap_err();
    assert_eq!(err.mark, Some(at(2, 1)));
    assert!(
        matches!(&err.kind, ConfigErrorKind::Syntax(m) if m.contains("flow sequence")),
        "{err}"
    );
    let err = parse("name: x\nbindings:\n  tcp: b: c\n").unwrap_err();
    assert_eq!(err.mark, Some(at(3, 9)));
    assert_eq!(
        err.to_string(),
        "3:9: invalid YAML: mapping values are not allowed in this context"
    );
    let err = parse("a: *nowhere\n").unwrap_err();
    assert_eq!(err.mark, Some(at(1, 4)));
}

#[test]
fn duplicate_key_at_second_occurrence() {
    let err = parse("name: x\nbindings:\n  tcp0: {}\n  echo: {}\n  tcp0: {}\n").unwrap_err();
    assert_eq!(err.mark, Some(at(5, 3)));
    assert_eq!(
        err.kind,
        ConfigErrorKind::DuplicateKey {
            key: "tcp0".into(),
            first: at(3, 3)
        }
    );
    assert_eq!(
        err.to_string(),
        "5:3: duplicate key 'tcp0' (first defined at line 3, column 3)"
    );
    // Quoted and plain strings are the same key; a quoted "1" and a plain 1 are not.
    assert!(parse("a: 1\n\"a\": 2\n").is_err());
    assert!(parse("1: a\n\"1\": b\n").is_ok());
    assert!(parse("? [a, b]\n: 1\n? [a, b]\n: 2\n").is_err());
    assert!(parse("? [a, b]\n: 1\n? [a, c]\n: 2\n").is_ok());
}

#[test]
fn multiple_documents_are_an_error() {
    let err = parse("name: a\n---\nname: b\n").unwrap_err();
    assert_eq!(err.kind, ConfigErrorKind::MultipleDocuments);
    assert_eq!(err.mark, Some(at(2, 1)));
}

#[test]
fn aliases_are_expanded_at_the_alias_position() {
    let root = parse("base: &b {x: 1, y: [2]}\nuse: *b\nscalar: &s hello\nagain: *s\n").unwrap();
    let base = root.get("base").unwrap();
    let used = root.get("use").unwrap();
    assert_eq!(used.value, base.value);
    assert_eq!(used.mark, at(2, 6));
    assert_eq!(text(root.get("again").unwrap()), ("hello", true));
}

#[test]
fn alias_bomb_is_too_large() {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (i, name) in ["b", "c", "d", "e", "f", "g", "h", "i"].iter().enumerate() {
        let prev = if i == 0 {
            "a"
        } else {
            ["b", "c", "d", "e", "f", "g", "h"][i - 1]
        };
        bomb.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    let err = parse(&bomb).unwrap_err();
    assert_eq!(err.kind, ConfigErrorKind::TooLarge { limit: 100_000 });
    // Level e (10^5 nodes) overflows on line 5: a single alias of level d costs 11 111 nodes.
    assert_eq!(err.mark.map(|m| m.line), Some(5));
    assert!(err.to_string().contains("aliases"), "{err}");
}

#[test]
fn anchored_copies_count_towards_the_limit() {
    let mut nested = String::new();
    for depth in 0..60 {
        nested.push_str(&format!("&a{depth} ["));
    }
    nested.push_str(&"x, ".repeat(2000));
    nested.push_str(&"]".repeat(60));
    let err = parse(&nested).unwrap_err();
    assert_eq!(err.kind, ConfigErrorKind::TooLarge { limit: 100_000 });
}

#[test]
fn nesting_is_limited() {
    let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
    assert!(parse(&ok).is_ok());
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    let err = parse(&deep).unwrap_err();
    assert_eq!(err.kind, ConfigErrorKind::TooDeep { limit: 64 });
    assert_eq!(err.mark, Some(at(1, 65)));

    let mut block = String::new();
    for depth in 0..70 {
        block.push_str(&" ".repeat(depth));
        block.push_str("k:\n");
    }
    let err = parse(&block).unwrap_err();
    assert_eq!(err.kind, ConfigErrorKind::TooDeep { limit: 64 });
    assert_eq!(err.mark, Some(at(65, 65)));

    // saphyr-parser itself stops at 255 flow levels, before any event.
    let err = parse(&"[".repeat(100_000)).unwrap_err();
    assert!(matches!(
        err.kind,
        ConfigErrorKind::Syntax(_) | ConfigErrorKind::TooDeep { .. }
    ));
}

#[test]
fn aliases_count_towards_depth() {
    let nested = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let input = format!(
        "a: &deep {nested}\nb: {}*deep{}\n",
        "[".repeat(30),
        "]".repeat(30)
    );
    let err = parse_with_limits(
        &input,
        Limits {
            max_depth: 64,
            max_nodes: 1000,
        },
    )
    .unwrap_err();
    assert_eq!(err.kind, ConfigErrorKind::TooDeep { limit: 64 });
    assert_eq!(err.mark, Some(at(2, 34)));
}

#[test]
fn plain_scalars_follow_the_core_schema() {
    let cases: &[(&str, Plain)] = &[
        ("", Plain::Null),
        ("~", Plain::Null),
        ("NULL", Plain::Null),
        ("true", Plain::Bool(true)),
        ("False", Plain::Bool(false)),
        ("yes", Plain::Str),
        ("7114", Plain::Int(7114)),
        ("-42", Plain::Int(-42)),
        ("+7", Plain::Int(7)),
        ("0x1F", Plain::Int(31)),
        ("0o17", Plain::Int(15)),
        ("0x", Plain::Str),
        ("1.5", Plain::Float(1.5)),
        ("-.5", Plain::Float(-0.5)),
        ("1e3", Plain::Float(1000.0)),
        ("1.", Plain::Float(1.0)),
        (".inf", Plain::Float(f64::INFINITY)),
        ("-.Inf", Plain::Float(f64::NEG_INFINITY)),
        ("1e", Plain::Str),
        ("1.2.3", Plain::Str),
        ("7114-7120", Plain::Str),
        ("0.0.0.0", Plain::Str),
        ("99999999999999999999999999999999999999999", Plain::Str),
        ("-", Plain::Str),
        (".", Plain::Str),
    ];
    for (text, expected) in cases {
        assert_eq!(resolve_plain(text), *expected, "{text:?}");
    }
    assert!(matches!(resolve_plain(".nan"), Plain::Float(f) if f.is_nan()));
}

#[test]
fn describe_nodes() {
    let root = parse("- 1\n- '1'\n- x\n- true\n- 1.5\n- ~\n- []\n- {}\n").unwrap();
    let described: Vec<_> = root.as_seq().unwrap().iter().map(Node::describe).collect();
    assert_eq!(
        described,
        [
            "the integer 1",
            "the string \"1\"",
            "the string \"x\"",
            "the boolean true",
            "the number 1.5",
            "null (an empty value)",
            "a sequence",
            "a mapping",
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics(input in ".{0,200}") {
        let _ = parse(&input);
    }

    #[test]
    fn parse_never_panics_on_yamlish(input in "[\\[\\]{}:,?&*!|>'\"#%@ \\n\\t\\-ab0-9.~$]{0,300}") {
        if let Ok(mut root) = parse(&input) {
            let _ = super::super::expr::substitute(&mut root, &|_: &str, _: &str| super::super::Resolution::Unset);
        }
    }
}
