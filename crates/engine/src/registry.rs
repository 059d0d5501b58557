//! The binding types this build knows.

use std::sync::Arc;

use binding_api::binding::Binding;
use zilla_config::ConfigError;
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};

/// Binding factories by type name.
pub struct Registry {
    factories: Vec<Box<dyn BindingFactory>>,
}

impl Registry {
    /// Every binding type compiled into this build.
    pub fn builtin() -> Self {
        Registry::merged(vec![
            Box::new(binding_echo::EchoFactory),
            Box::new(binding_kafka_client::KafkaFactory),
            Box::new(binding_kafka_cache::KafkaCacheFactory),
            Box::new(binding_filesystem::FileSystemFactory),
            Box::new(binding_http::HttpFactory),
            Box::new(binding_http::HttpClientFactory),
            Box::new(binding_http_filesystem::HttpFileSystemFactory),
            Box::new(binding_sse::SseFactory),
            Box::new(binding_sse::SseClientFactory),
            Box::new(binding_sse_kafka::SseKafkaFactory),
            Box::new(binding_ticker::TickerFactory),
            Box::new(binding_tcp::TcpFactory::default()),
            Box::new(binding_tls::TlsFactory),
        ])
    }

    /// A registry of `factories`, where several factories of one type (each building some of
    /// its kinds, as the kafka client and the kafka cache) answer as one.
    fn merged(factories: Vec<Box<dyn BindingFactory>>) -> Self {
        let mut groups: Vec<Vec<Box<dyn BindingFactory>>> = Vec::new();
        for factory in factories {
            match groups
                .iter_mut()
                .find(|g| g[0].type_name() == factory.type_name())
            {
                Some(group) => group.push(factory),
                None => groups.push(vec![factory]),
            }
        }
        let factories = groups
            .into_iter()
            .map(|mut group| match group.len() {
                1 => group.remove(0),
                _ => Box::new(ByKind::new(group)) as Box<dyn BindingFactory>,
            })
            .collect();
        Registry { factories }
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
        Registry::merged(factories)
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

/// Factories of one type, each building some of its kinds.
struct ByKind {
    kinds: Vec<Kind>,
    parts: Vec<Box<dyn BindingFactory>>,
}

impl ByKind {
    fn new(parts: Vec<Box<dyn BindingFactory>>) -> Self {
        let mut kinds: Vec<Kind> = parts.iter().flat_map(|p| p.kinds()).copied().collect();
        kinds.sort_unstable();
        kinds.dedup();
        ByKind { kinds, parts }
    }

    fn part(&self, kind: Kind) -> &dyn BindingFactory {
        let part = self.parts.iter().find(|p| p.kinds().contains(&kind));
        part.unwrap_or(&self.parts[0]).as_ref()
    }
}

impl BindingFactory for ByKind {
    fn type_name(&self) -> &'static str {
        self.parts[0].type_name()
    }

    fn kinds(&self) -> &[Kind] {
        &self.kinds
    }

    fn exit_rule(&self, kind: Kind) -> ExitRule {
        self.part(kind).exit_rule(kind)
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        self.part(config.kind).build(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_kinds_from_two_factories() {
        let registry = Registry::builtin();
        let kafka = registry.get("kafka").expect("kafka");
        assert_eq!(
            kafka.kinds(),
            &[Kind::Client, Kind::CacheClient, Kind::CacheServer]
        );
        assert_eq!(
            registry
                .type_names()
                .iter()
                .filter(|n| **n == "kafka")
                .count(),
            1
        );
    }
}
