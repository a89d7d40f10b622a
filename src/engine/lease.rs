//! Who holds a connector's start guard, and whether that holder is still alive. The guard
//! (`last_sync_status` or `last_access_control_sync_status` = `in_progress`) belongs to a job;
//! the job's check-ins (`last_seen`, else `started_at`) are its lease. A guard may be taken over
//! when the lease expired (the Python service's idle threshold, `idle_job_timeout`), or at once
//! when the holder's worker is provably dead: `worker_hostname` is `host/pid@space`, names this
//! host *and* this process space (pid namespace and boot, see [`process_space`]), and no process
//! has that pid. The predicates only decide; ending an orphan is `engine::cleanup`'s, taking the
//! guard the runner's. [`complete_orphaned_cancel`] applies them to a cancel, for `jobs cancel`
//! and the console alike.

use crate::backend::{BackendError, ControlPlane};
use crate::model::{JobStatus, SyncJob, Timestamp};
use std::sync::OnceLock;
use std::time::Duration;

/// This worker's name in `worker_hostname`: the host, the process and the process space, so
/// that several workers on one host are told apart and a dead one can be recognised (see
/// [`is_provably_dead`]). Readable: `box/4242@4026531836.b3734faa`.
pub fn worker_name() -> String {
    worker_name_for(std::process::id())
}

/// The name a process `pid` of this host and this process space has in `worker_hostname`
/// (this worker's own name for its own pid). Without a known process space, `host/pid`: a
/// name no one can ever call provably dead.
pub fn worker_name_for(pid: u32) -> String {
    match process_space() {
        Some(space) => format!("{}/{pid}@{space}", this_host()),
        None => format!("{}/{pid}", this_host()),
    }
}

fn this_host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Where a pid means one process: the pid namespace's inode (`/proc/self/ns/pid`) and the
/// start of the machine's boot id (`/proc/sys/kernel/random/boot_id`). Hostnames are not
/// unique: containers that share one but not a pid namespace, or two machines named alike,
/// would otherwise take each other's live workers for dead. `None` where either is unknown.
pub fn process_space() -> Option<&'static str> {
    static SPACE: OnceLock<Option<String>> = OnceLock::new();
    SPACE.get_or_init(read_process_space).as_deref()
}

#[cfg(target_os = "linux")]
fn read_process_space() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let namespace = std::fs::metadata("/proc/self/ns/pid").ok()?.ino();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let boot: String = boot
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    (boot.len() == 8).then(|| format!("{namespace}.{boot}"))
}

#[cfg(not(target_os = "linux"))]
fn read_process_space() -> Option<String> {
    None
}

/// One parsed `worker_hostname`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerName<'a> {
    pub host: &'a str,
    pub pid: u32,
    /// The process space (`@…`); `None` in names written before it was recorded.
    pub space: Option<&'a str>,
}

/// `host/pid[@space]` → its parts. Other shapes (the Python service writes a bare hostname)
/// say nothing about the process.
pub fn parse_worker(worker: &str) -> Option<WorkerName<'_>> {
    let (rest, space) = match worker.rsplit_once('@') {
        Some((rest, space)) if !space.is_empty() && !space.contains('/') => (rest, Some(space)),
        _ => (worker, None),
    };
    let (host, pid) = rest.rsplit_once('/')?;
    let pid: u32 = pid.parse().ok()?;
    (!host.is_empty() && pid > 0).then_some(WorkerName { host, pid, space })
}

/// Whether a process with this pid exists on this host. `kill(pid, 0)` sends nothing: it only
/// checks. `EPERM` means the process exists but belongs to someone else: alive.
#[cfg(unix)]
pub fn pid_alive(pid: u32) -> bool {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    let Ok(raw) = i32::try_from(pid) else {
        return true;
    };
    !matches!(kill(Pid::from_raw(raw), None), Err(Errno::ESRCH))
}

/// Elsewhere the engine cannot tell: every process counts as alive.
#[cfg(not(unix))]
pub fn pid_alive(_pid: u32) -> bool {
    true
}

/// Whether `worker` names a process of this host and process space that no longer runs. A
/// worker on another host or in another process space, a name without a pid or without a
/// process space (older names: their lease decides), or this very process are never
/// provably dead.
pub fn is_provably_dead(worker: &str) -> bool {
    let Some(space) = process_space() else {
        return false;
    };
    let here = Here {
        host: &this_host(),
        space,
        pid: std::process::id(),
    };
    is_dead_on(worker, &here, pid_alive)
}

/// Where the asking process runs.
struct Here<'a> {
    host: &'a str,
    space: &'a str,
    pid: u32,
}

fn is_dead_on(worker: &str, here: &Here<'_>, alive: impl Fn(u32) -> bool) -> bool {
    match parse_worker(worker) {
        Some(w) => {
            w.host == here.host && w.space == Some(here.space) && w.pid != here.pid && !alive(w.pid)
        }
        None => false,
    }
}

/// The last sign of life of a job's worker: its last check-in, else its start.
pub fn last_sign_of_life(job: &SyncJob) -> Option<Timestamp> {
    job.last_seen.or(job.started_at)
}

/// Whether the job's lease ran out: no check-in for longer than `timeout` (a claimed job with
/// no sign of life at all counts from its creation).
pub fn lease_expired(job: &SyncJob, now: Timestamp, timeout: Duration) -> bool {
    let Some(seen) = last_sign_of_life(job).or(job.created_at) else {
        return true;
    };
    let limit = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
    now.0 - seen.0 > limit
}

/// Why a job that holds (or held) a guard will never be ended by its worker, or `None` when
/// its worker may still be alive. Only `in_progress` and `canceling` jobs have a worker.
pub fn abandoned(job: &SyncJob, now: Timestamp, timeout: Duration) -> Option<String> {
    if !matches!(job.status, JobStatus::InProgress | JobStatus::Canceling) {
        return None;
    }
    let worker = job.worker_hostname.as_deref().unwrap_or("");
    if !worker.is_empty() && is_provably_dead(worker) {
        return Some(format!(
            "the worker '{worker}' that ran this job is gone (no process {} on this host)",
            parse_worker(worker).map(|w| w.pid).unwrap_or_default()
        ));
    }
    if lease_expired(job, now, timeout) {
        let since = last_sign_of_life(job)
            .map(|t| t.0.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| "its start".into());
        let who = if worker.is_empty() {
            String::new()
        } else {
            format!(" of worker '{worker}'")
        };
        return Some(format!(
            "the job{who} has not checked in since {since} (more than {}s)",
            timeout.as_secs()
        ));
    }
    None
}

/// What to do with a job whose cancel was requested: end it here (`Some(reason)`) when no
/// worker will: it was never claimed (`pending`, `suspended`), or its worker is gone.
pub fn cancel_completes_here(job: &SyncJob, now: Timestamp, timeout: Duration) -> Option<String> {
    match job.status {
        JobStatus::Pending | JobStatus::Suspended => {
            Some("the job was canceled before a worker ran it".into())
        }
        // Canceled before any worker claimed it (Elasticsearch may answer `canceling` for
        // a job no worker holds).
        JobStatus::Canceling if holds_no_guard(job) => {
            Some("the job was canceled before a worker ran it".into())
        }
        JobStatus::Canceling => abandoned(job, now, timeout),
        _ => None,
    }
}

/// After a cancel request: when no worker will ever end the job (see
/// [`cancel_completes_here`]), ends it `canceled` through `cleanup` (its counts kept, its
/// connector's last sync `canceled`), so nothing stays `canceling` for good. Returns the
/// job as it now is.
pub async fn complete_orphaned_cancel(
    control: &dyn ControlPlane,
    job_id: &str,
    timeout: Duration,
) -> Result<SyncJob, BackendError> {
    let job = control.get_sync_job(job_id).await?;
    let Some(reason) = cancel_completes_here(&job, Timestamp::now(), timeout) else {
        return Ok(job);
    };
    tracing::info!(job = %job.id, %reason, "ending the canceled job here: no worker will");
    if holds_no_guard(&job) {
        // Nobody runs it, so the connector's last sync is another job's: leave it.
        super::cleanup::end_orphaned_job(control, &job, JobStatus::Canceled, None).await?;
    } else {
        super::cleanup::end_abandoned_job(control, &job, JobStatus::Canceled, None).await?;
    }
    control.get_sync_job(job_id).await
}

/// A job no worker runs now and none ran since its last suspension: it holds no start guard.
fn holds_no_guard(job: &SyncJob) -> bool {
    match job.status {
        JobStatus::Pending | JobStatus::Suspended => true,
        JobStatus::Canceling => job.worker_hostname.is_none() && job.started_at.is_none(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobType, SyncJobConnector};

    fn job(status: JobStatus, worker: Option<&str>, seen_secs_ago: Option<i64>) -> SyncJob {
        let now = Timestamp::now().0;
        SyncJob {
            id: "j".into(),
            connector: SyncJobConnector::default(),
            job_type: JobType::Full,
            trigger_method: Default::default(),
            status,
            created_at: Some(Timestamp(now - chrono::Duration::hours(1))),
            worker_hostname: worker.map(str::to_string),
            started_at: Some(Timestamp(now - chrono::Duration::hours(1))),
            completed_at: None,
            cancelation_requested_at: None,
            canceled_at: None,
            last_seen: seen_secs_ago.map(|s| Timestamp(now - chrono::Duration::seconds(s))),
            indexed_document_count: 0,
            deleted_document_count: 0,
            total_document_count: None,
            indexed_document_volume: 0,
            metadata: Default::default(),
            error: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn worker_names_parse_as_host_pid_and_space() {
        let w = |host, pid, space| Some(WorkerName { host, pid, space });
        assert_eq!(parse_worker("box/42"), w("box", 42, None));
        assert_eq!(parse_worker("a/b/7"), w("a/b", 7, None));
        assert_eq!(
            parse_worker("box/42@123.abcd"),
            w("box", 42, Some("123.abcd"))
        );
        assert_eq!(parse_worker("a@b/42"), w("a@b", 42, None));
        assert_eq!(parse_worker("box/42@"), None);
        assert_eq!(parse_worker("box"), None);
        assert_eq!(parse_worker("box/0"), None);
        assert_eq!(parse_worker("/42"), None);
        assert_eq!(parse_worker("box/x"), None);
        let name = worker_name();
        let ours = parse_worker(&name).expect("our own name parses");
        assert_eq!(
            (ours.host, ours.pid, ours.space),
            (this_host().as_str(), std::process::id(), process_space())
        );
    }

    #[test]
    fn only_a_gone_process_of_this_host_and_space_is_dead() {
        let dead = |_| false;
        let alive = |_| true;
        let here = Here {
            host: "box",
            space: "9.abc",
            pid: 1,
        };
        assert!(is_dead_on("box/42@9.abc", &here, dead));
        assert!(!is_dead_on("box/42@9.abc", &here, alive));
        assert!(!is_dead_on("other/42@9.abc", &here, dead), "another host");
        assert!(
            !is_dead_on("box/42@8.abc", &here, dead),
            "another pid namespace on a host of the same name"
        );
        assert!(!is_dead_on("box/42@9.abd", &here, dead), "another boot");
        assert!(
            !is_dead_on("box/42", &here, dead),
            "an older name without a space: its lease decides"
        );
        assert!(!is_dead_on("box/1@9.abc", &here, dead), "this process");
        assert!(
            !is_dead_on("box", &here, dead),
            "no pid (the Python service)"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_reaped_child_is_not_alive_and_we_are() {
        assert!(
            process_space().is_some(),
            "linux has a pid namespace and a boot id"
        );
        assert!(pid_alive(std::process::id()));
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        assert!(!pid_alive(pid));
        assert!(is_provably_dead(&worker_name_for(pid)));
        // The same dead pid named the older way, or from another pid namespace: not provably
        // dead (a container sharing the hostname may run it).
        assert!(!is_provably_dead(&format!("{}/{pid}", this_host())));
        assert!(!is_provably_dead(&format!(
            "{}/{pid}@1.00000000",
            this_host()
        )));
        assert!(!is_provably_dead(&worker_name()));
    }

    #[test]
    fn the_lease_runs_from_the_last_check_in() {
        let now = Timestamp::now();
        let five = Duration::from_secs(300);
        assert!(!lease_expired(
            &job(JobStatus::InProgress, None, Some(10)),
            now,
            five
        ));
        assert!(lease_expired(
            &job(JobStatus::InProgress, None, Some(301)),
            now,
            five
        ));
        // No check-in yet: the start counts (an hour ago here).
        assert!(lease_expired(
            &job(JobStatus::InProgress, None, None),
            now,
            five
        ));
        let mut fresh = job(JobStatus::InProgress, None, None);
        fresh.started_at = Some(now);
        assert!(!lease_expired(&fresh, now, five));
    }

    #[test]
    fn abandoned_names_why_and_spares_live_jobs() {
        let now = Timestamp::now();
        let five = Duration::from_secs(300);
        let live = job(JobStatus::InProgress, Some("elsewhere/9"), Some(5));
        assert_eq!(abandoned(&live, now, five), None);
        let idle = job(JobStatus::Canceling, Some("elsewhere/9"), Some(900));
        let reason = abandoned(&idle, now, five).expect("idle");
        assert!(
            reason.contains("elsewhere/9") && reason.contains("checked in"),
            "{reason}"
        );
        let done = job(JobStatus::Completed, Some("elsewhere/9"), Some(900));
        assert_eq!(abandoned(&done, now, five), None);
    }

    #[test]
    fn a_cancel_completes_here_only_without_a_live_worker() {
        let now = Timestamp::now();
        let five = Duration::from_secs(300);
        assert!(cancel_completes_here(&job(JobStatus::Pending, None, None), now, five).is_some());
        assert!(cancel_completes_here(&job(JobStatus::Suspended, None, None), now, five).is_some());
        let live = job(JobStatus::Canceling, Some("elsewhere/9"), Some(5));
        assert_eq!(cancel_completes_here(&live, now, five), None);
        let idle = job(JobStatus::Canceling, Some("elsewhere/9"), Some(900));
        assert!(cancel_completes_here(&idle, now, five).is_some());
        let running = job(JobStatus::InProgress, Some("elsewhere/9"), Some(900));
        assert_eq!(cancel_completes_here(&running, now, five), None);
    }
}
