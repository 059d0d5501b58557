//! A scenario file, parsed: its texts, its engine configuration and its peers' scripts.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::time::Duration;

use serde::Deserialize;
use zilla_config::{
    ConfigError, ConfigErrorKind, Mark, Node, Resolution, from_node, parse, substitute,
};

use crate::step::{NetworkAction, Step, StreamAction, network_steps, stream_steps};
use crate::tokens::Tokens;
use crate::value::Dur;

/// How long a step may take unless the scenario or the step says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed scenario.
#[derive(Debug)]
pub struct Scenario {
    /// One line: the behaviour.
    pub title: String,
    /// What the behaviour is and why it matters.
    pub description: String,
    /// Default step timeout.
    pub timeout: Duration,
    /// The engine configuration (a `zilla.yaml` document), placeholders substituted.
    pub config: Node,
    /// The peers, in file order.
    pub peers: Vec<Peer>,
    /// The ports given to `${{ env.PORT... }}` placeholders, by name.
    pub ports: BTreeMap<String, u16>,
}

/// A scripted peer.
#[derive(Debug)]
pub struct Peer {
    /// Its name: for a stream peer, the name of the `type: spec` binding it plays.
    pub name: String,
    /// Where it is written.
    pub mark: Mark,
    /// Its script.
    pub script: Script,
}

/// A peer's kind and steps.
#[derive(Debug)]
pub enum Script {
    /// Speaks frames through a `type: spec` binding.
    Stream(Vec<Step<StreamAction>>),
    /// Speaks TCP to the binding under test.
    Network(Vec<Step<NetworkAction>>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    title: String,
    description: String,
    timeout: Option<Dur>,
    config: Node,
    peers: Node,
    /// Read before the placeholders are substituted ([`Tokens`]).
    #[serde(rename = "tokens")]
    _tokens: Option<Node>,
}

/// Parses a scenario's text. Every `${{ env.NAME }}` whose name starts with `PORT` becomes a
/// free TCP port on 127.0.0.1 (the same port for every use of the name); other names are
/// errors, so that scenarios do not depend on the environment. `${{ token.NAME }}` gives a
/// token of the scenario's `tokens` ([`Tokens`]).
pub fn parse_scenario(text: &str) -> Result<Scenario, ConfigError> {
    let mut root = parse(text)?;
    let tokens = match root.as_map().and_then(|entries| {
        entries
            .iter()
            .find(|(key, _)| key.as_str() == Some("tokens"))
    }) {
        Some((_, node)) => Tokens::sign(node)?,
        None => Tokens::default(),
    };
    let ports = RefCell::new(PortPool::default());
    let resolver = |resolver: &str, name: &str| {
        if resolver == "token" {
            return tokens.resolve(name);
        }
        if resolver != "env" {
            return Resolution::UnknownResolver;
        }
        if !name.starts_with("PORT") {
            return Resolution::Invalid(format!(
                "scenarios may use only ${{{{ env.PORT... }}}} placeholders, not '{name}'"
            ));
        }
        match ports.borrow_mut().get(name) {
            Ok(port) => Resolution::Value(port.to_string()),
            Err(err) => Resolution::Invalid(format!("no free port for {name}: {err}")),
        }
    };
    substitute(&mut root, &resolver)?;
    let raw: RawScenario = from_node(&root)?;
    let peers = parse_peers(&raw.peers)?;
    check_barriers(&peers)?;
    Ok(Scenario {
        title: raw.title,
        description: raw.description,
        timeout: raw.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0),
        config: raw.config,
        peers,
        ports: ports.into_inner().ports,
    })
}

/// Free ports, each held open until all are chosen so that no two names get the same one.
#[derive(Default)]
struct PortPool {
    ports: BTreeMap<String, u16>,
    held: Vec<TcpListener>,
}

impl PortPool {
    fn get(&mut self, name: &str) -> std::io::Result<u16> {
        if let Some(port) = self.ports.get(name) {
            return Ok(*port);
        }
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        self.held.push(listener);
        self.ports.insert(name.to_owned(), port);
        Ok(port)
    }
}

fn parse_peers(node: &Node) -> Result<Vec<Peer>, ConfigError> {
    let Some(entries) = node.as_map() else {
        return Err(node.error(ConfigErrorKind::InvalidType {
            found: node.describe(),
            expected: "a mapping of peer names to `stream: [steps]` or `network: [steps]`".into(),
        }));
    };
    if entries.is_empty() {
        return Err(node.error(ConfigErrorKind::Custom("a scenario needs peers".into())));
    }
    let mut peers = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let name = key.as_str().unwrap_or_default().to_owned();
        let path = format!("peers.{name}");
        let entry = value.as_map().filter(|e| e.len() == 1);
        let Some([(kind, steps)]) = entry else {
            return Err(value.error(ConfigErrorKind::InvalidType {
                found: value.describe(),
                expected: "a mapping with one key, `stream` or `network`, holding the steps".into(),
            }));
        };
        let Some(items) = steps.as_seq() else {
            return Err(steps.error(ConfigErrorKind::InvalidType {
                found: steps.describe(),
                expected: "a list of steps".into(),
            }));
        };
        let script = match kind.as_str() {
            Some("stream") => Script::Stream(stream_steps(items, &format!("{path}.stream"))?),
            Some("network") => Script::Network(network_steps(items, &format!("{path}.network"))?),
            _ => {
                return Err(kind.error(ConfigErrorKind::UnknownVariant {
                    value: kind.as_str().unwrap_or("?").to_owned(),
                    allowed: vec!["stream".into(), "network".into()],
                }));
            }
        };
        peers.push(Peer {
            name,
            mark: key.mark,
            script,
        });
    }
    Ok(peers)
}

/// Every `await` must name a barrier some step notifies, or it could only time out.
fn check_barriers(peers: &[Peer]) -> Result<(), ConfigError> {
    let mut notified = BTreeSet::new();
    let mut awaited = Vec::new();
    for peer in peers {
        match &peer.script {
            Script::Stream(steps) => {
                for step in steps {
                    match &step.action {
                        StreamAction::Notify(name) => {
                            notified.insert(name.clone());
                        }
                        StreamAction::Await(name) => awaited.push((name.clone(), step.mark)),
                        _ => {}
                    }
                }
            }
            Script::Network(steps) => {
                for step in steps {
                    match &step.action {
                        NetworkAction::Notify(name) => {
                            notified.insert(name.clone());
                        }
                        NetworkAction::Await(name) => awaited.push((name.clone(), step.mark)),
                        _ => {}
                    }
                }
            }
        }
    }
    for (name, mark) in awaited {
        if !notified.contains(&name) {
            return Err(ConfigError::at(
                mark,
                ConfigErrorKind::Custom(format!("no step notifies '{name}'")),
            ));
        }
    }
    Ok(())
}
