//! The command line: global flags and subcommands (clap derive). Argument tests sit here,
//! next to the definitions.

use crate::model::{JobStatus, JobType};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "syncdeck",
    version,
    about = "A terminal console and sync engine for Elastic connectors",
    long_about = "syncdeck shows the connectors and sync jobs of an Elasticsearch cluster (and the \
                  index connectors of its Kibana), edits their configuration, starts and cancels \
                  syncs, and runs syncs on its own engine. With no cluster configured it uses an \
                  embedded store with demo connectors."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Configuration file (default: the platform config dir; env SYNCDECK_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Profile (context) to use (env SYNCDECK_PROFILE).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Elasticsearch node URL; repeat for several nodes (env SYNCDECK_ES_URL).
    #[arg(long = "es", global = true, value_name = "URL")]
    pub es: Vec<String>,
    /// Kibana URL (env SYNCDECK_KIBANA_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub kibana: Option<String>,
    /// Refuse every mutating command.
    #[arg(long, global = true)]
    pub read_only: bool,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log level or filter for the log file (env SYNCDECK_LOG), e.g. debug or syncdeck=trace.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Console: watch the live syncs of a headless `syncdeck serve --listen ADDR` on this host.
    #[arg(long, global = true, value_name = "ADDR")]
    pub attach: Option<String>,
    /// Console colour theme: default, light, high-contrast, monochrome, or themes/NAME.toml
    /// beside the config file.
    #[arg(long, global = true, value_name = "NAME")]
    pub theme: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Versions, cluster health, nodes after sniffing, Kibana status.
    Check,
    /// Connectors: list, show, create, delete, configuration.
    #[command(subcommand)]
    Connectors(ConnectorsCommand),
    /// Sync jobs: list, show, start, cancel.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Kibana actions connectors (`.index` and others).
    #[command(subcommand)]
    Kibana(KibanaCommand),
    /// Run one sync of a connector on this process's engine, with live progress.
    Sync {
        #[arg(allow_hyphen_values = true)]
        connector: String,
        #[arg(long = "type", value_enum, default_value_t = SyncTypeArg::Full)]
        job_type: SyncTypeArg,
        /// Write every document's outcome to FILE as NDJSON (one line per document: id,
        /// outcome, bytes, latency, masked reason); `--json` progress carries only the last few.
        #[arg(long, value_name = "FILE")]
        events: Option<std::path::PathBuf>,
    },
    /// Run as a connectors service until SIGINT/SIGTERM.
    Serve(ServeArgs),
    /// The dead-letter queue: documents that could not be indexed.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// The built-in service types and their configuration fields.
    Sources,
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConnectorsCommand {
    /// List connectors.
    List(ConnectorListArgs),
    /// Show one connector with its filtering, pipeline, schedules and latest jobs.
    Show {
        // Elasticsearch ids are random and may start with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Create a connector.
    Create {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long, value_name = "TYPE")]
        service_type: String,
        #[arg(long, value_name = "INDEX")]
        index_name: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a connector (soft by default, as Elasticsearch does).
    Delete {
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Remove the document instead of marking it deleted.
        #[arg(long)]
        hard: bool,
        /// Also delete the connector's sync jobs.
        #[arg(long)]
        delete_sync_jobs: bool,
    },
    /// Show the configuration as a table of fields; sensitive values are masked.
    Config {
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Show sensitive values in clear text.
        #[arg(long)]
        reveal: bool,
    },
    /// Set configuration values: `key=value ...`, validated before anything is sent.
    Set {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(required = true, value_name = "KEY=VALUE")]
        assignments: Vec<String>,
    },
    /// Run an `external` connector's program with `spec` and add the fields it describes
    /// (`config.<property>`, secrets sensitive) to the configuration; values already set
    /// are kept. Run it again after changing `command`, `args` or the program's version.
    Spec {
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Show what the spec would add without saving anything.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Default, Args)]
pub struct ConnectorListArgs {
    #[arg(long, value_name = "TYPE")]
    pub service_type: Vec<String>,
    #[arg(long, value_name = "INDEX")]
    pub index_name: Vec<String>,
    /// Free-text search in names, descriptions and index names.
    #[arg(long)]
    pub query: Option<String>,
    /// Include soft-deleted connectors.
    #[arg(long)]
    pub include_deleted: bool,
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Page size; without it every page is fetched.
    #[arg(long)]
    pub size: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List sync jobs, newest first.
    List(JobListArgs),
    /// Show one sync job.
    Show {
        // Elasticsearch ids are random and may start with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Start a sync job for a connector (a connectors service picks it up).
    Start {
        #[arg(allow_hyphen_values = true)]
        connector: String,
        #[arg(long = "type", value_enum, default_value_t = JobTypeArg::Full)]
        job_type: JobTypeArg,
    },
    /// Cancel a sync job.
    Cancel {
        // Elasticsearch ids are random and may start with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Debug, Clone, Default, Args)]
pub struct JobListArgs {
    #[arg(allow_hyphen_values = true, long, value_name = "ID")]
    pub connector: Option<String>,
    #[arg(long, value_enum)]
    pub status: Option<JobStatusArg>,
    #[arg(long = "type", value_enum)]
    pub job_type: Vec<JobTypeArg>,
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    #[arg(long, default_value_t = 100)]
    pub size: u64,
}

#[derive(Debug, Subcommand)]
pub enum KibanaCommand {
    /// List the connector types Kibana offers.
    Types,
    /// List the actions connectors, with health flags.
    List,
    /// Create an `.index` connector writing to INDEX.
    CreateIndex {
        name: String,
        #[arg(long)]
        index: String,
        /// Refresh the index after each write.
        #[arg(long)]
        refresh: bool,
        #[arg(long, value_name = "FIELD")]
        execution_time_field: Option<String>,
    },
    /// Execute an `.index` connector with documents.
    Execute {
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// One JSON document (an object or an array of objects).
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        doc: Option<String>,
        /// An NDJSON file of documents (`-` for stdin).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Refuse a `--file` larger than this many bytes (it is read whole to send it).
        #[arg(long, default_value_t = crate::cli::kibana::DEFAULT_MAX_FILE_BYTES)]
        max_file_bytes: u64,
        /// Write to this index instead of the connector's.
        #[arg(long)]
        index_override: Option<String>,
    },
    /// Delete an actions connector.
    Delete {
        // Elasticsearch ids are random and may start with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Serve only this connector (repeatable); default: every connector with a known
    /// service type.
    #[arg(allow_hyphen_values = true, long = "connector", value_name = "ID")]
    pub connectors: Vec<String>,
    /// Serve `/status` and `/metrics` on this loopback address, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Time between service ticks (e.g. 30s, 500ms).
    #[arg(long, default_value = "30s", value_parser = parse_duration_arg)]
    pub idle: std::time::Duration,
    /// Sync jobs run at once.
    #[arg(long, default_value_t = 1)]
    pub max_concurrent: usize,
    /// How often each served connector is checked in (default: the profile's
    /// `engine.heartbeat`, 5m).
    #[arg(long, value_parser = parse_duration_arg)]
    pub heartbeat: Option<std::time::Duration>,
    /// Time between two cleanups of abandoned jobs (default: the profile's
    /// `engine.job_cleanup_interval`, 5m).
    #[arg(long, value_parser = parse_duration_arg)]
    pub job_cleanup_interval: Option<std::time::Duration>,
}

fn parse_duration_arg(text: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(text)
        .ok_or_else(|| format!("'{text}' is not a duration (e.g. 500ms, 30s, 5m)"))
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List the open dead letters of the profile's cluster, newest failure first.
    List(DlqListArgs),
    /// Show one dead letter of the profile's cluster with its document.
    Show {
        id: i64,
        /// Show it whatever cluster it came from.
        #[arg(long)]
        all_clusters: bool,
    },
    /// Send dead letters of the profile's cluster again; those indexed are resolved, those
    /// the index holds a newer version of are superseded (not sent).
    Retry(DlqSelectArgs),
    /// Remove dead letters for good.
    Drop {
        #[command(flatten)]
        select: DlqSelectArgs,
        /// Confirm: dropped documents are gone from the queue.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Clone, Default, Args)]
pub struct DlqListArgs {
    #[arg(allow_hyphen_values = true, long, value_name = "ID")]
    pub connector: Option<String>,
    #[arg(allow_hyphen_values = true, long, value_name = "ID")]
    pub job: Option<String>,
    #[arg(long, value_name = "TYPE")]
    pub error_type: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
    /// Every cluster's entries (and those of unknown origin), with their cluster; read-only.
    #[arg(long)]
    pub all_clusters: bool,
    /// Also the history: entries resolved by a later write, and superseded ones.
    #[arg(long)]
    pub resolved: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct DlqSelectArgs {
    /// Dead letter ids.
    #[arg(
        value_name = "ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub ids: Vec<i64>,
    /// Every open dead letter of the profile's cluster (of --connector, when given).
    #[arg(long)]
    pub all: bool,
    #[arg(allow_hyphen_values = true, long, value_name = "ID", requires = "all")]
    pub connector: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncTypeArg {
    Full,
    Incremental,
}

impl From<SyncTypeArg> for JobType {
    fn from(v: SyncTypeArg) -> Self {
        match v {
            SyncTypeArg::Full => JobType::Full,
            SyncTypeArg::Incremental => JobType::Incremental,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobTypeArg {
    Full,
    Incremental,
    AccessControl,
}

impl From<JobTypeArg> for JobType {
    fn from(v: JobTypeArg) -> Self {
        match v {
            JobTypeArg::Full => JobType::Full,
            JobTypeArg::Incremental => JobType::Incremental,
            JobTypeArg::AccessControl => JobType::AccessControl,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobStatusArg {
    Pending,
    InProgress,
    Canceling,
    Canceled,
    Suspended,
    Completed,
    Error,
}

impl From<JobStatusArg> for JobStatus {
    fn from(v: JobStatusArg) -> Self {
        match v {
            JobStatusArg::Pending => JobStatus::Pending,
            JobStatusArg::InProgress => JobStatus::InProgress,
            JobStatusArg::Canceling => JobStatus::Canceling,
            JobStatusArg::Canceled => JobStatus::Canceled,
            JobStatusArg::Suspended => JobStatus::Suspended,
            JobStatusArg::Completed => JobStatus::Completed,
            JobStatusArg::Error => JobStatus::Error,
        }
    }
}

/// Splits `key=value` (the value may contain `=`).
pub fn parse_assignment(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("'{text}' is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("syncdeck").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn ids_may_start_with_a_hyphen() {
        // Elasticsearch's random ids (base64url) start with `-` about one time in 64.
        match parse(&["jobs", "show", "-0Tyx"]).command {
            Some(Command::Jobs(JobsCommand::Show { id })) => assert_eq!(id, "-0Tyx"),
            other => panic!("{other:?}"),
        }
        match parse(&["connectors", "delete", "-ab", "--hard"]).command {
            Some(Command::Connectors(ConnectorsCommand::Delete { id, hard, .. })) => {
                assert_eq!(id, "-ab");
                assert!(hard);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["dlq", "list", "--connector", "-c1"]).command {
            Some(Command::Dlq(DlqCommand::List(args))) => {
                assert_eq!(args.connector.as_deref(), Some("-c1"))
            }
            other => panic!("{other:?}"),
        }
        let help = Cli::try_parse_from(["syncdeck", "jobs", "show", "--help"]);
        assert!(
            matches!(&help, Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp),
            "{help:?}"
        );
    }

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_anywhere() {
        let cli = parse(&[
            "connectors",
            "list",
            "--json",
            "--es",
            "http://a:9200",
            "--es",
            "http://b:9200",
        ]);
        assert!(cli.global.json);
        assert_eq!(cli.global.es, ["http://a:9200", "http://b:9200"]);
    }

    #[test]
    fn jobs_start_type() {
        let cli = parse(&["jobs", "start", "c1", "--type", "access-control"]);
        match cli.command {
            Some(Command::Jobs(JobsCommand::Start {
                connector,
                job_type,
            })) => {
                assert_eq!(connector, "c1");
                assert_eq!(JobType::from(job_type), JobType::AccessControl);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kibana_execute_needs_doc_or_file() {
        let none = Cli::try_parse_from(["syncdeck", "kibana", "execute", "x"]);
        assert!(none.is_err());
        let both = Cli::try_parse_from([
            "syncdeck", "kibana", "execute", "x", "--doc", "{}", "--file", "f",
        ]);
        assert!(both.is_err());
    }

    #[test]
    fn dlq_selection_needs_ids_or_all() {
        assert!(Cli::try_parse_from(["syncdeck", "dlq", "retry"]).is_err());
        assert!(Cli::try_parse_from(["syncdeck", "dlq", "retry", "1", "--all"]).is_err());
        assert!(
            Cli::try_parse_from(["syncdeck", "dlq", "retry", "--all", "--connector", "c"]).is_ok()
        );
        assert!(Cli::try_parse_from(["syncdeck", "dlq", "drop", "3", "4", "--yes"]).is_ok());
        assert!(
            Cli::try_parse_from(["syncdeck", "dlq", "list", "--all-clusters", "--resolved"])
                .is_ok()
        );
        assert!(Cli::try_parse_from(["syncdeck", "dlq", "show", "3", "--all-clusters"]).is_ok());
        // Everything across clusters is read-only: retry and drop have no such flag.
        assert!(
            Cli::try_parse_from(["syncdeck", "dlq", "retry", "--all", "--all-clusters"]).is_err()
        );
    }

    #[test]
    fn serve_parses_listen_and_idle() {
        let cli = parse(&[
            "serve",
            "--listen",
            "127.0.0.1:9464",
            "--idle",
            "500ms",
            "--connector",
            "a",
        ]);
        match cli.command {
            Some(Command::Serve(args)) => {
                assert_eq!(args.idle, std::time::Duration::from_millis(500));
                assert_eq!(args.connectors, ["a"]);
                assert_eq!(args.listen.unwrap().port(), 9464);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn connectors_spec_takes_an_id_and_dry_run() {
        match parse(&["connectors", "spec", "ext", "--dry-run"]).command {
            Some(Command::Connectors(ConnectorsCommand::Spec { id, dry_run })) => {
                assert_eq!(id, "ext");
                assert!(dry_run);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["syncdeck", "connectors", "spec"]).is_err());
    }

    #[test]
    fn assignments_split_on_first_equals() {
        assert_eq!(parse_assignment("q=a=b"), Ok(("q".into(), "a=b".into())));
        assert!(parse_assignment("=x").is_err());
        assert!(parse_assignment("novalue").is_err());
    }
}
