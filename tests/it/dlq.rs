//! The dead-letter queue on a real file: persistence, permissions, two stores sharing one file,
//! a process that dies abruptly after its commits, and the life of an entry per cluster
//! (resolved by a later write, reopened by a later failure, history within the bound).

use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use syncdeck::engine::dlq::{DeadLetterStore, DlqFilter, NewDeadLetter, Resolver};
use syncdeck::model::DeadLetterState;

/// Set in the child process of `committed_entries_survive_an_abort`: the database to write.
const CHILD_ENV: &str = "SYNCDECK_DLQ_CRASH_CHILD";
const CHILD_BATCHES: usize = 20;
const CHILD_BATCH_SIZE: usize = 25;

fn entry(connector: &str, doc_id: &str) -> NewDeadLetter {
    NewDeadLetter {
        connector_id: connector.to_string(),
        job_id: "job-1".to_string(),
        index: "search-docs".to_string(),
        doc_id: doc_id.to_string(),
        document: json!({"id": doc_id, "body": "x".repeat(64)}).to_string(),
        error_type: "document_parsing_exception".to_string(),
        reason: "failed to parse".to_string(),
        status: Some(400),
    }
}

fn total(path: &Path) -> u64 {
    DeadLetterStore::open(path, u64::MAX)
        .unwrap()
        .count(&DlqFilter::default())
        .unwrap()
}

#[test]
fn entries_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("dlq.sqlite");
    let id = {
        let dlq = DeadLetterStore::open(&path, 10).unwrap();
        dlq.append_batch(&[entry("c1", "a"), entry("c1", "b")])
            .unwrap()[0]
    };
    let dlq = DeadLetterStore::open(&path, 10).unwrap();
    assert_eq!(dlq.count(&DlqFilter::default()).unwrap(), 2);
    let a = dlq.get(id).unwrap().unwrap();
    assert_eq!(a.doc_id, "a");
    assert_eq!(a.document["id"], "a");
    // The dedupe key survives too.
    dlq.append_batch(&[entry("c1", "a")]).unwrap();
    assert_eq!(dlq.get(id).unwrap().unwrap().attempts, 2);
    assert_eq!(dlq.stats().unwrap().total, 2);
}

#[cfg(unix)]
#[test]
fn the_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dlq.sqlite");
    let dlq = DeadLetterStore::open(&path, 10).unwrap();
    dlq.append_batch(&[entry("c1", "a")]).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    let wal = dir.path().join("dlq.sqlite-wal");
    let wal_mode = std::fs::metadata(&wal).unwrap().permissions().mode() & 0o777;
    assert_eq!(wal_mode, 0o600, "wal mode {wal_mode:o}");
}

#[test]
fn an_unwritable_location_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "not a directory").unwrap();
    let path = file.join("dlq.sqlite");
    let err = DeadLetterStore::open(&path, 10).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn two_stores_on_one_file_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dlq.sqlite");
    drop(DeadLetterStore::open(&path, u64::MAX).unwrap());
    let writers: Vec<_> = ["c1", "c2"]
        .into_iter()
        .map(|connector| {
            let path = path.clone();
            std::thread::spawn(move || {
                let dlq = DeadLetterStore::open(&path, u64::MAX).unwrap();
                for batch in 0..20 {
                    let entries: Vec<_> = (0..10)
                        .map(|i| entry(connector, &format!("doc-{batch}-{i}")))
                        .collect();
                    assert_eq!(dlq.append_batch(&entries).unwrap().len(), 10);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let dlq = DeadLetterStore::open(&path, u64::MAX).unwrap();
    let stats = dlq.stats().unwrap();
    assert_eq!(stats.total, 400);
    assert_eq!(
        stats.by_connector,
        [("c1".to_string(), 200), ("c2".to_string(), 200)]
    );
    assert_eq!(dlq.count(&DlqFilter::default()).unwrap(), 400);
}

#[test]
fn the_bound_holds_across_two_stores() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dlq.sqlite");
    let first = DeadLetterStore::open(&path, 5).unwrap();
    let second = DeadLetterStore::open(&path, 5).unwrap();
    first
        .append_batch(&[entry("c1", "a"), entry("c1", "b"), entry("c1", "c")])
        .unwrap();
    assert!(
        second
            .append_batch(&[entry("c2", "a"), entry("c2", "b"), entry("c2", "c")])
            .is_err()
    );
    second
        .append_batch(&[entry("c2", "a"), entry("c2", "b")])
        .unwrap();
    assert_eq!(total(&path), 5);
}

/// The child half of `committed_entries_survive_an_abort`: does nothing unless re-executed by it.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dlq = DeadLetterStore::open(Path::new(&path), u64::MAX).unwrap();
    for batch in 0..CHILD_BATCHES {
        let entries: Vec<_> = (0..CHILD_BATCH_SIZE)
            .map(|i| entry("c1", &format!("doc-{batch}-{i}")))
            .collect();
        dlq.append_batch(&entries).unwrap();
    }
    // No destructors, no checkpoint, no clean close: the WAL holds the commits.
    std::process::abort();
}

#[test]
fn committed_entries_survive_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dlq.sqlite");
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &crate::support::own_process::test_name(module_path!(), "crash_child"),
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_ENV, &path)
        .output()
        .unwrap()
        .status;
    // The child must have died by abort, not finished (or failed) its test.
    assert!(!status.success(), "the child exited normally: {status}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(6),
            "the child did not abort: {status}"
        );
    }
    assert!(dir.path().join("dlq.sqlite-wal").exists());
    assert_eq!(total(&path), (CHILD_BATCHES * CHILD_BATCH_SIZE) as u64);
}

fn bound(path: &Path, max: u64, uuid: &str) -> DeadLetterStore {
    let dlq = DeadLetterStore::open(path, max).unwrap();
    dlq.bind(&syncdeck::backend::ClusterId {
        uuid: uuid.to_string(),
        name: format!("name of {uuid}"),
    });
    dlq
}

fn open_of(uuid: &str) -> DlqFilter {
    DlqFilter {
        cluster: Some(uuid.to_string()),
        ..Default::default()
    }
}

/// Any id resolves, whatever characters it holds (the ids travel to SQLite as a JSON array),
/// and a list longer than any one statement used to carry resolves whole.
#[test]
fn resolving_matches_ids_exactly_whatever_their_characters_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let dlq = bound(&dir.path().join("dlq.sqlite"), 10_000, "cluster-a");
    let odd = [
        "with \"quotes\"",
        "back\\slash",
        "tab\tand\nnewline",
        "nul\u{0}inside",
        "ünïcödé ✓ 𝄞",
        "[\"looks\", \"like json\"]",
        "  spaces  ",
        "%_like_%",
        "O'Brien",
        "123",
        "1e3",
        "-0",
        "true",
        "null",
    ];
    let many: Vec<String> = (0..1_500).map(|i| format!("doc-{i}")).collect();
    let entries: Vec<_> = odd
        .iter()
        .map(|id| entry("c1", id))
        .chain(many.iter().map(|id| entry("c1", id)))
        .collect();
    dlq.append_batch(&entries).unwrap();

    // Near misses resolve nothing.
    let near: Vec<String> = [
        "with \"quotes\" ",
        "nul",
        "ünïcödé",
        "%",
        "doc-1500",
        "DOC-1",
        "o'brien",
        "123.0",
        "1000",
        "0",
        "",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(
        dlq.resolve_documents("c1", "search-docs", &near, "no")
            .unwrap(),
        0
    );

    let mut ids: Vec<String> = odd.iter().map(|id| id.to_string()).collect();
    // Every other one of the many, and one twice.
    ids.extend(many.iter().step_by(2).cloned());
    ids.push("doc-0".to_string());
    let resolved = dlq
        .resolve_documents("c1", "search-docs", &ids, "indexed")
        .unwrap();
    assert_eq!(resolved, (odd.len() + 750) as u64);
    let open: std::collections::HashSet<String> = dlq
        .list(&DlqFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| e.doc_id)
        .collect();
    let expected: std::collections::HashSet<String> =
        many.iter().skip(1).step_by(2).cloned().collect();
    assert_eq!(open, expected);
}

#[test]
fn resolving_touches_only_the_bound_cluster_and_that_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dlq.sqlite");
    let a = bound(&path, 100, "cluster-a");
    let b = bound(&path, 100, "cluster-b");
    a.append_batch(&[entry("c1", "x"), entry("c1", "y")])
        .unwrap();
    let mut other_index = entry("c1", "x");
    other_index.index = "search-other".to_string();
    a.append_batch(&[other_index]).unwrap();
    b.append_batch(&[entry("c1", "x")]).unwrap();
    assert!(a.has_open("c1", "search-docs").unwrap());
    assert!(!a.has_open("c1", "search-none").unwrap());
    assert!(!a.has_open("c2", "search-docs").unwrap());

    let resolved = a
        .resolve_documents(
            "c1",
            "search-docs",
            &["x".to_string(), "z".to_string()],
            "indexed by job j",
        )
        .unwrap();
    assert_eq!(resolved, 1);
    let open: Vec<(String, String)> = a
        .list(&DlqFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| (e.origin.cluster_uuid, format!("{}/{}", e.index, e.doc_id)))
        .collect();
    assert_eq!(open.len(), 3, "{open:?}");
    assert!(!open.contains(&("cluster-a".into(), "search-docs/x".into())));
    assert!(open.contains(&("cluster-b".into(), "search-docs/x".into())));
    assert!(open.contains(&("cluster-a".into(), "search-other/x".into())));
    // Resolving again finds nothing open.
    assert_eq!(
        a.resolve_documents("c1", "search-docs", &["x".to_string()], "again")
            .unwrap(),
        0
    );
    let history = a
        .list(&DlqFilter {
            include_closed: true,
            ..open_of("cluster-a")
        })
        .unwrap();
    let x = history
        .iter()
        .find(|e| e.index == "search-docs" && e.doc_id == "x")
        .unwrap();
    assert_eq!(x.state, DeadLetterState::Resolved);
    assert_eq!(x.resolution.as_deref(), Some("indexed by job j"));
    assert_eq!(
        a.stats().unwrap().total,
        3,
        "the bound counts open entries only"
    );
}

/// A write by one connector resolves its own entry for a document, never another
/// connector's entry for the same id in the same index (that one is its own version).
#[tokio::test]
async fn a_write_resolves_only_its_own_connectors_entry_for_a_document() {
    let dir = tempfile::tempdir().unwrap();
    let dlq = Arc::new(bound(&dir.path().join("dlq.sqlite"), 100, "c"));
    let ids = dlq
        .append_batch(&[entry("c1", "shared"), entry("c2", "shared")])
        .unwrap();
    let resolver = Resolver::new(dlq.clone(), "c1", "search-docs", "job-1");
    assert!(resolver.is_active().await);
    resolver
        .written(vec!["shared".to_string()], Vec::new())
        .await;
    assert_eq!(
        dlq.get(ids[0]).unwrap().unwrap().state,
        DeadLetterState::Resolved
    );
    let other = dlq.get(ids[1]).unwrap().unwrap();
    assert_eq!(other.state, DeadLetterState::Open, "{other:?}");
    // A sink without a connector (a hand retry closes what it sends itself) resolves nothing.
    let anonymous = Resolver::new(dlq.clone(), "", "search-docs", "");
    assert!(!anonymous.is_active().await);
    anonymous
        .written(vec!["shared".to_string()], Vec::new())
        .await;
    assert_eq!(
        dlq.get(ids[1]).unwrap().unwrap().state,
        DeadLetterState::Open
    );
}

/// What the sink does after each answered batch.
async fn after_batch(resolver: &Resolver, indexed: &[&str], deleted: &[&str]) {
    if resolver.is_active().await {
        let owned = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        resolver.written(owned(indexed), owned(deleted)).await;
    }
}

/// An entry that appears while the job runs (here: after the sink first asked, with nothing
/// open then) is resolved by a later write of its document, as the sink asks after every
/// batch.
#[tokio::test]
async fn the_resolver_sees_entries_that_appear_during_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let dlq = Arc::new(bound(&dir.path().join("dlq.sqlite"), 100, "c"));
    let resolver = Resolver::new(dlq.clone(), "c1", "search-docs", "job-1");
    after_batch(&resolver, &["first"], &[]).await;
    // The job's own update of `late` is dead-lettered, then its delete goes through.
    let late = dlq.append_batch(&[entry("c1", "late")]).unwrap()[0];
    after_batch(&resolver, &[], &["late"]).await;
    let closed = dlq.get(late).unwrap().unwrap();
    assert_eq!(closed.state, DeadLetterState::Resolved, "{closed:?}");
    assert_eq!(
        closed.resolution.as_deref(),
        Some("deleted by sync job 'job-1'")
    );
}

#[test]
fn a_document_failing_after_resolution_opens_a_new_entry_beside_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let dlq = bound(&dir.path().join("dlq.sqlite"), 100, "c");
    let first = dlq.append_batch(&[entry("c1", "a")]).unwrap()[0];
    dlq.resolve_documents("c1", "search-docs", &["a".to_string()], "indexed")
        .unwrap();
    let second = dlq.append_batch(&[entry("c1", "a")]).unwrap()[0];
    assert_ne!(first, second);
    let fresh = dlq.get(second).unwrap().unwrap();
    assert_eq!((fresh.attempts, fresh.state), (1, DeadLetterState::Open));
    assert_eq!(
        dlq.get(first).unwrap().unwrap().state,
        DeadLetterState::Resolved
    );
    // The open one still dedupes.
    assert_eq!(dlq.append_batch(&[entry("c1", "a")]).unwrap()[0], second);
}

#[test]
fn history_is_kept_within_the_bound_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let dlq = bound(&dir.path().join("dlq.sqlite"), 2, "c");
    for doc in ["a", "b", "c"] {
        let id = dlq.append_batch(&[entry("c1", doc)]).unwrap()[0];
        std::thread::sleep(std::time::Duration::from_millis(3));
        dlq.close(&[id], DeadLetterState::Superseded, "newer in the index")
            .unwrap();
    }
    let history: Vec<String> = dlq
        .list(&DlqFilter {
            include_closed: true,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|e| e.doc_id)
        .collect();
    assert_eq!(history, ["c", "b"], "the oldest closed entry went");
    assert_eq!(dlq.count(&DlqFilter::default()).unwrap(), 0);
    // History never blocks new dead letters.
    dlq.append_batch(&[entry("c1", "d"), entry("c1", "e")])
        .unwrap();
}
