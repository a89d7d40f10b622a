//! The built-in sources end to end through their factories: generator determinism, sizes,
//! poison, pacing and back-pressure; ndjson with bad lines; directory listing, globs, lazy
//! extraction, the size limit and incremental syncs.

use serde_json::{Value, json};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use syncdeck::model::Configuration;
use syncdeck::sources::{
    DataSource, Document, Fields, ItemSender, POISON_VALUE, SourceError, SourceFactory, SourceItem,
    SyncMode, builtin,
};

fn factory(service_type: &str) -> Arc<dyn SourceFactory> {
    builtin().get(service_type).unwrap()
}

fn config(service_type: &str, values: &[(&str, Value)]) -> Configuration {
    let mut config = factory(service_type).default_configuration();
    for (key, value) in values {
        config
            .0
            .get_mut(*key)
            .unwrap_or_else(|| panic!("no field {key}"))
            .value = value.clone();
    }
    config
}

fn source(service_type: &str, values: &[(&str, Value)]) -> Box<dyn DataSource> {
    let config = config(service_type, values);
    factory(service_type).validate(&config).unwrap();
    factory(service_type).create(&config).unwrap()
}

/// Runs a source to the end, collecting every item.
async fn run(
    source: &mut Box<dyn DataSource>,
    mode: SyncMode,
) -> (Vec<SourceItem>, Result<Option<Value>, SourceError>) {
    let (tx, mut rx) = ItemSender::channel(16);
    let drain = async move {
        let mut items = Vec::new();
        while let Some(item) = rx.recv().await {
            items.push(item);
        }
        items
    };
    let (result, items) = tokio::join!(source.run(mode, tx), drain);
    (items, result)
}

fn docs(items: Vec<SourceItem>) -> Vec<Document> {
    items
        .into_iter()
        .map(|item| match item {
            SourceItem::Upsert(doc) => doc,
            other => panic!("expected an upsert, got {other:?}"),
        })
        .collect()
}

fn ids(docs: &[Document]) -> Vec<&str> {
    docs.iter().map(|d| d.id.as_str()).collect()
}

// ---------------------------------------------------------------- generator

#[tokio::test]
async fn generator_is_deterministic_and_respects_count() {
    let settings = [
        ("count", json!(50)),
        ("seed", json!(1)),
        ("doc_bytes", json!(300)),
    ];
    let mut a = source("generator", &settings);
    assert_eq!(a.total_hint().await, Some(50));
    let (first, result) = run(&mut a, SyncMode::Full).await;
    assert_eq!(result.unwrap(), None);
    let first = docs(first);
    let expected: Vec<String> = (0..50).map(|i| format!("doc-{i}")).collect();
    assert_eq!(ids(&first), expected);

    let mut b = source("generator", &settings);
    let second = docs(run(&mut b, SyncMode::Full).await.0);
    for (x, y) in first.iter().zip(&second) {
        assert_eq!(x.fields, y.fields);
        assert_eq!(x.timestamp, y.timestamp);
    }
    let mut other = source(
        "generator",
        &[
            ("count", json!(50)),
            ("seed", json!(2)),
            ("doc_bytes", json!(300)),
        ],
    );
    let third = docs(run(&mut other, SyncMode::Full).await.0);
    assert_eq!(ids(&third), expected, "ids do not depend on the seed");
    assert_ne!(first[0].fields["body"], third[0].fields["body"]);
}

#[tokio::test]
async fn generator_documents_are_about_doc_bytes_long() {
    for doc_bytes in [256usize, 1024, 8192] {
        let mut generator = source(
            "generator",
            &[("count", json!(200)), ("doc_bytes", json!(doc_bytes))],
        );
        for doc in docs(run(&mut generator, SyncMode::Full).await.0) {
            // The source line as the engine sends it: `id` and `_timestamp` (the document's
            // stamp, not one of its fields) included.
            let mut body = doc.fields.clone();
            body.insert("id", Value::String(doc.id.clone()));
            let stamp = doc
                .timestamp
                .clone()
                .expect("a generated document is stamped");
            body.insert("_timestamp", Value::String(stamp));
            let size = serde_json::to_vec(&body).unwrap().len() as f64;
            let ratio = size / doc_bytes as f64;
            assert!(
                // `id` adds a few bytes; the exact size is the generator's unit test's.
                (0.95..=1.1).contains(&ratio),
                "{} is {size} bytes for doc_bytes {doc_bytes}",
                doc.id
            );
        }
    }
}

#[tokio::test]
async fn generator_poisons_exactly_every_nth_document() {
    let mut generator = source(
        "generator",
        &[("count", json!(30)), ("poison_every", json!(7))],
    );
    let poisoned: Vec<String> = docs(run(&mut generator, SyncMode::Full).await.0)
        .into_iter()
        .filter(|doc| match &doc.fields["value"] {
            Value::Number(_) => false,
            Value::String(s) => s == POISON_VALUE,
            other => panic!("unexpected value {other}"),
        })
        .map(|doc| doc.id)
        .collect();
    assert_eq!(poisoned, ["doc-6", "doc-13", "doc-20", "doc-27"]);

    let mut clean = source("generator", &[("count", json!(30))]);
    assert!(
        docs(run(&mut clean, SyncMode::Full).await.0)
            .iter()
            .all(|d| d.fields["value"].is_i64())
    );
}

#[tokio::test(start_paused = true)]
async fn generator_honours_its_rate_in_virtual_time() {
    let mut generator = source(
        "generator",
        &[
            ("count", json!(1000)),
            ("rate", json!(100)),
            ("doc_bytes", json!(128)),
        ],
    );
    let (tx, mut rx) = ItemSender::channel(64);
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let reader = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let running = tokio::spawn(async move { generator.run(SyncMode::Full, tx).await });

    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_two = received.load(Ordering::SeqCst);
    assert!(
        (180..=220).contains(&after_two),
        "{after_two} documents after 2 s at 100/s"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_five = received.load(Ordering::SeqCst);
    assert!(
        (480..=520).contains(&after_five),
        "{after_five} documents after 5 s at 100/s"
    );

    running.abort();
    let _ = running.await;
    reader.await.unwrap();
}

#[tokio::test]
async fn generator_waits_while_the_channel_is_full() {
    let mut generator = source("generator", &[("count", json!(100))]);
    let (tx, mut rx) = ItemSender::channel(4);
    let mut running = Box::pin(generator.run(SyncMode::Full, tx));
    let mut cx = Context::from_waker(Waker::noop());

    assert!(running.as_mut().poll(&mut cx).is_pending());
    assert_eq!(rx.len(), 4, "the source filled the channel and stopped");
    assert!(
        running.as_mut().poll(&mut cx).is_pending(),
        "still waiting, not producing"
    );
    assert_eq!(rx.len(), 4);

    let mut seen = Vec::new();
    let outcome = loop {
        match rx.try_recv() {
            Ok(SourceItem::Upsert(doc)) => seen.push(doc.id),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => {}
        }
        match running.as_mut().poll(&mut cx) {
            Poll::Ready(result) => break result,
            Poll::Pending => assert!(rx.len() <= 4, "never more than 4 queued"),
        }
        // Back to the runtime now and then, so tokio's cooperative budget is renewed.
        tokio::task::yield_now().await;
    };
    assert_eq!(outcome.unwrap(), None);
    while let Ok(SourceItem::Upsert(doc)) = rx.try_recv() {
        seen.push(doc.id);
    }
    assert_eq!(seen.len(), 100);
    assert_eq!(seen[99], "doc-99");
}

#[tokio::test]
async fn generator_stops_when_the_engine_goes_away() {
    let mut generator = source("generator", &[("count", json!(100))]);
    let (tx, rx) = ItemSender::channel(4);
    drop(rx);
    assert!(matches!(
        generator.run(SyncMode::Full, tx).await,
        Err(SourceError::Stopped)
    ));
}

#[test]
fn generator_marks_its_token_sensitive() {
    let config = factory("generator").default_configuration();
    let token = config.get("api_token").unwrap();
    assert!(token.sensitive && !token.required);
    for (key, field) in config.fields_in_order() {
        assert!(
            !field.label.is_empty() && field.tooltip.is_some() && field.order.is_some(),
            "{key}"
        );
    }
}

/// Throughput of document generation alone, for the report: `cargo test --release --test
/// it sources::generator_throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn generator_throughput() {
    let count = 1_000_000u64;
    let mut generator = source(
        "generator",
        &[("count", json!(count)), ("doc_bytes", json!(1024))],
    );
    let (tx, mut rx) = ItemSender::channel(1024);
    let reader = tokio::spawn(async move {
        let mut n = 0u64;
        while rx.recv().await.is_some() {
            n += 1;
        }
        n
    });
    let start = std::time::Instant::now();
    generator.run(SyncMode::Full, tx).await.unwrap();
    let n = reader.await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "generator: {n} docs of ~1 KiB in {secs:.2} s = {:.0} docs/s",
        n as f64 / secs
    );

    // The generation alone, without the channel.
    let alone = syncdeck::sources::GeneratorSource::new(syncdeck::sources::GeneratorSettings {
        count,
        doc_bytes: 1024,
        seed: 42,
        rate: 0,
        poison_every: 0,
    });
    // CPU time of this thread (Linux), so a busy machine does not skew the figure.
    let cpu_ns = || {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
    };
    let (start, cpu_start) = (std::time::Instant::now(), cpu_ns());
    let fields: usize = (0..count).map(|i| alone.document(i).fields.len()).sum();
    let wall = start.elapsed().as_secs_f64() * 1e9 / count as f64;
    let cpu = cpu_ns().zip(cpu_start).map_or("n/a".to_string(), |(b, a)| {
        format!("{:.0}", (b - a) / count as f64)
    });
    println!("generation alone: {wall:.0} ns/doc wall, {cpu} ns/doc CPU ({fields} fields)");
}

// ---------------------------------------------------------------- ndjson

#[tokio::test]
async fn ndjson_yields_documents_and_invalid_lines_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.ndjson");
    let lines = [
        r#"{"id": "a", "title": "first"}"#,
        "",
        "this is not json",
        r#"{"name": "no id here"}"#,
        "[1, 2, 3]",
        r#"{"id": 7, "title": "numeric id"}"#,
        "   ",
        r#"{"id": "z"}"#,
    ];
    std::fs::write(&path, lines.join("\n")).unwrap();
    let mut src = source("ndjson", &[("path", json!(path.to_string_lossy()))]);
    src.ping().await.unwrap();
    assert_eq!(src.total_hint().await, None);
    let (items, result) = run(&mut src, SyncMode::Full).await;
    assert_eq!(result.unwrap(), None);

    let summary: Vec<String> = items
        .iter()
        .map(|item| match item {
            SourceItem::Upsert(doc) => format!(
                "doc {} {}",
                doc.id,
                doc.fields.get("title").unwrap_or(&Value::Null)
            ),
            SourceItem::Invalid { id, reason, raw } => {
                assert!(
                    reason.starts_with(&format!("{}:", id.replace('-', " "))),
                    "{reason}"
                );
                format!("invalid {id} {raw}")
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            r#"doc a "first""#,
            r#"invalid line-3 "this is not json""#,
            r#"invalid line-4 "{\"name\": \"no id here\"}""#,
            r#"invalid line-5 "[1, 2, 3]""#,
            r#"doc 7 "numeric id""#,
            "doc z null",
        ]
    );
}

#[tokio::test]
async fn ndjson_reads_the_configured_id_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.ndjson");
    std::fs::write(
        &path,
        "{\"key\": \"k1\", \"id\": \"ignored\"}\r\n{\"id\": \"only-id\"}\n",
    )
    .unwrap();
    let mut src = source(
        "ndjson",
        &[
            ("path", json!(path.to_string_lossy())),
            ("id_field", json!("key")),
        ],
    );
    let (items, _) = run(&mut src, SyncMode::Full).await;
    assert!(matches!(&items[0], SourceItem::Upsert(doc) if doc.id == "k1"));
    assert!(
        matches!(&items[1], SourceItem::Invalid { reason, .. } if reason == "line 2: no 'key' field")
    );
}

#[tokio::test]
async fn ndjson_names_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.ndjson");
    let mut src = source("ndjson", &[("path", json!(path.to_string_lossy()))]);
    let err = src.ping().await.unwrap_err();
    assert!(matches!(err, SourceError::Unavailable(_)));
    assert!(
        err.to_string().contains(&format!("'{}'", path.display())),
        "{err}"
    );
    let (items, result) = run(&mut src, SyncMode::Full).await;
    assert!(items.is_empty());
    assert!(result.unwrap_err().to_string().contains("missing.ndjson"));
}

// ---------------------------------------------------------------- directory

fn write(root: &Path, relative: &str, content: &[u8]) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn sample_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "notes.txt", b"plain notes");
    write(root, "docs/readme.md", b"# Readme\n\nSome *markdown*.");
    write(root, "docs/page.html", b"<html><head><style>b{}</style></head><body><p>Hello &amp; bye</p><script>x()</script></body></html>");
    write(
        root,
        "data/items.json",
        br#"{"name": "widget", "tags": ["a", "b"], "count": 3}"#,
    );
    write(root, "data/table.csv", b"name,city\nAda,London\n");
    write(root, "data/photo.bin", b"\x89PNG binary");
    write(root, "deep/a/b/c.txt", b"deep file");
    write(root, "skip/secret.txt", b"excluded");
    dir
}

fn directory(root: &Path, extra: &[(&str, Value)]) -> Box<dyn DataSource> {
    let mut values = vec![("path", json!(root.to_string_lossy()))];
    values.extend(extra.iter().cloned());
    source("directory", &values)
}

async fn content(doc: Document) -> Result<Fields, SourceError> {
    let fetch = doc
        .content
        .unwrap_or_else(|| panic!("{} has no lazy content", doc.id));
    fetch().await
}

fn by_id(docs: Vec<Document>, id: &str) -> Document {
    docs.into_iter()
        .find(|d| d.id == id)
        .unwrap_or_else(|| panic!("no {id}"))
}

#[tokio::test]
async fn directory_lists_files_with_metadata_and_globs() {
    let tree = sample_tree();
    let mut src = directory(tree.path(), &[("exclude", json!("skip/**"))]);
    src.ping().await.unwrap();
    let (items, result) = run(&mut src, SyncMode::Full).await;
    assert!(
        result.unwrap().is_some(),
        "a full sync also returns a cursor"
    );
    let listed = docs(items);
    assert_eq!(
        ids(&listed),
        [
            "data/items.json",
            "data/photo.bin",
            "data/table.csv",
            "deep/a/b/c.txt",
            "docs/page.html",
            "docs/readme.md",
            "notes.txt"
        ]
    );
    let readme = by_id(listed, "docs/readme.md");
    assert_eq!(readme.fields["name"], "readme.md");
    assert_eq!(readme.fields["extension"], "md");
    assert_eq!(readme.fields["size"], 26);
    assert_eq!(readme.fields["content_type"], "text/markdown");
    assert!(
        readme.fields["path"]
            .as_str()
            .unwrap()
            .ends_with("docs/readme.md")
    );
    assert_eq!(readme.fields["mtime"], readme.fields["_timestamp"]);
    assert_eq!(readme.timestamp.as_deref(), readme.fields["mtime"].as_str());

    let mut only = directory(
        tree.path(),
        &[
            ("include", json!("docs/**, *.txt")),
            ("exclude", json!("**/*.html")),
        ],
    );
    let listed = docs(run(&mut only, SyncMode::Full).await.0);
    assert_eq!(ids(&listed), ["docs/readme.md", "notes.txt"]);
}

#[tokio::test]
async fn directory_extracts_each_text_format_lazily() {
    let tree = sample_tree();
    let mut src = directory(tree.path(), &[]);
    let listed = docs(run(&mut src, SyncMode::Full).await.0);
    let expected = [
        ("notes.txt", "plain notes"),
        ("docs/readme.md", "# Readme\n\nSome *markdown*."),
        ("docs/page.html", "Hello & bye"),
        ("data/items.json", "widget\na\nb"),
        ("data/table.csv", "name city\nAda London"),
    ];
    for (id, _) in expected {
        let doc = listed.iter().find(|d| d.id == id).unwrap();
        assert!(
            !doc.fields.contains_key("body"),
            "{id}: no text before the fetch"
        );
    }
    let mut listed = listed;
    for (id, body) in expected {
        let index = listed.iter().position(|d| d.id == id).unwrap();
        let fields = content(listed.swap_remove(index)).await.unwrap();
        assert_eq!(fields["body"], body, "{id}");
    }
    let binary = by_id(listed, "data/photo.bin");
    assert_eq!(binary.fields["content_type"], "application/octet-stream");
    assert!(binary.content.is_none() && !binary.fields.contains_key("_extraction_error"));

    let mut off = directory(tree.path(), &[("extract_content", json!(false))]);
    assert!(
        docs(run(&mut off, SyncMode::Full).await.0)
            .iter()
            .all(|d| d.content.is_none())
    );
}

#[tokio::test]
async fn directory_reads_a_file_only_when_its_content_is_fetched() {
    let tree = sample_tree();
    let mut src = directory(tree.path(), &[]);
    let listed = docs(run(&mut src, SyncMode::Full).await.0);
    std::fs::remove_file(tree.path().join("docs/readme.md")).unwrap();
    std::fs::write(tree.path().join("notes.txt"), "changed after listing").unwrap();

    let mut listed = listed;
    let readme = listed.remove(
        listed
            .iter()
            .position(|d| d.id == "docs/readme.md")
            .unwrap(),
    );
    let err = content(readme).await.unwrap_err().to_string();
    assert!(err.contains("readme.md"), "{err}");
    let notes = by_id(listed, "notes.txt");
    assert_eq!(
        content(notes).await.unwrap()["body"],
        "changed after listing",
        "read at fetch time"
    );
}

#[tokio::test]
async fn directory_marks_files_over_the_limit_and_bad_content() {
    let tree = sample_tree();
    let big = std::fs::File::create(tree.path().join("huge.txt")).unwrap();
    big.set_len(11 * 1024 * 1024).unwrap(); // sparse: no 11 MiB written
    write(tree.path(), "broken.json", b"{not json");
    let mut src = directory(tree.path(), &[]);
    let listed = docs(run(&mut src, SyncMode::Full).await.0);
    let mut listed = listed;
    let huge = listed.remove(listed.iter().position(|d| d.id == "huge.txt").unwrap());
    assert!(huge.content.is_none());
    let reason = huge.fields["_extraction_error"].as_str().unwrap();
    assert!(reason.contains("over the extraction limit"), "{reason}");
    assert_eq!(huge.fields["size"], 11 * 1024 * 1024);

    let broken = by_id(listed, "broken.json");
    let fields = content(broken).await.unwrap();
    assert!(!fields.contains_key("body"));
    assert!(
        fields["_extraction_error"]
            .as_str()
            .unwrap()
            .starts_with("not valid JSON")
    );
}

#[tokio::test]
async fn directory_incremental_yields_only_files_changed_since_the_cursor() {
    let tree = sample_tree();
    let old = filetime::FileTime::from_unix_time(1_704_067_200, 0);
    for entry in [
        "notes.txt",
        "docs/readme.md",
        "docs/page.html",
        "data/items.json",
        "data/table.csv",
        "data/photo.bin",
        "deep/a/b/c.txt",
        "skip/secret.txt",
    ] {
        filetime::set_file_mtime(tree.path().join(entry), old).unwrap();
    }
    let mut src = directory(tree.path(), &[]);
    let (items, cursor) = run(&mut src, SyncMode::Full).await;
    assert_eq!(items.len(), 8);
    let cursor = cursor.unwrap().unwrap();
    assert_eq!(cursor, json!({"mtime": "2024-01-01T00:00:00Z"}));

    let (items, unchanged) = run(
        &mut src,
        SyncMode::Incremental {
            cursor: Some(cursor.clone()),
        },
    )
    .await;
    assert!(items.is_empty());
    assert_eq!(unchanged.unwrap(), Some(cursor.clone()));

    let touched = filetime::FileTime::from_unix_time(1_704_067_260, 500_000_000);
    filetime::set_file_mtime(tree.path().join("docs/page.html"), touched).unwrap();
    let (items, next) = run(
        &mut src,
        SyncMode::Incremental {
            cursor: Some(cursor),
        },
    )
    .await;
    assert_eq!(ids(&docs(items)), ["docs/page.html"]);
    let next = next.unwrap().unwrap();
    assert_eq!(next, json!({"mtime": "2024-01-01T00:01:00.500Z"}));

    let (items, _) = run(&mut src, SyncMode::Incremental { cursor: Some(next) }).await;
    assert!(items.is_empty(), "nothing changed since the new cursor");
    let (items, _) = run(&mut src, SyncMode::Incremental { cursor: None }).await;
    assert_eq!(items.len(), 8, "no cursor yet: every file");
    assert!(factory("directory").supports_incremental());
}

#[cfg(unix)]
#[tokio::test]
async fn directory_follows_links_only_to_files_inside_the_root() {
    let tree = sample_tree();
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "private.txt", b"outside");
    std::os::unix::fs::symlink(
        outside.path().join("private.txt"),
        tree.path().join("escape.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), tree.path().join("escape-dir")).unwrap();
    std::os::unix::fs::symlink(tree.path().join("notes.txt"), tree.path().join("alias.txt"))
        .unwrap();
    std::os::unix::fs::symlink(tree.path(), tree.path().join("deep/loop")).unwrap();
    let mut src = directory(
        tree.path(),
        &[("include", json!("*.txt, escape-dir/**, deep/**"))],
    );
    let listed = docs(run(&mut src, SyncMode::Full).await.0);
    assert_eq!(ids(&listed), ["alias.txt", "deep/a/b/c.txt", "notes.txt"]);
}

/// What a walk yielded as unreadable: (id, reason).
fn unreadable(items: &[SourceItem]) -> Vec<(&str, &str)> {
    items
        .iter()
        .filter_map(|item| match item {
            SourceItem::Invalid { id, reason, .. } => Some((id.as_str(), reason.as_str())),
            _ => None,
        })
        .collect()
}

fn upserted(items: &[SourceItem]) -> Vec<&str> {
    items
        .iter()
        .filter_map(|item| match item {
            SourceItem::Upsert(doc) => Some(doc.id.as_str()),
            _ => None,
        })
        .collect()
}

/// An entry that exists but cannot be read is an `Invalid` item (so a full sync deletes
/// nothing), not a silent skip. Tests run as root, which reads any file whatever its mode:
/// here the entry's path is past the system's PATH_MAX (4096), a real `ENAMETOOLONG`, while
/// its folder (a shorter path) still lists.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn directory_yields_an_entry_it_cannot_read_as_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let long_name = "n".repeat(250);
    let short = tmp.path().join("x");
    write(&short, &format!("sub/{long_name}"), b"kept");
    write(&short, "sub/ok.txt", b"fine");
    // Moved under a folder 3,900 bytes deep: `sub` is 3,906 bytes, its long entry 4,157.
    let mut deep = tmp.path().to_path_buf();
    while deep.as_os_str().len() + 201 < 3900 {
        deep.push("d".repeat(200));
    }
    let last = 3900 - deep.as_os_str().len() - 1;
    deep.push("e".repeat(last));
    std::fs::create_dir_all(&deep).unwrap();
    let root = deep.join("x");
    std::fs::rename(&short, &root).unwrap();

    let mut src = directory(&root, &[("extract_content", json!(false))]);
    let (items, result) = run(&mut src, SyncMode::Full).await;
    result.unwrap();
    assert_eq!(upserted(&items), ["sub/ok.txt"]);
    let bad = unreadable(&items);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(bad[0].0, format!("unreadable:sub/{long_name}"));
    assert!(bad[0].1.contains("name too long"), "{}", bad[0].1);
}

/// A symlink loop cannot be resolved: unreadable. A link whose target was deleted names a
/// document that is gone: nothing is yielded for it, so a full sync deletes its document.
#[cfg(unix)]
#[tokio::test]
async fn directory_yields_a_link_loop_as_invalid_and_a_dangling_link_as_gone() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    write(root, "a.txt", b"fine");
    std::os::unix::fs::symlink(root.join("loop-b.txt"), root.join("loop-a.txt")).unwrap();
    std::os::unix::fs::symlink(root.join("loop-a.txt"), root.join("loop-b.txt")).unwrap();
    std::os::unix::fs::symlink(root.join("deleted.txt"), root.join("dangling.txt")).unwrap();
    // Left out by the globs: no loss, nothing to say.
    std::os::unix::fs::symlink(root.join("loop-c.md"), root.join("loop-c.md")).unwrap();

    let mut src = directory(
        root,
        &[
            ("include", json!("*.txt")),
            ("extract_content", json!(false)),
        ],
    );
    let (items, result) = run(&mut src, SyncMode::Full).await;
    result.unwrap();
    assert_eq!(upserted(&items), ["a.txt"]);
    let ids: Vec<&str> = unreadable(&items).iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, ["unreadable:loop-a.txt", "unreadable:loop-b.txt"]);
}

#[tokio::test]
async fn directory_validation_names_the_field_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let config = config("directory", &[("path", json!(missing.to_string_lossy()))]);
    let err = factory("directory")
        .validate(&config)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "configuration field 'path': '{}' does not exist",
            missing.display()
        )
    );
    let bad_glob = config_with_glob(dir.path());
    let err = factory("directory")
        .validate(&bad_glob)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("configuration field 'include': '[a' is not a valid glob"),
        "{err}"
    );
}

fn config_with_glob(root: &Path) -> Configuration {
    config(
        "directory",
        &[
            ("path", json!(root.to_string_lossy())),
            ("include", json!("[a")),
        ],
    )
}
