//! The built-in sources (`generator`, `ndjson`, `directory`, `external`, `http_api`) as one
//! [`Registry`]. The helpers sources use to declare and read their configuration fields are
//! `sources::fields`. This module must not know about the engine.

use super::Registry;
use super::directory::DirectoryFactory;
use super::external::ExternalFactory;
use super::generator::GeneratorFactory;
use super::http_api::HttpApiFactory;
use super::ndjson::NdjsonFactory;
use std::sync::Arc;

/// A registry holding every built-in source.
pub fn builtin() -> Registry {
    let mut registry = Registry::empty();
    registry.register(Arc::new(GeneratorFactory));
    registry.register(Arc::new(NdjsonFactory));
    registry.register(Arc::new(DirectoryFactory));
    registry.register(Arc::new(ExternalFactory));
    registry.register(Arc::new(HttpApiFactory));
    registry.register(Arc::new(super::PostgresqlFactory));
    registry.register(Arc::new(super::MysqlFactory));
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_has_the_three_sources() {
        assert_eq!(
            builtin().service_types(),
            [
                "directory",
                "external",
                "generator",
                "http_api",
                "mysql",
                "ndjson",
                "postgresql"
            ]
        );
    }
}
