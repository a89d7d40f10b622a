//! The registry of source factories, keyed by service type.

use super::SourceFactory;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct Registry {
    factories: BTreeMap<&'static str, Arc<dyn SourceFactory>>,
}

impl Registry {
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn register(&mut self, factory: Arc<dyn SourceFactory>) {
        self.factories.insert(factory.service_type(), factory);
    }

    pub fn get(&self, service_type: &str) -> Option<Arc<dyn SourceFactory>> {
        self.factories.get(service_type).cloned()
    }

    pub fn service_types(&self) -> Vec<&'static str> {
        self.factories.keys().copied().collect()
    }

    pub fn factories(&self) -> impl Iterator<Item = &Arc<dyn SourceFactory>> {
        self.factories.values()
    }
}
