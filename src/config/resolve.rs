//! From the checked file and the overrides to one `ResolvedProfile`: picks the profile
//! (`--profile`, `SYNCDECK_PROFILE`, `default_profile`, the only one, or the built-in
//! `embedded`), lays the overrides over it and dereferences its secrets (`env:`, `file:`).

use super::check::{
    AuthDraft, CheckedFile, Ctx, EsDraft, KibanaDraft, ProfileDraft, SecretField, known_profiles,
};
use super::error::{ConfigError, FieldPath};
use super::overrides::{
    ClusterOverrides, ENV_ES_URL, ENV_PROFILE, FLAG_ES_URL, FLAG_PROFILE, Overrides,
};
use super::profile::{Auth, BreakerSettings, EngineSettings, KibanaSettings, ResolvedProfile};
use super::values::{SecretRef, quote};
use super::{EMBEDDED_PROFILE, ENV_PROFILE_NAME};
use crate::secret::Secret;
use std::io::Read;
use std::path::Path;

/// Refuses bigger secret files: a secret is a line, not a document.
const MAX_SECRET_BYTES: u64 = 64 << 10;

/// Which profile to build.
enum Selection {
    File(Box<ProfileDraft>),
    /// The built-in embedded profile; `explicit` when asked for by name, which also ignores
    /// cluster overrides.
    Embedded {
        explicit: bool,
    },
}

/// Resolves the profile to use. `no_file` is the default path that was looked at when there
/// is no file, for messages.
pub fn resolve(
    ctx: &Ctx<'_>,
    mut file: CheckedFile,
    overrides: &Overrides,
    no_file: Option<&Path>,
) -> Result<ResolvedProfile, ConfigError> {
    let cluster = ClusterOverrides::gather(overrides, ctx.env)?;
    let selection = select(ctx, &mut file, overrides, &cluster, no_file)?;
    let mut profile = match selection {
        Selection::Embedded { explicit: true } => embedded(),
        Selection::Embedded { explicit: false } if cluster.names_a_cluster() => {
            let draft = ProfileDraft {
                name: ENV_PROFILE_NAME.to_string(),
                path: FieldPath::root().key("profiles").key(ENV_PROFILE_NAME),
                read_only: false,
                es: None,
                kibana: None,
                engine: EngineSettings::default(),
                breaker: BreakerSettings::default(),
            };
            resolve_draft(ctx, apply(draft, cluster)?)?
        }
        Selection::Embedded { explicit: false } => match &cluster.auth {
            Some((_, var)) => {
                let reason = format!(
                    "is set but no Elasticsearch URL is configured (set {ENV_ES_URL} or pass {FLAG_ES_URL})"
                );
                return Err(ConfigError::outside_file(var, reason));
            }
            None => embedded(),
        },
        Selection::File(draft) => resolve_draft(ctx, apply(*draft, cluster)?)?,
    };
    profile.read_only |= overrides.read_only;
    Ok(profile)
}

/// The default with no configuration at all: the embedded store.
fn embedded() -> ResolvedProfile {
    ResolvedProfile {
        name: EMBEDDED_PROFILE.to_string(),
        elasticsearch: None,
        kibana: None,
        read_only: false,
        engine: EngineSettings::default(),
        breaker: BreakerSettings::default(),
    }
}

fn select(
    ctx: &Ctx<'_>,
    file: &mut CheckedFile,
    overrides: &Overrides,
    cluster: &ClusterOverrides,
    no_file: Option<&Path>,
) -> Result<Selection, ConfigError> {
    let env_profile = (ctx.env)(ENV_PROFILE).filter(|v| !v.is_empty());
    let requested = match (&overrides.profile, env_profile) {
        (Some(name), _) => Some((name.clone(), FLAG_PROFILE)),
        (None, Some(name)) => Some((name, ENV_PROFILE)),
        (None, None) => file
            .default_profile
            .clone()
            .map(|name| (name, "default_profile")),
    };
    if let Some((name, origin)) = requested {
        if let Some(draft) = file.profiles.remove(&name) {
            return Ok(Selection::File(Box::new(draft)));
        }
        if name == EMBEDDED_PROFILE {
            return Ok(Selection::Embedded { explicit: true });
        }
        // The ad-hoc profile of flags and variables, asked for by name.
        if name == ENV_PROFILE_NAME && cluster.names_a_cluster() {
            return Ok(Selection::Embedded { explicit: false });
        }
        let mut reason = format!(
            "no profile named {} (known profiles: {})",
            quote(&name),
            known_profiles(file.profiles.keys())
        );
        if let Some(path) = no_file {
            reason.push_str(&format!(
                "; there is no configuration file at '{}'",
                path.display()
            ));
        }
        return Err(ConfigError {
            file: ctx.file.map(Path::to_path_buf),
            line: None,
            field: Some(origin.to_string()),
            reason,
        });
    }
    if file.profiles.len() > 1 {
        let reason = format!(
            "is not set and there are {} profiles ({}): set it, or pass {FLAG_PROFILE}",
            file.profiles.len(),
            file.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        return Err(ConfigError {
            file: ctx.file.map(Path::to_path_buf),
            line: None,
            field: Some("default_profile".to_string()),
            reason,
        });
    }
    match file.profiles.pop_first() {
        Some((_, draft)) => Ok(Selection::File(Box::new(draft))),
        None => Ok(Selection::Embedded { explicit: false }),
    }
}

/// Lays the flag and environment overrides over a profile.
fn apply(mut draft: ProfileDraft, cluster: ClusterOverrides) -> Result<ProfileDraft, ConfigError> {
    if let Some(urls) = cluster.es_urls {
        let es = draft
            .es
            .get_or_insert_with(|| EsDraft::new(draft.path.key("elasticsearch")));
        es.settings.nodes = urls;
    }
    if let Some(url) = cluster.kibana_url {
        let kibana = draft
            .kibana
            .get_or_insert_with(|| KibanaDraft::new(draft.path.key("kibana")));
        kibana.url = Some(url);
    }
    if let Some((auth, var)) = cluster.auth {
        let Some(es) = draft.es.as_mut() else {
            let reason = format!(
                "is set but profile {} has no Elasticsearch (set {ENV_ES_URL} or add \
                 [{}.elasticsearch])",
                quote(&draft.name),
                draft.path
            );
            return Err(ConfigError::outside_file(var, reason));
        };
        es.auth = AuthDraft::Ready(auth);
    }
    Ok(draft)
}

fn resolve_draft(ctx: &Ctx<'_>, draft: ProfileDraft) -> Result<ResolvedProfile, ConfigError> {
    let elasticsearch = match draft.es {
        Some(es) => {
            if es.settings.nodes.is_empty() {
                let reason = format!(
                    "is missing: list the node URLs, e.g. nodes = [\"https://localhost:9200\"] \
                     (or set {ENV_ES_URL})"
                );
                return Err(ctx.err(&es.path.key("nodes"), reason));
            }
            check_ca_file(ctx, &es.path, es.settings.tls.ca_file.as_deref())?;
            let auth = resolve_auth(ctx, es.auth)?;
            Some(super::profile::EsSettings {
                auth,
                ..es.settings
            })
        }
        None => None,
    };
    let kibana = match draft.kibana {
        Some(kibana) => Some(resolve_kibana(ctx, kibana, elasticsearch.as_ref())?),
        None => None,
    };
    Ok(ResolvedProfile {
        name: draft.name,
        elasticsearch,
        kibana,
        read_only: draft.read_only,
        engine: draft.engine,
        breaker: draft.breaker,
    })
}

fn resolve_kibana(
    ctx: &Ctx<'_>,
    kibana: KibanaDraft,
    es: Option<&super::profile::EsSettings>,
) -> Result<KibanaSettings, ConfigError> {
    let Some(url) = kibana.url else {
        let reason = "is missing: give Kibana's URL, e.g. url = \"https://localhost:5601\"";
        return Err(ctx.err(&kibana.path.key("url"), reason));
    };
    let auth = match kibana.auth {
        Some(auth) => resolve_auth(ctx, auth)?,
        None => es.map(|es| es.auth.clone()).unwrap_or_default(),
    };
    let tls = match kibana.tls {
        Some(tls) => {
            check_ca_file(ctx, &kibana.path, tls.ca_file.as_deref())?;
            tls
        }
        None => es.map(|es| es.tls.clone()).unwrap_or_default(),
    };
    Ok(KibanaSettings {
        url,
        space: kibana.space,
        auth,
        request_timeout: kibana.request_timeout,
        tls,
    })
}

/// A CA file that is not there fails here, with its line, rather than at the first request.
fn check_ca_file(
    ctx: &Ctx<'_>,
    section: &FieldPath,
    ca_file: Option<&Path>,
) -> Result<(), ConfigError> {
    let Some(ca_file) = ca_file else {
        return Ok(());
    };
    if ca_file.is_file() {
        return Ok(());
    }
    let reason = format!("'{}' does not exist or is not a file", ca_file.display());
    Err(ctx.err(&section.key("tls").key("ca_file"), reason))
}

fn resolve_auth(ctx: &Ctx<'_>, auth: AuthDraft) -> Result<Auth, ConfigError> {
    Ok(match auth {
        AuthDraft::None => Auth::None,
        AuthDraft::Ready(auth) => auth,
        AuthDraft::ApiKey(key) => Auth::ApiKey(resolve_secret(ctx, &key)?),
        AuthDraft::Bearer(token) => Auth::Bearer(resolve_secret(ctx, &token)?),
        AuthDraft::Basic { username, password } => Auth::Basic {
            username: resolve_secret(ctx, &username)?.expose().to_string(),
            password: resolve_secret(ctx, &password)?,
        },
    })
}

/// Dereferences a secret: a literal as is, `env:NAME` from the environment, `file:PATH` from
/// a file only its owner can read.
pub fn resolve_secret(ctx: &Ctx<'_>, field: &SecretField) -> Result<Secret, ConfigError> {
    match &field.value {
        SecretRef::Literal(secret) => Ok(secret.clone()),
        SecretRef::Env(name) => match (ctx.env)(name) {
            Some(value) if !value.is_empty() => Ok(Secret::new(value)),
            Some(_) => Err(ctx.err(
                &field.path,
                format!("environment variable '{name}' is empty"),
            )),
            None => Err(ctx.err(
                &field.path,
                format!("environment variable '{name}' is not set"),
            )),
        },
        SecretRef::File(path) => {
            read_secret_file(&ctx.relative(path)).map_err(|reason| ctx.err(&field.path, reason))
        }
    }
}

/// Reads a secret file, or says why not (naming the path, never the contents).
fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let shown = path.display();
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("secret file '{shown}' does not exist"),
        _ => format!("cannot read secret file '{shown}': {e}"),
    })?;
    if !metadata.is_file() {
        return Err(format!("secret file '{shown}' is not a regular file"));
    }
    if let Some(mode) = group_or_other_mode(&metadata) {
        return Err(format!(
            "secret file '{shown}' is readable by others (mode {mode:04o}); run 'chmod 600 {shown}'"
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_SECRET_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read secret file '{shown}': {e}"))?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(format!(
            "secret file '{shown}' is larger than 64 KiB; is it the right file?"
        ));
    }
    let text =
        String::from_utf8(bytes).map_err(|_| format!("secret file '{shown}' is not UTF-8 text"))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        return Err(format!("secret file '{shown}' is empty"));
    }
    Ok(Secret::new(text))
}

/// The file's permission bits if group or others have any access.
#[cfg(unix)]
pub fn group_or_other_mode(metadata: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
pub fn group_or_other_mode(_metadata: &std::fs::Metadata) -> Option<u32> {
    None
}
