//! `type: spec`: the binding through which a scripted stream peer takes part in a scenario.
//!
//! It holds no logic: a `kind: server` spec binding hands every stream the binding under test
//! opens towards it to the harness; a `kind: client` spec binding opens, into its `exit`,
//! the streams the harness makes. The scripts themselves run in the harness, outside the
//! engine's workers; streams are `Send`, so they cross over.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use binding_api::binding::{Binding, Worker};
use binding_api::frame::{ReasonKind, Reset};
use binding_api::stream::Acceptor;
use tokio::sync::mpsc;
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};
use zilla_config::{ConfigError, ConfigErrorKind};

/// The harness's end of one spec binding.
#[derive(Debug)]
pub enum PeerEnd {
    /// A `kind: server` binding: streams opened towards it arrive here.
    Server(mpsc::UnboundedReceiver<Acceptor>),
    /// A `kind: client` binding: streams sent here are opened into its exit.
    Client(mpsc::UnboundedSender<Acceptor>),
}

/// The spec bindings built for one scenario, by name, waiting for their peers.
#[derive(Debug, Default)]
pub struct Bridge {
    ends: Mutex<BTreeMap<String, PeerEnd>>,
}

impl Bridge {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, PeerEnd>> {
        self.ends.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the harness's end of the spec binding `name`, if it was built.
    pub fn take(&self, name: &str) -> Option<PeerEnd> {
        self.lock().remove(name)
    }

    /// The names of the spec bindings whose end was not taken.
    pub fn remaining(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

/// Builds spec bindings, registering each with a [`Bridge`].
#[derive(Debug, Default)]
pub struct SpecFactory {
    bridge: Arc<Bridge>,
}

impl SpecFactory {
    /// A factory whose bindings report to `bridge`.
    pub fn new(bridge: Arc<Bridge>) -> Self {
        SpecFactory { bridge }
    }
}

impl BindingFactory for SpecFactory {
    fn type_name(&self) -> &'static str {
        "spec"
    }

    fn kinds(&self) -> &[Kind] {
        &[Kind::Server, Kind::Client]
    }

    fn exit_rule(&self, kind: Kind) -> ExitRule {
        match kind {
            Kind::Client => ExitRule::Required,
            _ => ExitRule::Forbidden,
        }
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        if let Some(options) = config.options {
            return Err(ConfigError::at(
                options.mark,
                ConfigErrorKind::Custom("a spec binding takes no options".into()),
            ));
        }
        if let Some(route) = config.routes.first() {
            return Err(ConfigError::at(
                route.mark,
                ConfigErrorKind::Custom("a spec binding takes no routes; give it an exit".into()),
            ));
        }
        let name = config.name.to_owned();
        match config.kind {
            Kind::Client => {
                let exit = config
                    .exit
                    .ok_or_else(|| config.error("a spec client needs an exit"))?;
                let exit = config.exit_binding(exit, config.mark)?;
                let (tx, rx) = mpsc::unbounded_channel();
                self.bridge.lock().insert(name.clone(), PeerEnd::Client(tx));
                Ok(Arc::new(SpecClient {
                    name,
                    exit,
                    opened: Mutex::new(Some(rx)),
                }))
            }
            _ => {
                let (tx, rx) = mpsc::unbounded_channel();
                self.bridge.lock().insert(name.clone(), PeerEnd::Server(rx));
                Ok(Arc::new(SpecServer { name, accepted: tx }))
            }
        }
    }
}

/// A spec binding of `kind: server`.
struct SpecServer {
    name: String,
    accepted: mpsc::UnboundedSender<Acceptor>,
}

impl Binding for SpecServer {
    fn name(&self) -> &str {
        &self.name
    }

    fn new_stream(&self, stream: Acceptor, _worker: &Worker) {
        if let Err(mpsc::error::SendError(stream)) = self.accepted.send(stream) {
            stream.refuse(Reset::new(
                ReasonKind::Refused,
                format!("spec binding '{}': its peer is gone", self.name),
            ));
        }
    }
}

/// A spec binding of `kind: client`.
struct SpecClient {
    name: String,
    exit: Arc<dyn Binding>,
    opened: Mutex<Option<mpsc::UnboundedReceiver<Acceptor>>>,
}

impl Binding for SpecClient {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&self, worker: &Worker) {
        let taken = self.opened.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(mut opened) = taken else {
            // Streams are opened from the first worker only.
            return;
        };
        let exit = self.exit.clone();
        let on = worker.clone();
        worker.spawn(async move {
            loop {
                let stream = tokio::select! {
                    biased;
                    _ = on.shutdown().cancelled() => return,
                    stream = opened.recv() => stream,
                };
                match stream {
                    Some(stream) => exit.new_stream(stream, &on),
                    None => return,
                }
            }
        });
    }

    fn new_stream(&self, stream: Acceptor, _worker: &Worker) {
        stream.refuse(Reset::new(
            ReasonKind::Refused,
            format!("spec client '{}' does not accept streams", self.name),
        ));
    }
}
