//! The `:` command line: parsing (`:jobs [CONNECTOR_ID|FILTER]`, `:dlq [JOB_ID|FILTER]`,
//! `:sort COLUMN [desc]`, `:messages`, `:profile NAME`, `:theme NAME`, `:mouse`, `:q`) and
//! completion of command names, profile names and theme names. Pure text work.

use super::app::ViewId;

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleCommand {
    View(ViewId),
    /// A view with an argument: a drill-down (`:jobs CONNECTOR_ID`, `:dlq JOB_ID`) or a
    /// filter (`:connectors orders`).
    ViewWith(ViewId, String),
    /// `:sort COLUMN [desc|asc]`.
    Sort {
        column: String,
        desc: bool,
    },
    /// `:messages`: the history of toasts and errors.
    Messages,
    Profile(String),
    Theme(String),
    Help,
    Refresh,
    /// `:mouse [on|off]`: capture the mouse (toggles without an argument).
    Mouse(Option<bool>),
    Quit,
}

/// The command words, with the views they open.
pub const WORDS: &[&str] = &[
    "connectors",
    "jobs",
    "live",
    "breaker",
    "dlq",
    "kibana",
    "logs",
    "messages",
    "sort",
    "profile",
    "theme",
    "mouse",
    "help",
    "refresh",
    "quit",
    "q",
];

fn view_word(word: &str) -> Option<ViewId> {
    Some(match word {
        "connectors" | "connector" | "conn" | "c" => ViewId::Connectors,
        "jobs" | "job" | "syncjobs" => ViewId::Jobs,
        "live" | "sync" => ViewId::Live,
        "breaker" | "cb" => ViewId::Breaker,
        "dlq" | "deadletters" | "dead-letters" => ViewId::DeadLetters,
        "kibana" | "kb" => ViewId::Kibana,
        "logs" | "log" => ViewId::Logs,
        _ => return None,
    })
}

/// Parses what was typed after `:`.
pub fn parse(input: &str) -> Result<ConsoleCommand, String> {
    let mut words = input.split_whitespace();
    let Some(first) = words.next() else {
        return Err("type a command: connectors, jobs, live, breaker, dlq, kibana, logs, profile NAME, theme NAME, q".to_string());
    };
    let arg = words.next();
    let rest: Vec<&str> = words.collect();
    let word = first.to_ascii_lowercase();
    if let Some(view) = view_word(&word) {
        return match arg {
            None => Ok(ConsoleCommand::View(view)),
            Some(_) if matches!(view, ViewId::Live | ViewId::Breaker) => {
                Err(format!("':{word}' takes no argument"))
            }
            Some(a) => {
                let mut text = a.to_string();
                for w in &rest {
                    text.push(' ');
                    text.push_str(w);
                }
                Ok(ConsoleCommand::ViewWith(view, text))
            }
        };
    }
    match (word.as_str(), arg) {
        ("messages" | "msg" | "messages!", _) => Ok(ConsoleCommand::Messages),
        ("sort", Some(column)) => match rest.as_slice() {
            [] | ["asc"] => Ok(ConsoleCommand::Sort {
                column: column.to_string(),
                desc: false,
            }),
            ["desc"] => Ok(ConsoleCommand::Sort {
                column: column.to_string(),
                desc: true,
            }),
            other => Err(format!(
                "':sort COLUMN' takes desc or asc after the column, not '{}'",
                other.join(" ")
            )),
        },
        ("sort", None) => {
            Err("':sort' needs a column: ':sort name', ':sort status desc'".to_string())
        }
        ("q" | "q!" | "quit" | "exit", _) => Ok(ConsoleCommand::Quit),
        ("help" | "h", _) => Ok(ConsoleCommand::Help),
        ("refresh" | "r", _) => Ok(ConsoleCommand::Refresh),
        ("profile" | "ctx" | "context", Some(name)) => {
            Ok(ConsoleCommand::Profile(name.to_string()))
        }
        ("theme", Some(name)) => Ok(ConsoleCommand::Theme(name.to_string())),
        ("mouse", None) => Ok(ConsoleCommand::Mouse(None)),
        ("mouse", Some("on")) => Ok(ConsoleCommand::Mouse(Some(true))),
        ("mouse", Some("off")) => Ok(ConsoleCommand::Mouse(Some(false))),
        ("mouse", Some(other)) => Err(format!("':mouse' takes on or off, not '{other}'")),
        ("profile" | "ctx" | "context", None) => {
            Err("':profile' needs a profile name (tab completes)".to_string())
        }
        ("theme", None) => Err("':theme' needs a theme name (tab completes)".to_string()),
        _ => Err(format!("unknown command '{first}'")),
    }
}

/// Candidates for the word being typed.
pub fn candidates(input: &str, profiles: &[String], themes: &[String]) -> Vec<String> {
    let trailing_space = input.ends_with(' ');
    let words: Vec<&str> = input.split_whitespace().collect();
    match (words.as_slice(), trailing_space) {
        ([], _) => WORDS.iter().map(|w| w.to_string()).collect(),
        ([partial], false) => WORDS
            .iter()
            .filter(|w| w.starts_with(&partial.to_ascii_lowercase()))
            .map(|w| w.to_string())
            .collect(),
        ([cmd], true) | ([cmd, _], false) => {
            let partial = if trailing_space { "" } else { words[1] };
            let pool = match *cmd {
                "profile" | "ctx" | "context" => profiles,
                "theme" => themes,
                _ => return Vec::new(),
            };
            pool.iter()
                .filter(|p| p.starts_with(partial))
                .map(|p| format!("{cmd} {p}"))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Tab completion: the single candidate, or the longest common prefix of several.
pub fn complete(input: &str, profiles: &[String], themes: &[String]) -> (String, Vec<String>) {
    let found = candidates(input, profiles, themes);
    match found.as_slice() {
        [] => (input.to_string(), found),
        [one] => (one.clone(), found),
        many => {
            let first = &many[0];
            let mut len = first.len();
            for other in &many[1..] {
                len = len.min(
                    first
                        .bytes()
                        .zip(other.bytes())
                        .take_while(|(a, b)| a == b)
                        .count(),
                );
            }
            while !first.is_char_boundary(len) {
                len -= 1;
            }
            let prefix = first[..len].to_string();
            (
                if prefix.len() > input.trim_end().len() {
                    prefix
                } else {
                    input.to_string()
                },
                found,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_views_and_arguments() {
        assert_eq!(parse("jobs"), Ok(ConsoleCommand::View(ViewId::Jobs)));
        assert_eq!(
            parse(" dlq "),
            Ok(ConsoleCommand::View(ViewId::DeadLetters))
        );
        assert_eq!(
            parse("profile prod"),
            Ok(ConsoleCommand::Profile("prod".into()))
        );
        assert_eq!(
            parse("theme light"),
            Ok(ConsoleCommand::Theme("light".into()))
        );
        assert_eq!(parse("q"), Ok(ConsoleCommand::Quit));
        assert_eq!(parse("mouse on"), Ok(ConsoleCommand::Mouse(Some(true))));
        assert!(parse("mouse maybe").unwrap_err().contains("'maybe'"));
        assert!(parse("theme").unwrap_err().contains("theme name"));
        assert!(parse("frob").unwrap_err().contains("'frob'"));
    }

    #[test]
    fn parses_drill_downs_sort_and_messages() {
        assert_eq!(
            parse("jobs pg-orders"),
            Ok(ConsoleCommand::ViewWith(ViewId::Jobs, "pg-orders".into()))
        );
        assert_eq!(
            parse("dlq job-1"),
            Ok(ConsoleCommand::ViewWith(
                ViewId::DeadLetters,
                "job-1".into()
            ))
        );
        assert_eq!(
            parse("connectors orders db"),
            Ok(ConsoleCommand::ViewWith(
                ViewId::Connectors,
                "orders db".into()
            ))
        );
        assert!(parse("live x").is_err());
        assert_eq!(
            parse("sort status desc"),
            Ok(ConsoleCommand::Sort {
                column: "status".into(),
                desc: true
            })
        );
        assert_eq!(
            parse("sort name"),
            Ok(ConsoleCommand::Sort {
                column: "name".into(),
                desc: false
            })
        );
        assert!(parse("sort name sideways").is_err());
        assert!(parse("sort").is_err());
        assert_eq!(parse("messages"), Ok(ConsoleCommand::Messages));
    }

    #[test]
    fn completes_commands_profiles_and_themes() {
        let profiles = vec![
            "prod".to_string(),
            "staging".to_string(),
            "embedded".to_string(),
        ];
        let themes = vec!["default".to_string(), "light".to_string()];
        assert_eq!(complete("br", &profiles, &themes).0, "breaker");
        assert_eq!(complete("l", &profiles, &themes).1, ["live", "logs"]);
        assert_eq!(complete("l", &profiles, &themes).0, "l");
        assert_eq!(
            complete("profile s", &profiles, &themes).0,
            "profile staging"
        );
        assert_eq!(
            complete("theme ", &profiles, &themes).1,
            ["theme default", "theme light"]
        );
        assert_eq!(complete("pro", &profiles, &themes).0, "profile");
    }
}
