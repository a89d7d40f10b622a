//! Field blocking and hashing (`exclude_fields`, `hash_fields`): the transform on its own
//! (paths, arrays, dotted keys, non-string values, no allocation when nothing matches, counted
//! by this binary's allocator), and end-to-end syncs of an NDJSON file with personal data into
//! the embedded backend and the stand-in: the index holds hashes and no excluded field, the
//! dead-letter queue likewise, and no tracing event of the run carries a raw value. Partial
//! updates (`SourceItem::Update`) are transformed as well.

use crate::engine_util;
use crate::support;

use async_trait::async_trait;
use engine_util::*;
use serde_json::{Value, json};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use support::{StandIn, StandInOptions};
use syncdeck::backend::embedded::EmbeddedBackend;
use syncdeck::backend::{ControlPlane, DocumentStore};
use syncdeck::config::EngineSettings;
use syncdeck::engine::runner::{Engine, JobEnd};
use syncdeck::engine::transform::{FieldTransform, WITHHELD, sha256_hex};
use syncdeck::model::{Configuration, DeadLetter, JobType, TriggerMethod};
use syncdeck::sources::{
    self, DataSource, Document, Fields, ItemSender, NdjsonFactory, SourceError, SourceFactory,
    SourceItem, SyncMode,
};
use tokio_util::sync::CancellationToken;

// ---- an allocator that counts this thread's allocations -------------------------------------

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded to the system allocator unchanged; counting touches only a
// const-initialised thread-local without a destructor.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

// ---- the transform on its own -----------------------------------------------------------------

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn fields(v: Value) -> Fields {
    Fields::from(v.as_object().cloned().expect("an object"))
}

fn hash(s: &str) -> String {
    sha256_hex(&json!(s))
}

#[test]
fn excluded_fields_are_dropped_and_hashed_ones_replaced_at_any_depth() {
    let t = FieldTransform::new(
        &strings(&["ssn", "profile.secret", "contacts.note"]),
        &strings(&["email", "profile.phone", "contacts.email"]),
    )
    .expect("a transform");
    let mut doc = fields(json!({
        "email": "ann@example.com", "ssn": "123", "name": "Ann",
        "profile": {"phone": "+47 555", "secret": "x", "city": "Oslo"},
        "contacts": [{"email": "bob@example.com", "note": "n"}, {"name": "no email"}, "not an object"],
        "user.email": "dotted@example.com",
    }));
    t.apply(&mut doc);
    assert_eq!(
        doc.into_value(),
        json!({
            "email": hash("ann@example.com"), "name": "Ann",
            "profile": {"phone": hash("+47 555"), "city": "Oslo"},
            "contacts": [{"email": hash("bob@example.com")}, {"name": "no email"}, "not an object"],
            "user.email": "dotted@example.com",
        })
    );
    // The field order is kept.
    let t = FieldTransform::new(&strings(&["b"]), &[]).unwrap();
    let mut doc = fields(json!({"a": 1, "b": 2, "c": 3, "d": 4}));
    t.apply(&mut doc);
    assert_eq!(doc.keys().collect::<Vec<_>>(), ["a", "c", "d"]);
}

#[test]
fn dotted_keys_match_as_well_as_nested_objects() {
    let t = FieldTransform::new(&[], &strings(&["user.email"])).unwrap();
    let mut doc = fields(json!({"user.email": "a@x.org", "user": {"email": "b@x.org"}}));
    t.apply(&mut doc);
    assert_eq!(
        doc.into_value(),
        json!({"user.email": hash("a@x.org"), "user": {"email": hash("b@x.org")}})
    );
}

#[test]
fn non_string_values_hash_their_json_text_and_nulls_stay_null() {
    let t = FieldTransform::new(&[], &strings(&["n", "o", "a", "z", "b"])).unwrap();
    let mut doc =
        fields(json!({"n": 42, "o": {"k": [1, 2]}, "a": ["x", "y"], "z": null, "b": true}));
    t.apply(&mut doc);
    let sha = |text: &str| sha256_hex(&Value::String(text.to_string()));
    assert_eq!(
        doc.into_value(),
        json!({"n": sha("42"), "o": sha(r#"{"k":[1,2]}"#), "a": sha(r#"["x","y"]"#), "z": null, "b": sha("true")})
    );
    // SHA-256 of "ann@example.com", computed independently.
    assert_eq!(
        hash("ann@example.com"),
        "71d4f55f72fa128dfb468a1a3901507c804b74316488744d769d7f4b16696476"
    );
}

#[test]
fn nothing_matching_allocates_nothing() {
    let t = FieldTransform::new(
        &strings(&["ssn", "a.b.c", "list.secret"]),
        &strings(&["email", "profile.phone"]),
    )
    .unwrap();
    let mut doc = fields(json!({
        "title": "t", "profile": {"city": "Oslo"}, "a": {"b": {"d": 1}}, "list": [{"x": 1}, {"y": 2}],
    }));
    let before = doc.clone();
    assert_eq!(allocations_during(|| t.apply(&mut doc)), 0);
    assert_eq!(doc, before);
    // The counter does count: a hash is a new string.
    let mut with_email = fields(json!({"email": "a@x.org"}));
    assert!(allocations_during(|| t.apply(&mut with_email)) > 0);
}

// ---- end to end -------------------------------------------------------------------------------

const RAW: [&str; 9] = [
    "ann@example.com",
    "123-45-6789",
    "+47 555 0101",
    "bob@example.com",
    "987-65-4321",
    "carl@example.com",
    "555-55-5555",
    "dina@example.com",
    "x@example.com",
];

const FILE: &str = r#"{"id":"p1","email":"ann@example.com","ssn":"123-45-6789","profile":{"phone":"+47 555 0101","city":"Oslo"},"value":1}
{"id":"p2","email":"bob@example.com","ssn":"987-65-4321","value":"oops","poison":true}
{"email":"carl@example.com","ssn":"555-55-5555","value":3}
{"id":"p4","email":"dina@example.com","value":4,"contacts":[{"email":"x@example.com","name":"X"}]}
not json at all, dina@example.com
"#;

fn settings() -> EngineSettings {
    EngineSettings {
        exclude_fields: strings(&["ssn"]),
        hash_fields: strings(&["email", "profile.phone", "contacts.email"]),
        ..fast_settings()
    }
}

fn write_file(dir: &Path) -> String {
    let path = dir.join("people.ndjson");
    std::fs::write(&path, FILE).expect("write the file");
    path.to_string_lossy().into_owned()
}

async fn sync(engine: &Engine, control: &dyn ControlPlane, path: &str) {
    let id = create_connector(
        control,
        "people",
        "people",
        &NdjsonFactory,
        json!({"path": path}),
    )
    .await;
    let job = control
        .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
        .await
        .expect("create job");
    let report = engine
        .run_job(&job, &CancellationToken::new())
        .await
        .expect("run job");
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    let c = report.counters;
    assert_eq!((c.indexed, c.dead_lettered), (2, 3), "{c:?}");
}

fn assert_indexed(p1: &Value, p4: &Value) {
    assert_eq!(p1["email"], hash("ann@example.com"));
    assert_eq!(
        p1["profile"],
        json!({"phone": hash("+47 555 0101"), "city": "Oslo"})
    );
    assert!(p1.get("ssn").is_none(), "{p1}");
    assert_eq!(p4["email"], hash("dina@example.com"));
    assert_eq!(
        p4["contacts"],
        json!([{"email": hash("x@example.com"), "name": "X"}])
    );
}

fn assert_dead_letters(letters: &[DeadLetter]) {
    assert_eq!(letters.len(), 3, "{letters:#?}");
    let by_id = |id: &str| {
        letters
            .iter()
            .find(|l| l.doc_id == id)
            .unwrap_or_else(|| panic!("no letter {id}: {letters:#?}"))
    };
    let p2 = &by_id("p2").document;
    assert_eq!(p2["email"], hash("bob@example.com"));
    assert!(p2.get("ssn").is_none(), "{p2}");
    // The line without an id is kept as text, transformed.
    let line3: Value =
        serde_json::from_str(by_id("line-3").document.as_str().expect("text")).expect("JSON text");
    assert_eq!(
        line3,
        json!({"email": hash("carl@example.com"), "value": 3})
    );
    // A line the transform cannot read is withheld.
    assert_eq!(by_id("line-5").document, json!(WITHHELD));
    let all = serde_json::to_string(letters).unwrap();
    for raw in RAW {
        assert!(
            !all.contains(raw),
            "'{raw}' is in the dead-letter queue: {all}"
        );
    }
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Runs `test` under a subscriber that records every event at every level; returns what was
/// logged meanwhile. The subscriber is the process-wide default, installed once: a scoped one
/// misses events from other threads (`spawn_blocking`) and races tracing's callsite interest
/// cache when other tests log at the same time. Captures run one at a time; events of other
/// tests running meanwhile only make the check stricter. Its callers run in a process of their
/// own (`support::own_process`): the one test binary has one global subscriber slot.
fn logged<F: std::future::Future<Output = ()>>(test: impl FnOnce() -> F) -> String {
    static BUFFER: std::sync::OnceLock<Buffer> = std::sync::OnceLock::new();
    static CAPTURE: Mutex<()> = Mutex::new(());
    let buffer = BUFFER.get_or_init(|| {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        buffer
    });
    let _one = CAPTURE.lock().unwrap_or_else(|p| p.into_inner());
    buffer.0.lock().unwrap().clear();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(test());
    buffer.text()
}

fn assert_no_raw_value_logged(logs: &str) {
    assert!(
        logs.contains("sync job finished"),
        "the subscriber saw the run: {logs}"
    );
    for raw in RAW {
        assert!(!logs.contains(raw), "'{raw}' was logged: {logs}");
    }
}

#[test]
fn personal_data_reaches_neither_the_embedded_index_nor_the_dlq_nor_the_logs() {
    if support::own_process::ran_in_child(
        module_path!(),
        "personal_data_reaches_neither_the_embedded_index_nor_the_dlq_nor_the_logs",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path());
    let logs = logged(|| async move {
        let backend = EmbeddedBackend::open_in_memory().expect("embedded backend");
        let mapping = json!({"properties": {"value": {"type": "long"}}});
        backend
            .ensure_index("people", Some(&mapping))
            .await
            .unwrap();
        let dlq = memory_dlq();
        let engine = engine_with(
            Arc::new(backend.clone()),
            Arc::new(backend.clone()),
            dlq.clone(),
            sources::builtin(),
            "w1",
            settings(),
            fast_breaker(),
        );
        sync(&engine, &backend, &path).await;
        let p1 = backend
            .get_document("people", "p1")
            .await
            .unwrap()
            .expect("p1");
        let p4 = backend
            .get_document("people", "p4")
            .await
            .unwrap()
            .expect("p4");
        assert_indexed(&p1, &p4);
        assert_dead_letters(&dead_letters(&dlq));
    });
    assert_no_raw_value_logged(&logs);
}

#[test]
fn personal_data_reaches_neither_the_stand_in_nor_the_dlq_nor_the_logs() {
    if support::own_process::ran_in_child(
        module_path!(),
        "personal_data_reaches_neither_the_stand_in_nor_the_dlq_nor_the_logs",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path());
    let logs = logged(|| async move {
        let standin = StandIn::start(StandInOptions {
            nodes: 1,
            kibana: false,
            ..Default::default()
        })
        .await;
        standin.faults().reject_field(Some("poison".into()));
        let es = es_backend(&standin.es_urls());
        let dlq = memory_dlq();
        let engine = engine_with(
            es.clone(),
            es.clone(),
            dlq.clone(),
            sources::builtin(),
            "w1",
            settings(),
            fast_breaker(),
        );
        sync(&engine, es.as_ref(), &path).await;
        let docs = standin.index_docs("people");
        let doc = |id: &str| {
            docs.iter()
                .find(|(d, _)| d == id)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| panic!("no {id}"))
        };
        assert_indexed(&doc("p1"), &doc("p4"));
        assert_eq!(docs.len(), 2);
        let everything = serde_json::to_string(&docs).unwrap();
        for raw in RAW {
            assert!(!everything.contains(raw), "'{raw}' reached the index");
        }
        assert_dead_letters(&dead_letters(&dlq));
    });
    assert_no_raw_value_logged(&logs);
}

/// An incremental source that sends partial updates (`SourceItem::Update`).
struct UpdatesFactory;

impl SourceFactory for UpdatesFactory {
    fn service_type(&self) -> &'static str {
        "updates"
    }

    fn display_name(&self) -> &'static str {
        "Partial updates"
    }

    fn default_configuration(&self) -> Configuration {
        Configuration::default()
    }

    fn supports_incremental(&self) -> bool {
        true
    }

    fn create(&self, _: &Configuration) -> Result<Box<dyn DataSource>, SourceError> {
        Ok(Box::new(Updates))
    }
}

struct Updates;

#[async_trait]
impl DataSource for Updates {
    async fn ping(&mut self) -> Result<(), SourceError> {
        Ok(())
    }

    async fn run(&mut self, _: SyncMode, out: ItemSender) -> Result<Option<Value>, SourceError> {
        let fields =
            fields(json!({"email": "ann@example.com", "ssn": "123-45-6789", "name": "Ann"}));
        out.send(SourceItem::Update(Document::new("u1", fields)))
            .await?;
        Ok(Some(json!("done")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_updates_are_transformed_too() {
    let backend = EmbeddedBackend::open_in_memory().expect("embedded backend");
    let mut registry = sources::builtin();
    registry.register(Arc::new(UpdatesFactory));
    let dlq = memory_dlq();
    let engine = engine_with(
        Arc::new(backend.clone()),
        Arc::new(backend.clone()),
        dlq,
        registry,
        "w1",
        settings(),
        fast_breaker(),
    );
    let id = create_connector(&backend, "upd", "upd", &UpdatesFactory, json!({})).await;
    let job = backend
        .create_sync_job(&id, JobType::Incremental, TriggerMethod::OnDemand)
        .await
        .expect("create job");
    let report = engine
        .run_job(&job, &CancellationToken::new())
        .await
        .expect("run job");
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    let c = report.counters;
    // An upsert of a new id counts as indexed.
    assert_eq!((c.seen, c.indexed + c.updated), (1, 1), "{c:?}");
    let stored = backend
        .get_document("upd", "u1")
        .await
        .unwrap()
        .expect("u1");
    assert_eq!(
        stored,
        json!({"email": hash("ann@example.com"), "name": "Ann"})
    );
}
