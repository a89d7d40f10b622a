//! Secrets of an external program never reach the logs. In a process of its own: the
//! captured subscriber is thread-scoped, and tracing's callsite interest cache can skip a
//! scoped subscriber's events while other tests log on other threads at the same time.

use crate::external_util;

use external_util::{TOKEN, fake, run, source};
use serde_json::json;
use std::sync::{Arc, Mutex};
use syncdeck::secret::MASK;
use syncdeck::sources::{DataSource, SyncMode};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn the_programs_logs_stderr_and_errors_never_show_the_secret() {
    if crate::support::own_process::ran_in_child(
        module_path!(),
        "the_programs_logs_stderr_and_errors_never_show_the_secret",
    ) {
        return;
    }
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    for mode in ["normal", "trace", "crash"] {
        let mut src = source(&fake(json!({"mode": mode}), &[("stream", json!("users"))]));
        let _ = run(&mut src, SyncMode::Full).await;
    }
    let _ = source(&fake(json!({"mode": "fail"}), &[])).ping().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains(&format!("reading users with token {MASK}")),
        "the LOG message is logged: {logs}"
    );
    assert!(
        logs.contains(&format!("HTTP 401 {MASK}")),
        "the internal message at debug: {logs}"
    );
    assert!(
        logs.contains(&format!("stderr line 3 token={MASK}")),
        "stderr at debug: {logs}"
    );
    assert!(!logs.contains(TOKEN), "the secret leaked into the logs");
}
