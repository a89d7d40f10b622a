//! Overrides from flags and the environment, which beat the file: the profile to use, the
//! Elasticsearch and Kibana URLs, credentials, read-only. Parsed here, with errors that name
//! the flag or variable; applied to the selected profile by `resolve.rs`.

use super::error::ConfigError;
use super::profile::Auth;
use super::values::parse_http_url;
use crate::secret::Secret;
use url::Url;

/// Profile to use (like `--profile`).
pub const ENV_PROFILE: &str = "SYNCDECK_PROFILE";
/// Elasticsearch node URLs, comma-separated (like `--es-url`).
pub const ENV_ES_URL: &str = "SYNCDECK_ES_URL";
/// Elasticsearch encoded API key.
pub const ENV_ES_API_KEY: &str = "SYNCDECK_ES_API_KEY";
/// Elasticsearch basic-auth user (with `SYNCDECK_ES_PASSWORD`).
pub const ENV_ES_USER: &str = "SYNCDECK_ES_USER";
/// Elasticsearch basic-auth password (with `SYNCDECK_ES_USER`).
pub const ENV_ES_PASSWORD: &str = "SYNCDECK_ES_PASSWORD";
/// Kibana URL (like `--kibana-url`).
pub const ENV_KIBANA_URL: &str = "SYNCDECK_KIBANA_URL";

/// Names the flags in error messages.
pub const FLAG_PROFILE: &str = "--profile";
pub const FLAG_ES_URL: &str = "--es-url";
pub const FLAG_KIBANA_URL: &str = "--kibana-url";

/// What the command line overrides. Each value beats its environment variable, which beats
/// the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--profile NAME` (else `SYNCDECK_PROFILE`, else the file's `default_profile`).
    pub profile: Option<String>,
    /// `--es-url URL`, repeatable; each may also be a comma-separated list.
    pub es_urls: Vec<String>,
    /// `--kibana-url URL`.
    pub kibana_url: Option<String>,
    /// `--read-only`: forces read-only on; never turns it off.
    pub read_only: bool,
}

/// Cluster overrides gathered from flags and the environment, checked.
#[derive(Debug, Default)]
pub struct ClusterOverrides {
    pub es_urls: Option<Vec<Url>>,
    pub kibana_url: Option<Url>,
    /// Credentials, with the variable that gave them (for messages).
    pub auth: Option<(Auth, &'static str)>,
}

impl ClusterOverrides {
    pub fn gather(
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let es_urls = if !overrides.es_urls.is_empty() {
            Some(url_list(&overrides.es_urls, FLAG_ES_URL)?)
        } else if let Some(value) = var(ENV_ES_URL) {
            Some(url_list(&[value], ENV_ES_URL)?)
        } else {
            None
        };
        let kibana_url = match (&overrides.kibana_url, var(ENV_KIBANA_URL)) {
            (Some(flag), _) => Some(one_url(flag, FLAG_KIBANA_URL)?),
            (None, Some(value)) => Some(one_url(&value, ENV_KIBANA_URL)?),
            (None, None) => None,
        };
        let auth = env_auth(var(ENV_ES_API_KEY), var(ENV_ES_USER), var(ENV_ES_PASSWORD))?;
        Ok(Self {
            es_urls,
            kibana_url,
            auth,
        })
    }

    /// True when something asks for a cluster.
    pub fn names_a_cluster(&self) -> bool {
        self.es_urls.is_some() || self.kibana_url.is_some()
    }
}

fn one_url(text: &str, origin: &str) -> Result<Url, ConfigError> {
    parse_http_url(text).map_err(|reason| ConfigError::outside_file(origin, reason))
}

fn url_list(values: &[String], origin: &str) -> Result<Vec<Url>, ConfigError> {
    let urls = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| one_url(v, origin))
        .collect::<Result<Vec<_>, _>>()?;
    if urls.is_empty() {
        return Err(ConfigError::outside_file(origin, "gives no URL"));
    }
    Ok(urls)
}

fn env_auth(
    api_key: Option<String>,
    user: Option<String>,
    password: Option<String>,
) -> Result<Option<(Auth, &'static str)>, ConfigError> {
    match (api_key, user, password) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ConfigError::outside_file(
            ENV_ES_API_KEY,
            format!(
                "conflicts with {ENV_ES_USER}/{ENV_ES_PASSWORD}: set only one authentication method"
            ),
        )),
        (Some(key), None, None) => Ok(Some((Auth::ApiKey(Secret::new(key)), ENV_ES_API_KEY))),
        (None, Some(username), Some(password)) => Ok(Some((
            Auth::Basic {
                username,
                password: Secret::new(password),
            },
            ENV_ES_USER,
        ))),
        (None, Some(_), None) => Err(ConfigError::outside_file(
            ENV_ES_USER,
            format!("is set but {ENV_ES_PASSWORD} is not"),
        )),
        (None, None, Some(_)) => Err(ConfigError::outside_file(
            ENV_ES_PASSWORD,
            format!("is set but {ENV_ES_USER} is not"),
        )),
        (None, None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn flags_beat_environment() {
        let env = |name: &str| match name {
            ENV_ES_URL => Some("http://env:9200".to_string()),
            ENV_KIBANA_URL => Some("http://envkb:5601".to_string()),
            _ => None,
        };
        let flags = Overrides {
            es_urls: vec!["http://a:9200,http://b:9200".into(), "http://c:9200".into()],
            ..Default::default()
        };
        let got = ClusterOverrides::gather(&flags, &env).unwrap();
        let hosts: Vec<_> = got
            .es_urls
            .unwrap()
            .iter()
            .map(|u| u.host_str().unwrap().to_string())
            .collect();
        assert_eq!(hosts, ["a", "b", "c"]);
        assert_eq!(got.kibana_url.unwrap().host_str(), Some("envkb"));
    }

    #[test]
    fn errors_name_the_variable_or_flag() {
        let env = |name: &str| (name == ENV_ES_URL).then(|| "ftp://x".to_string());
        let err = ClusterOverrides::gather(&Overrides::default(), &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SYNCDECK_ES_URL: 'ftp://x' is not an http or https URL"
        );
        let flags = Overrides {
            kibana_url: Some("nope".into()),
            ..Default::default()
        };
        let err = ClusterOverrides::gather(&flags, &no_env).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("--kibana-url"));
        let flags = Overrides {
            es_urls: vec![" , ".into()],
            ..Default::default()
        };
        let err = ClusterOverrides::gather(&flags, &no_env).unwrap_err();
        assert_eq!(err.to_string(), "--es-url: gives no URL");
    }

    #[test]
    fn environment_credentials() {
        let env = |name: &str| match name {
            ENV_ES_USER => Some("elastic".to_string()),
            ENV_ES_PASSWORD => Some("pw".to_string()),
            _ => None,
        };
        let got = ClusterOverrides::gather(&Overrides::default(), &env).unwrap();
        assert_eq!(
            got.auth.unwrap().0,
            Auth::Basic {
                username: "elastic".into(),
                password: Secret::new("pw")
            }
        );
        let env = |name: &str| (name == ENV_ES_USER).then(|| "elastic".to_string());
        let err = ClusterOverrides::gather(&Overrides::default(), &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SYNCDECK_ES_USER: is set but SYNCDECK_ES_PASSWORD is not"
        );
        let env =
            |name: &str| matches!(name, ENV_ES_API_KEY | ENV_ES_USER).then(|| "x".to_string());
        let err = ClusterOverrides::gather(&Overrides::default(), &env).unwrap_err();
        assert_eq!(err.field.as_deref(), Some(ENV_ES_API_KEY));
    }
}
