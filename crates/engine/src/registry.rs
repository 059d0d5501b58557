//! The binding types this build knows.

use binding_api::binding::BindingFactory;

/// Binding factories by type name.
pub struct Registry {
    factories: Vec<Box<dyn BindingFactory>>,
}

impl Registry {
    /// Every binding type compiled into this build.
    pub fn builtin() -> Self {
        Registry {
            factories: vec![
                Box::new(binding_echo::EchoFactory),
                Box::new(binding_kafka_client::KafkaFactory),
                Box::new(binding_http::HttpFactory),
                Box::new(binding_sse::SseFactory),
                Box::new(binding_sse_kafka::SseKafkaFactory),
                Box::new(binding_ticker::TickerFactory),
                Box::new(binding_tcp::TcpFactory),
            ],
        }
    }

    /// Every builtin binding type plus `extra` ones (test bindings, for example). An extra
    /// factory replaces a builtin one of the same type name.
    pub fn with(extra: impl IntoIterator<Item = Box<dyn BindingFactory>>) -> Self {
        let mut factories: Vec<Box<dyn BindingFactory>> = extra.into_iter().collect();
        let builtin: Vec<_> = Registry::builtin()
            .factories
            .into_iter()
            .filter(|b| !factories.iter().any(|f| f.type_name() == b.type_name()))
            .collect();
        factories.extend(builtin);
        Registry { factories }
    }

    /// The factory for `type_name`.
    pub fn get(&self, type_name: &str) -> Option<&dyn BindingFactory> {
        self.factories
            .iter()
            .find(|f| f.type_name() == type_name)
            .map(|f| f.as_ref())
    }

    /// Known type names, sorted.
    pub fn type_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.factories.iter().map(|f| f.type_name()).collect();
        names.sort_unstable();
        names
    }
}
