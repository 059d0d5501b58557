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
                Box::new(binding_tcp::TcpFactory),
            ],
        }
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
