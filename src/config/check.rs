//! Checks a parsed file: ranges, relations between fields, one authentication method per
//! section, no plain-text secret in a file others can read. Every profile is checked, not
//! just the selected one, so a mistake anywhere in the file is reported at once. Secret
//! references stay unresolved here (another profile's variables may legitimately be unset);
//! `resolve.rs` dereferences those of the selected profile.

use super::error::{ConfigError, FieldPath};
use super::file::{
    BreakerFile, ConfigFile, ElasticsearchFile, EngineFile, KibanaFile, ProfileFile, SniffFile,
    TlsFile, UiFile,
};
use super::profile::{
    Auth, BreakerSettings, EngineSettings, EsSettings, SniffSettings, TlsSettings,
};
use super::source::SourceMap;
use super::units::{ByteSize, DurationValue, format_size};
use super::values::{SecretRef, quote};
use super::{EMBEDDED_PROFILE, UiSettings};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest bulk request body Elasticsearch accepts by default (`http.max_content_length`).
const MAX_BATCH_BYTES: u64 = 100 << 20;

/// The longest any duration of the file may be. Far beyond any sane setting, and small
/// enough that sums and products of a few of them (retry budgets, backoffs) stay exact.
const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Bulk requests in flight at most: each holds a batch in memory and a connection, and a
/// cluster rejects far fewer concurrent bulks long before this.
const MAX_IN_FLIGHT: usize = 128;

/// Retries of one Elasticsearch request at most: each may wait up to `dead_backoff_max`.
const MAX_REQUEST_RETRIES: u32 = 1000;

/// Retries of one document (non-429 transient errors) at most.
const MAX_ITEM_RETRIES: u32 = 100;

/// The smallest `max_response_bytes`: a bulk answer of a full batch must fit, errors included
/// (a few hundred bytes an item, times `batch_max_docs`). A bulk whose answer is refused for
/// its size has taken effect all the same, so a bound it can reach would re-send it.
const MIN_RESPONSE_BYTES: u64 = 16 << 20;

/// What checking needs to know about the file.
pub struct Ctx<'a> {
    /// The file, for messages; `None` when there is none.
    pub file: Option<&'a Path>,
    /// Base of relative paths (`file:` secrets, `ca_file`): the file's directory.
    pub dir: PathBuf,
    pub map: Option<SourceMap<'a>>,
    /// Permission bits of the file, when they are to be enforced.
    pub mode: Option<u32>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Ctx<'_> {
    /// An error at `path` of the file.
    pub fn err(&self, path: &FieldPath, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.map(Path::to_path_buf),
            line: self.map.as_ref().and_then(|m| m.line_of(path)),
            field: Some(path.to_string()),
            reason: reason.into(),
        }
    }

    fn line_of(&self, path: &FieldPath) -> usize {
        self.map.as_ref().and_then(|m| m.line_of(path)).unwrap_or(0)
    }

    /// `path` relative to the configuration file's directory.
    pub fn relative(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.dir.join(path)
        }
    }
}

/// The file after checking.
pub struct CheckedFile {
    pub default_profile: Option<String>,
    pub profiles: BTreeMap<String, ProfileDraft>,
    pub ui: UiSettings,
}

/// A checked profile whose secrets are still references.
pub struct ProfileDraft {
    pub name: String,
    pub path: FieldPath,
    pub read_only: bool,
    pub es: Option<EsDraft>,
    pub kibana: Option<KibanaDraft>,
    pub engine: EngineSettings,
    pub breaker: BreakerSettings,
}

pub struct EsDraft {
    pub path: FieldPath,
    /// Everything but `auth`; `nodes` is empty when the file does not give them.
    pub settings: EsSettings,
    pub auth: AuthDraft,
}

impl EsDraft {
    pub fn new(path: FieldPath) -> Self {
        Self {
            path,
            settings: EsSettings::new(Vec::new()),
            auth: AuthDraft::None,
        }
    }
}

pub struct KibanaDraft {
    pub path: FieldPath,
    pub url: Option<url::Url>,
    pub space: Option<String>,
    /// `None`: use the Elasticsearch credentials.
    pub auth: Option<AuthDraft>,
    pub request_timeout: Duration,
    /// `None`: use the Elasticsearch TLS settings.
    pub tls: Option<TlsSettings>,
}

impl KibanaDraft {
    pub fn new(path: FieldPath) -> Self {
        Self {
            path,
            url: None,
            space: None,
            auth: None,
            request_timeout: Duration::from_secs(30),
            tls: None,
        }
    }
}

/// A secret reference and the field it was written in.
pub struct SecretField {
    pub value: SecretRef,
    pub path: FieldPath,
}

pub enum AuthDraft {
    None,
    ApiKey(SecretField),
    Basic {
        username: SecretField,
        password: SecretField,
    },
    Bearer(SecretField),
    /// Already resolved (from the environment).
    Ready(Auth),
}

pub fn check_file(ctx: &Ctx<'_>, file: ConfigFile) -> Result<CheckedFile, ConfigError> {
    let root = FieldPath::root();
    let ui = check_ui(ctx, &root.key("ui"), file.ui)?;
    let mut profiles = BTreeMap::new();
    for (name, raw) in file.profiles {
        let draft = check_profile(ctx, &name, raw)?;
        profiles.insert(name, draft);
    }
    if let Some(name) = &file.default_profile {
        let known = profiles.contains_key(name) || name == EMBEDDED_PROFILE;
        if !known {
            let reason = format!(
                "no profile named {} (known profiles: {})",
                quote(name),
                known_profiles(profiles.keys())
            );
            return Err(ctx.err(&root.key("default_profile"), reason));
        }
    }
    Ok(CheckedFile {
        default_profile: file.default_profile,
        profiles,
        ui,
    })
}

/// The profile names to offer: the file's, then the built-in embedded one.
pub fn profile_names<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out: Vec<String> = names.cloned().collect();
    if !out.iter().any(|n| n == EMBEDDED_PROFILE) {
        out.push(EMBEDDED_PROFILE.to_string());
    }
    out
}

pub fn known_profiles<'a>(names: impl Iterator<Item = &'a String>) -> String {
    profile_names(names).join(", ")
}

fn check_ui(ctx: &Ctx<'_>, path: &FieldPath, raw: UiFile) -> Result<UiSettings, ConfigError> {
    let defaults = UiSettings::default();
    let theme = match raw.theme {
        Some(theme) if is_name(&theme) => theme,
        Some(theme) => {
            let reason = format!(
                "{} is not a theme name (letters, digits, '-' and '_')",
                quote(&theme)
            );
            return Err(ctx.err(&path.key("theme"), reason));
        }
        None => defaults.theme,
    };
    Ok(UiSettings {
        refresh_interval: positive(
            ctx,
            path,
            "refresh_interval",
            raw.refresh_interval,
            defaults.refresh_interval,
        )?,
        theme,
        mouse: raw.mouse.unwrap_or(defaults.mouse),
    })
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_profile(ctx: &Ctx<'_>, name: &str, raw: ProfileFile) -> Result<ProfileDraft, ConfigError> {
    let path = FieldPath::root().key("profiles").key(name);
    let es = match raw.elasticsearch {
        Some(es) => Some(check_es(ctx, path.key("elasticsearch"), es)?),
        None => None,
    };
    let kibana = match raw.kibana {
        Some(kibana) => Some(check_kibana(ctx, path.key("kibana"), kibana)?),
        None => None,
    };
    Ok(ProfileDraft {
        name: name.to_string(),
        read_only: raw.read_only.unwrap_or(false),
        es,
        kibana,
        engine: check_engine(ctx, &path.key("engine"), raw.engine.unwrap_or_default())?,
        breaker: check_breaker(ctx, &path.key("breaker"), raw.breaker.unwrap_or_default())?,
        path,
    })
}

fn check_es(
    ctx: &Ctx<'_>,
    path: FieldPath,
    raw: ElasticsearchFile,
) -> Result<EsDraft, ConfigError> {
    if raw.nodes.as_ref().is_some_and(Vec::is_empty) {
        return Err(ctx.err(&path.key("nodes"), "is empty: list at least one node URL"));
    }
    let nodes: Vec<url::Url> = raw
        .nodes
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.0)
        .collect();
    let auth = check_auth(
        ctx,
        &path,
        AuthFields {
            api_key: raw.api_key,
            username: raw.username,
            password: raw.password,
            bearer_token: raw.bearer_token,
        },
    )?;
    let compatible_with = raw.compatible_with.unwrap_or(8);
    if !matches!(compatible_with, 8 | 9) {
        let reason = format!("'{compatible_with}' is not supported (use 8 or 9)");
        return Err(ctx.err(&path.key("compatible_with"), reason));
    }
    let defaults = EsSettings::new(Vec::new());
    let dead_backoff_base = positive(
        ctx,
        &path,
        "dead_backoff_base",
        raw.dead_backoff_base,
        defaults.dead_backoff_base,
    )?;
    let dead_backoff_max = positive(
        ctx,
        &path,
        "dead_backoff_max",
        raw.dead_backoff_max,
        defaults.dead_backoff_max,
    )?;
    not_longer(
        ctx,
        &path,
        ("dead_backoff_base", dead_backoff_base),
        ("dead_backoff_max", dead_backoff_max),
    )?;
    let settings = EsSettings {
        nodes,
        auth: Auth::None,
        tls: raw
            .tls
            .map(|tls| tls_settings(ctx, tls))
            .unwrap_or_default(),
        request_timeout: positive(
            ctx,
            &path,
            "request_timeout",
            raw.request_timeout,
            defaults.request_timeout,
        )?,
        max_retries: at_most(
            ctx,
            &path,
            "max_retries",
            raw.max_retries.unwrap_or(defaults.max_retries),
            MAX_REQUEST_RETRIES,
        )?,
        retry_on_timeout: raw.retry_on_timeout.unwrap_or(defaults.retry_on_timeout),
        sniff: check_sniff(ctx, &path.key("sniff"), raw.sniff.unwrap_or_default())?,
        gzip: raw.gzip.unwrap_or(defaults.gzip),
        compatible_with,
        dead_backoff_base,
        dead_backoff_max,
        max_response_bytes: response_bytes(ctx, &path, raw.max_response_bytes)?,
    };
    Ok(EsDraft {
        path,
        settings,
        auth,
    })
}

fn check_sniff(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    raw: SniffFile,
) -> Result<SniffSettings, ConfigError> {
    let interval = match raw.interval {
        Some(value) => Some(positive(
            ctx,
            path,
            "interval",
            Some(value),
            Duration::ZERO,
        )?),
        None => None,
    };
    Ok(SniffSettings {
        on_start: raw.on_start.unwrap_or(false),
        on_node_failure: raw.on_node_failure.unwrap_or(false),
        interval,
    })
}

/// TLS settings; `ca_file` made absolute (its existence is checked for the selected profile
/// only, in `resolve.rs`: another machine's profile may name a file missing here).
fn tls_settings(ctx: &Ctx<'_>, raw: TlsFile) -> TlsSettings {
    TlsSettings {
        ca_file: raw.ca_file.map(|file| ctx.relative(&file)),
        verify: raw.verify.unwrap_or(true),
        fingerprint: raw.fingerprint.map(|f| f.0),
    }
}

fn check_kibana(
    ctx: &Ctx<'_>,
    path: FieldPath,
    raw: KibanaFile,
) -> Result<KibanaDraft, ConfigError> {
    let space = match raw.space {
        Some(space) if space == "default" => None,
        Some(space) if is_space_id(&space) => Some(space),
        Some(space) => {
            let reason = format!(
                "{} is not a space id (lowercase letters, digits, '-' and '_')",
                quote(&space)
            );
            return Err(ctx.err(&path.key("space"), reason));
        }
        None => None,
    };
    let fields = AuthFields {
        api_key: raw.api_key,
        username: raw.username,
        password: raw.password,
        bearer_token: raw.bearer_token,
    };
    let auth = if fields.is_empty() {
        None
    } else {
        Some(check_auth(ctx, &path, fields)?)
    };
    Ok(KibanaDraft {
        url: raw.url.map(|u| u.0),
        space,
        auth,
        request_timeout: positive(
            ctx,
            &path,
            "request_timeout",
            raw.request_timeout,
            Duration::from_secs(30),
        )?,
        tls: raw.tls.map(|tls| tls_settings(ctx, tls)),
        path,
    })
}

fn is_space_id(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The authentication fields of a section, as written.
struct AuthFields {
    api_key: Option<SecretRef>,
    username: Option<SecretRef>,
    password: Option<SecretRef>,
    bearer_token: Option<SecretRef>,
}

impl AuthFields {
    fn is_empty(&self) -> bool {
        self.api_key.is_none()
            && self.username.is_none()
            && self.password.is_none()
            && self.bearer_token.is_none()
    }
}

/// At most one method; a complete basic pair; no literal secret in a file others can read.
fn check_auth(
    ctx: &Ctx<'_>,
    section: &FieldPath,
    fields: AuthFields,
) -> Result<AuthDraft, ConfigError> {
    let field = |name: &str, value: SecretRef| SecretField {
        value,
        path: section.key(name),
    };
    let api_key = fields.api_key.map(|v| field("api_key", v));
    let username = fields.username.map(|v| field("username", v));
    let password = fields.password.map(|v| field("password", v));
    let bearer = fields.bearer_token.map(|v| field("bearer_token", v));

    for secret in [&api_key, &password, &bearer].into_iter().flatten() {
        check_literal_allowed(ctx, secret)?;
    }
    // The first written field of each method, in file order, to name the later one.
    let mut methods: Vec<&FieldPath> = Vec::new();
    methods.extend(api_key.as_ref().map(|f| &f.path));
    methods.extend(username.as_ref().or(password.as_ref()).map(|f| &f.path));
    methods.extend(bearer.as_ref().map(|f| &f.path));
    methods.sort_by_key(|p| ctx.line_of(p));
    if let [first, second, ..] = methods.as_slice() {
        let reason = format!(
            "conflicts with '{}': set only one of api_key, username + password, bearer_token",
            first.last_key().unwrap_or_default()
        );
        return Err(ctx.err(second, reason));
    }

    match (api_key, username, password, bearer) {
        (Some(key), ..) => Ok(AuthDraft::ApiKey(key)),
        (_, Some(username), Some(password), _) => Ok(AuthDraft::Basic { username, password }),
        (_, Some(username), None, _) => Err(ctx.err(
            &username.path,
            "needs a password (or use api_key or bearer_token)",
        )),
        (_, None, Some(password), _) => Err(ctx.err(&password.path, "needs a username")),
        (_, _, _, Some(token)) => Ok(AuthDraft::Bearer(token)),
        _ => Ok(AuthDraft::None),
    }
}

/// Like ssh with a private key: a plain-text secret in a file group or others can read is
/// refused, with the command that fixes it.
fn check_literal_allowed(ctx: &Ctx<'_>, secret: &SecretField) -> Result<(), ConfigError> {
    let (Some(mode), Some(file)) = (ctx.mode, ctx.file) else {
        return Ok(());
    };
    if !secret.value.is_literal() || mode & 0o077 == 0 {
        return Ok(());
    }
    let file = file.display();
    let reason = format!(
        "is a plain-text secret, but the file is readable by others (mode {:04o}); run \
         'chmod 600 {file}' or use env:/file: references",
        mode & 0o7777
    );
    Err(ctx.err(&secret.path, reason))
}

fn check_engine(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    raw: EngineFile,
) -> Result<EngineSettings, ConfigError> {
    let d = EngineSettings::default();
    let retry_base = positive(ctx, path, "retry_base", raw.retry_base, d.retry_base)?;
    let retry_max = positive(ctx, path, "retry_max", raw.retry_max, d.retry_max)?;
    not_longer(
        ctx,
        path,
        ("retry_base", retry_base),
        ("retry_max", retry_max),
    )?;
    let check_interval = positive(
        ctx,
        path,
        "check_interval",
        raw.check_interval,
        d.check_interval,
    )?;
    let idle_job_timeout = positive(
        ctx,
        path,
        "idle_job_timeout",
        raw.idle_job_timeout,
        d.idle_job_timeout,
    )?;
    // A lease shorter than a few check-ins would let a start or a reaper end a job whose
    // worker is alive and only between two check-ins.
    if idle_job_timeout < check_interval.saturating_mul(3) {
        let reason = format!(
            "'{}' is too short: use at least 3 × check_interval ({}), or the jobs of live \
             workers are taken for dead",
            super::units::format_duration(idle_job_timeout),
            super::units::format_duration(check_interval.saturating_mul(3))
        );
        return Err(ctx.err(&path.key("idle_job_timeout"), reason));
    }
    Ok(EngineSettings {
        batch_max_docs: at_least_one(
            ctx,
            path,
            "batch_max_docs",
            raw.batch_max_docs,
            d.batch_max_docs,
        )?,
        batch_max_bytes: size(
            ctx,
            path,
            "batch_max_bytes",
            raw.batch_max_bytes,
            d.batch_max_bytes,
            MAX_BATCH_BYTES,
        )?,
        batch_linger: not_too_long(
            ctx,
            path,
            "batch_linger",
            raw.batch_linger.map_or(d.batch_linger, |v| v.0),
        )?,
        max_in_flight: at_most(
            ctx,
            path,
            "max_in_flight",
            at_least_one(
                ctx,
                path,
                "max_in_flight",
                raw.max_in_flight,
                d.max_in_flight,
            )?,
            MAX_IN_FLIGHT,
        )?,
        queue_max_bytes: size(
            ctx,
            path,
            "queue_max_bytes",
            raw.queue_max_bytes,
            d.queue_max_bytes,
            u64::MAX,
        )?,
        item_max_retries: at_most(
            ctx,
            path,
            "item_max_retries",
            raw.item_max_retries.unwrap_or(d.item_max_retries),
            MAX_ITEM_RETRIES,
        )?,
        item_retry_budget: positive(
            ctx,
            path,
            "item_retry_budget",
            raw.item_retry_budget,
            d.item_retry_budget,
        )?,
        retry_base,
        retry_max,
        dlq_max_entries: at_least_one(
            ctx,
            path,
            "dlq_max_entries",
            raw.dlq_max_entries,
            d.dlq_max_entries,
        )?,
        dlq_max_document_bytes: size(
            ctx,
            path,
            "dlq_max_document_bytes",
            raw.dlq_max_document_bytes,
            d.dlq_max_document_bytes,
            u64::MAX,
        )?,
        stats_interval: positive(
            ctx,
            path,
            "stats_interval",
            raw.stats_interval,
            d.stats_interval,
        )?,
        check_interval,
        idle_job_timeout,
        heartbeat: positive(ctx, path, "heartbeat", raw.heartbeat, d.heartbeat)?,
        job_cleanup_interval: positive(
            ctx,
            path,
            "job_cleanup_interval",
            raw.job_cleanup_interval,
            d.job_cleanup_interval,
        )?,
        exclude_fields: field_names(ctx, &path.key("exclude_fields"), raw.exclude_fields)?,
        hash_fields: field_names(ctx, &path.key("hash_fields"), raw.hash_fields)?,
        skip_unchanged: raw.skip_unchanged.unwrap_or(d.skip_unchanged),
    })
}

fn field_names(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    names: Option<Vec<String>>,
) -> Result<Vec<String>, ConfigError> {
    let names = names.unwrap_or_default();
    if let Some(i) = names.iter().position(|n| n.trim().is_empty()) {
        return Err(ctx.err(&path.index(i), "is empty: give a document field name"));
    }
    Ok(names)
}

fn check_breaker(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    raw: BreakerFile,
) -> Result<BreakerSettings, ConfigError> {
    let d = BreakerSettings::default();
    let failure_rate = raw.failure_rate.unwrap_or(d.failure_rate);
    if !(failure_rate > 0.0 && failure_rate <= 1.0) {
        let reason = format!(
            "'{failure_rate:?}' is out of range: use a number greater than 0 and at most 1 (e.g. 0.5)"
        );
        return Err(ctx.err(&path.key("failure_rate"), reason));
    }
    let window = at_least_one(ctx, path, "window", raw.window, d.window)?;
    let min_calls = at_least_one(ctx, path, "min_calls", raw.min_calls, d.min_calls)?;
    if min_calls > window {
        let reason =
            format!("'{min_calls}' is more than window ({window}): it could never be reached");
        return Err(ctx.err(&path.key("min_calls"), reason));
    }
    Ok(BreakerSettings {
        window,
        failure_rate,
        min_calls,
        consecutive_failures: at_least_one(
            ctx,
            path,
            "consecutive_failures",
            raw.consecutive_failures,
            d.consecutive_failures,
        )?,
        open_for: positive(ctx, path, "open_for", raw.open_for, d.open_for)?,
        half_open_probes: at_least_one(
            ctx,
            path,
            "half_open_probes",
            raw.half_open_probes,
            d.half_open_probes,
        )?,
        max_open: positive(ctx, path, "max_open", raw.max_open, d.max_open)?,
    })
}

/// A count that must be at least 1.
fn at_least_one<T>(
    ctx: &Ctx<'_>,
    section: &FieldPath,
    key: &str,
    value: Option<T>,
    default: T,
) -> Result<T, ConfigError>
where
    T: Copy + PartialOrd + From<u8>,
{
    let value = value.unwrap_or(default);
    if value < T::from(1) {
        return Err(ctx.err(&section.key(key), "must be at least 1"));
    }
    Ok(value)
}

/// A duration that must be longer than zero.
fn positive(
    ctx: &Ctx<'_>,
    section: &FieldPath,
    key: &str,
    value: Option<DurationValue>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let value = value.map_or(default, |v| v.0);
    if value.is_zero() {
        return Err(ctx.err(&section.key(key), "must be longer than 0s"));
    }
    not_too_long(ctx, section, key, value)
}

/// A duration of at most [`MAX_DURATION`].
fn not_too_long(
    ctx: &Ctx<'_>,
    section: &FieldPath,
    key: &str,
    value: Duration,
) -> Result<Duration, ConfigError> {
    if value > MAX_DURATION {
        let reason = format!(
            "'{}' is too long: use at most {}",
            super::units::format_duration(value),
            super::units::format_duration(MAX_DURATION)
        );
        return Err(ctx.err(&section.key(key), reason));
    }
    Ok(value)
}

/// A count of at most `max`.
fn at_most<T>(
    ctx: &Ctx<'_>,
    section: &FieldPath,
    key: &str,
    value: T,
    max: T,
) -> Result<T, ConfigError>
where
    T: Copy + PartialOrd + std::fmt::Display,
{
    if value > max {
        let reason = format!("'{value}' is too large: use at most {max}");
        return Err(ctx.err(&section.key(key), reason));
    }
    Ok(value)
}

/// `max_response_bytes`: at least [`MIN_RESPONSE_BYTES`], at most what a `usize` holds.
fn response_bytes(
    ctx: &Ctx<'_>,
    section: &FieldPath,
    value: Option<ByteSize>,
) -> Result<usize, ConfigError> {
    let Some(ByteSize(bytes)) = value else {
        return Ok(super::profile::DEFAULT_MAX_RESPONSE_BYTES);
    };
    let path = section.key("max_response_bytes");
    if bytes < MIN_RESPONSE_BYTES {
        let reason = format!(
            "'{}' is too small: use at least {}",
            format_size(bytes),
            format_size(MIN_RESPONSE_BYTES)
        );
        return Err(ctx.err(&path, reason));
    }
    usize::try_from(bytes)
        .map_err(|_| ctx.err(&path, format!("'{}' is too large", format_size(bytes))))
}

/// `lower` must not be longer than `upper`.
fn not_longer(
    ctx: &Ctx<'_>,
    section: &FieldPath,
    (lower_key, lower): (&str, Duration),
    (upper_key, upper): (&str, Duration),
) -> Result<(), ConfigError> {
    if lower <= upper {
        return Ok(());
    }
    let reason = format!("'{lower:?}' is longer than {upper_key} ('{upper:?}')");
    Err(ctx.err(&section.key(lower_key), reason))
}

/// A byte size between 1 and `max`, as a `usize`.
fn size(
    ctx: &Ctx<'_>,
    section: &FieldPath,
    key: &str,
    value: Option<ByteSize>,
    default: usize,
    max: u64,
) -> Result<usize, ConfigError> {
    let Some(ByteSize(bytes)) = value else {
        return Ok(default);
    };
    let path = section.key(key);
    if bytes == 0 {
        return Err(ctx.err(&path, "must be more than 0 bytes"));
    }
    if bytes > max {
        let reason = format!(
            "'{}' is over the {} limit of a bulk request",
            format_size(bytes),
            format_size(max)
        );
        return Err(ctx.err(&path, reason));
    }
    usize::try_from(bytes)
        .map_err(|_| ctx.err(&path, format!("'{}' is too large", format_size(bytes))))
}
