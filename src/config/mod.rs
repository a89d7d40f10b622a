//! Configuration: the TOML file, named profiles (contexts), file discovery through
//! `directories`, secret references (`env:NAME`, `file:PATH`), overrides from flags and the
//! environment, and validation whose every error names the file, the line and the field.
//! The result is a [`ResolvedProfile`] of ready settings; nothing else reads the file.

mod profile;

pub use profile::{
    Auth, BreakerSettings, EngineSettings, EsSettings, KibanaSettings, ResolvedProfile,
    SniffSettings, TlsSettings,
};
