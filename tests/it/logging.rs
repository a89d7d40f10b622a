//! Logging end to end, in a process of its own (`own_process`) because `init` installs the
//! process-wide subscriber once: events reach the rolling file and the in-memory tail, filtered by level,
//! and never the terminal.

use syncdeck::logging::{self, LoggingError};

#[test]
fn init_writes_filtered_events_to_the_file_and_the_tail() {
    if crate::support::own_process::ran_in_child(
        module_path!(),
        "init_writes_filtered_events_to_the_file_and_the_tail",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("state/logs");
    let guard = logging::init(&log_dir, Some("info")).unwrap();

    tracing::trace!("marker-trace");
    tracing::debug!("marker-debug");
    tracing::info!(job = "j-1", "marker-info");
    tracing::warn!("marker-warn");
    tracing::error!("marker-error");

    let tail = guard.tail().lines();
    assert_eq!(tail.len(), 3, "{tail:?}");
    assert!(
        tail[0].contains("INFO") && tail[0].contains("marker-info"),
        "{tail:?}"
    );
    assert!(tail[0].contains("job=\"j-1\""), "{tail:?}");
    assert!(
        tail[1].contains("WARN") && tail[1].contains("marker-warn"),
        "{tail:?}"
    );
    assert!(
        tail[2].contains("ERROR") && tail[2].contains("marker-error"),
        "{tail:?}"
    );

    // A second set-up in the same process is refused, not a panic.
    let again = logging::init(&log_dir, None);
    assert!(
        matches!(again, Err(LoggingError::AlreadyInitialised)),
        "{again:?}"
    );

    // Dropping the guard flushes the background writer.
    drop(guard);
    let files: Vec<_> = std::fs::read_dir(&log_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with("syncdeck.") && name.ends_with(".log"),
        "{name}"
    );
    let text = std::fs::read_to_string(&files[0]).unwrap();
    for shown in ["marker-info", "marker-warn", "marker-error"] {
        assert!(text.contains(shown), "{shown} missing from {text}");
    }
    for hidden in ["marker-trace", "marker-debug"] {
        assert!(!text.contains(hidden), "{hidden} in {text}");
    }
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in the file: {text:?}"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log_dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
