//! Local text extraction of binary documents, on fixtures the tests build themselves: a
//! hand-written PDF, and DOCX/XLSX/PPTX packages zipped from their minimal XML parts. Also the
//! size limit (input and unpacked), the time limit (a pathological workbook and a mocked
//! slow extractor), attachments (`_attachment` → `body` or `_extraction_error`), and the
//! directory source extracting binary files.

use base64::Engine;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::time::Duration;
use syncdeck::sources::extract::{
    self, DOCX, ExtractError, ExtractInput, ExtractLimits, PPTX, XLSX, extract_attachment,
    sniff_content_type,
};
use syncdeck::sources::{
    DirectoryFactory, Fields, ItemSender, SourceFactory, SourceItem, SyncMode,
};

// ----------------------------------------------------------------------------- fixtures

/// A PDF with one page per string, each shown with a standard font; xref offsets computed.
fn pdf(pages: &[&str]) -> Vec<u8> {
    let n = pages.len();
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    for (i, text) in pages.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        let stream = format!("BT /F1 18 Tf 72 720 Td ({text}) Tj ET");
        objects.push(format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ));
    }
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{body}\nendobj\n", i + 1));
    }
    let xref = out.len();
    out.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for offset in offsets {
        out.push_str(&format!("{offset:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    out.into_bytes()
}

/// A zip of the given parts (deflated).
fn package(parts: &[(&str, String)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in parts {
        zip.start_file(*name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#;

fn docx(body: &str) -> Vec<u8> {
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    );
    package(&[
        ("[Content_Types].xml", CONTENT_TYPES.into()),
        ("word/document.xml", document),
    ])
}

fn sample_docx() -> Vec<u8> {
    docx(concat!(
        r#"<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>"#,
        r#"<w:r><w:t>Quarterly report</w:t></w:r></w:p>"#,
        r#"<w:p><w:r><w:t xml:space="preserve">Sales &amp; marketing: </w:t></w:r><w:r><w:tab/><w:t>up &#x2191;</w:t></w:r></w:p>"#,
        r#"<w:p><w:r><w:t>line one</w:t><w:br/><w:t>line two</w:t></w:r><w:del><w:r><w:delText>gone</w:delText></w:r></w:del></w:p>"#,
        r#"<w:p/>"#
    ))
}

fn xlsx_with(sheets: &[String], shared: &[&str]) -> Vec<u8> {
    let strings: String = shared
        .iter()
        .map(|s| format!("<si><t>{s}</t></si>"))
        .collect();
    let mut parts = vec![
        ("[Content_Types].xml", CONTENT_TYPES.to_string()),
        ("xl/workbook.xml", r#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets/></workbook>"#.to_string()),
        (
            "xl/sharedStrings.xml",
            format!(r#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{strings}</sst>"#),
        ),
    ];
    let names: Vec<String> = (1..=sheets.len())
        .map(|i| format!("xl/worksheets/sheet{i}.xml"))
        .collect();
    for (name, rows) in names.iter().zip(sheets) {
        parts.push((
            name.as_str(),
            format!(r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{rows}</sheetData></worksheet>"#),
        ));
    }
    package(&parts)
}

fn sample_xlsx() -> Vec<u8> {
    let sheet1 = concat!(
        r#"<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>"#,
        r#"<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><f>1+1</f><v>42.5</v></c><c r="C2" t="b"><v>1</v></c></row>"#,
        r#"<row r="3"><c r="A3" s="1"/></row>"#,
        r#"<row r="4"><c r="A4" t="inlineStr"><is><t>inline &lt;text&gt;</t></is></c></row>"#
    );
    let sheet2 = r#"<row r="1"><c r="A1" t="str"><v>second sheet</v></c></row>"#;
    xlsx_with(
        &[sheet1.to_string(), sheet2.to_string()],
        &["Name", "Total", "Ada &amp; Co"],
    )
}

fn slide(texts: &[&str]) -> String {
    let paragraphs: String = texts
        .iter()
        .map(|t| format!("<a:p><a:r><a:t>{t}</a:t></a:r></a:p>"))
        .collect();
    format!(
        r#"<p:sld xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><p:cSld><p:spTree><p:sp><p:txBody>{paragraphs}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>"#
    )
}

fn sample_pptx() -> Vec<u8> {
    package(&[
        ("[Content_Types].xml", CONTENT_TYPES.into()),
        (
            "ppt/presentation.xml",
            "<p:presentation xmlns:p=\"x\"/>".into(),
        ),
        ("ppt/slides/slide10.xml", slide(&["Tenth"])),
        ("ppt/slides/slide1.xml", slide(&["Welcome", "to the deck"])),
        ("ppt/slides/slide2.xml", slide(&["Second"])),
    ])
}

fn text(bytes: &[u8], content_type: &str) -> Result<String, ExtractError> {
    extract::extract_text(
        ExtractInput::Bytes(bytes),
        content_type,
        &ExtractLimits::default(),
    )
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

// ------------------------------------------------------------------------------ formats

#[test]
fn pdf_text_comes_out_page_by_page() {
    let bytes = pdf(&["Hello PDF world", "Second page"]);
    assert_eq!(
        text(&bytes, "application/pdf").unwrap(),
        "Hello PDF world\n\nSecond page"
    );
}

#[test]
fn docx_keeps_paragraphs_breaks_tabs_and_entities_but_not_deleted_text() {
    assert_eq!(
        text(&sample_docx(), DOCX).unwrap(),
        "Quarterly report\nSales & marketing: \tup ↑\nline one\nline two"
    );
}

#[test]
fn xlsx_rows_resolve_shared_inline_numeric_and_boolean_cells() {
    assert_eq!(
        text(&sample_xlsx(), XLSX).unwrap(),
        "Name Total\nAda & Co 42.5 TRUE\ninline <text>\n\nsecond sheet"
    );
}

#[test]
fn pptx_slides_come_in_numeric_order() {
    assert_eq!(
        text(&sample_pptx(), PPTX).unwrap(),
        "Welcome\nto the deck\n\nSecond\n\nTenth"
    );
}

#[test]
fn formats_are_recognised_by_their_bytes_and_extensions() {
    assert_eq!(sniff_content_type(&pdf(&["x"])), Some("application/pdf"));
    assert_eq!(sniff_content_type(&sample_docx()), Some(DOCX));
    assert_eq!(sniff_content_type(&sample_xlsx()), Some(XLSX));
    assert_eq!(sniff_content_type(&sample_pptx()), Some(PPTX));
    let other_zip = package(&[("readme.txt", "hi".into())]);
    assert_eq!(sniff_content_type(&other_zip), None);
    assert_eq!(sniff_content_type(b"plain"), None);
    for (ext, ty) in [
        ("docx", DOCX),
        ("XLSX", XLSX),
        ("pptx", PPTX),
        ("pdf", "application/pdf"),
    ] {
        assert_eq!(extract::content_type_for_extension(ext), ty);
        assert!(extract::is_supported(ty));
    }
}

// -------------------------------------------------------------------------------- limits

#[test]
fn inputs_over_the_size_limit_are_refused() {
    let limits = ExtractLimits {
        max_bytes: 100,
        ..ExtractLimits::default()
    };
    let bytes = sample_docx();
    let err = extract::extract_text(ExtractInput::Bytes(&bytes), DOCX, &limits).unwrap_err();
    assert!(
        matches!(err, ExtractError::TooLarge { limit: 100, .. }),
        "{err:?}"
    );
}

#[test]
fn a_package_that_unpacks_too_far_is_refused() {
    // 4 MiB of text compresses to a few KiB: a small zip bomb.
    let paragraph = format!(
        "<w:p><w:r><w:t>{}</w:t></w:r></w:p>",
        "a".repeat(4 * 1024 * 1024)
    );
    let bomb = docx(&paragraph);
    assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
    let limits = ExtractLimits {
        max_bytes: 100_000,
        ..ExtractLimits::default()
    };
    let err = extract::extract_text(ExtractInput::Bytes(&bomb), DOCX, &limits)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "not valid DOCX: the package unpacks to more than 1048576 bytes"
    );
}

#[test]
fn a_pathological_workbook_stops_at_the_time_limit() {
    let rows: String = (1..=20_000)
        .map(|i| format!(r#"<row r="{i}"><c><v>{i}</v></c></row>"#))
        .collect();
    let big = xlsx_with(&[rows], &[]);
    let patient = ExtractLimits::default();
    let full = extract::extract_text(ExtractInput::Bytes(&big), XLSX, &patient).unwrap();
    assert_eq!(full.lines().count(), 20_000, "the input itself is fine");
    let hurried = ExtractLimits {
        time_limit: Duration::ZERO,
        ..ExtractLimits::default()
    };
    let err = extract::extract_text(ExtractInput::Bytes(&big), XLSX, &hurried).unwrap_err();
    assert!(matches!(err, ExtractError::TimedOut { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "text extraction took longer than the limit of 0 ms"
    );
}

#[tokio::test]
async fn a_slow_extractor_is_abandoned_at_the_time_limit() {
    let limit = Duration::from_millis(20);
    let result = extract::with_time_limit(limit, || {
        std::thread::sleep(Duration::from_millis(400));
        Ok("too late".to_string())
    })
    .await;
    assert!(
        matches!(result, Err(ExtractError::TimedOut { limit: l }) if l == limit),
        "{result:?}"
    );
    let quick = extract::with_time_limit(Duration::from_secs(5), || Ok(1)).await;
    assert_eq!(quick.unwrap(), 1);
}

// --------------------------------------------------------------------------- attachments

async fn with_attachment(fields: Value) -> Map<String, Value> {
    let mut fields = Fields::from(fields.as_object().cloned().unwrap());
    extract_attachment(&mut fields, &ExtractLimits::default()).await;
    fields.into_map()
}

#[tokio::test]
async fn attachments_become_body_text_whatever_their_format() {
    let cases = [
        (
            json!({"_attachment": b64(&pdf(&["Invoice 42"])), "title": "scan"}),
            "Invoice 42",
        ),
        (
            json!({"_attachment": b64(&sample_pptx())}),
            "Welcome\nto the deck\n\nSecond\n\nTenth",
        ),
        (
            json!({"_attachment": b64(b"<p>Hi &amp; bye</p>"), "_content_type": "text/html; charset=utf-8"}),
            "Hi & bye",
        ),
        (
            json!({"_attachment": b64(b"a,b\n1,2\n"), "name": "table.csv"}),
            "a b\n1 2",
        ),
        (json!({"_attachment": b64("plain é".as_bytes())}), "plain é"),
    ];
    for (input, body) in cases {
        let fields = with_attachment(input.clone()).await;
        assert_eq!(fields.get("body"), Some(&json!(body)), "{input}");
        assert!(!fields.contains_key("_attachment") && !fields.contains_key("_extraction_error"));
    }
    let untouched = with_attachment(json!({"title": "no attachment"})).await;
    assert_eq!(Value::Object(untouched), json!({"title": "no attachment"}));
}

#[tokio::test]
async fn extraction_keeps_the_other_fields_in_their_order() {
    // The attachment's place closes up (as Python's `dict.pop` does); the text comes last.
    let fields = with_attachment(json!({
        "title": "scan", "_attachment": b64(b"hello"), "path": "a/b.txt", "size": 5,
        "_content_type": "text/plain",
    }))
    .await;
    assert_eq!(
        fields.keys().collect::<Vec<_>>(),
        ["title", "path", "size", "_content_type", "body"]
    );
}

#[tokio::test]
async fn a_corrupt_attachment_is_kept_with_its_extraction_error() {
    let cases = [
        (
            json!({"_attachment": b64(b"%PDF-1.4\nthis is not a pdf"), "title": "broken"}),
            "not valid PDF",
        ),
        (
            json!({"_attachment": b64(b"PK\x03\x04garbage"), "name": "report.docx"}),
            "not valid DOCX",
        ),
        (
            json!({"_attachment": b64(&[0xff, 0xfe, 0x00, 0x01])}),
            "no text extraction for content type 'application/octet-stream'",
        ),
        (
            json!({"_attachment": "***not base64***"}),
            "not valid base64",
        ),
        (
            json!({"_attachment": 12}),
            "not valid attachment: '_attachment' is not a base64 string",
        ),
    ];
    for (input, reason) in cases {
        let fields = with_attachment(input.clone()).await;
        let error = fields["_extraction_error"].as_str().unwrap_or_default();
        assert!(error.starts_with(reason), "{input}: {error}");
        assert!(
            !fields.contains_key("_attachment") && !fields.contains_key("body"),
            "{fields:?}"
        );
        for (key, value) in input.as_object().unwrap() {
            if key != "_attachment" {
                assert_eq!(&fields[key], value, "other fields stay");
            }
        }
    }
}

#[tokio::test]
async fn an_attachment_over_the_limit_is_refused_before_decoding() {
    let mut fields = Fields::from(
        json!({"_attachment": b64(&[b'x'; 4000])})
            .as_object()
            .cloned()
            .unwrap(),
    );
    let limits = ExtractLimits {
        max_bytes: 1000,
        ..ExtractLimits::default()
    };
    extract_attachment(&mut fields, &limits).await;
    assert_eq!(
        fields["_extraction_error"],
        "the file is 4000 bytes, over the extraction limit of 1000 bytes"
    );
}

// ----------------------------------------------------------------------------- directory

#[tokio::test]
async fn the_directory_source_extracts_binary_files_and_keeps_broken_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("report.pdf"), pdf(&["From a file"])).unwrap();
    std::fs::write(dir.path().join("book.xlsx"), sample_xlsx()).unwrap();
    std::fs::write(dir.path().join("notes.docx"), sample_docx()).unwrap();
    std::fs::write(dir.path().join("broken.pptx"), b"PK\x03\x04 not really").unwrap();
    let mut config = DirectoryFactory.default_configuration();
    config.0.get_mut("path").unwrap().value = json!(dir.path().to_string_lossy());
    let mut source = DirectoryFactory.create(&config).unwrap();
    let (tx, mut rx) = ItemSender::channel(16);
    let (result, items) = tokio::join!(source.run(SyncMode::Full, tx), async move {
        let mut items = Vec::new();
        while let Some(item) = rx.recv().await {
            items.push(item);
        }
        items
    });
    result.unwrap();
    let mut bodies = std::collections::BTreeMap::new();
    for item in items {
        let SourceItem::Upsert(mut doc) = item else {
            panic!("{item:?}")
        };
        let fetch = doc
            .content
            .take()
            .expect("binary files are extracted lazily");
        let fields = fetch().await.unwrap();
        let text = fields
            .get("body")
            .or_else(|| fields.get("_extraction_error"))
            .cloned()
            .unwrap();
        bodies.insert(doc.id, text.as_str().unwrap_or_default().to_string());
    }
    assert_eq!(bodies["report.pdf"], "From a file");
    assert!(
        bodies["book.xlsx"].starts_with("Name Total\n"),
        "{}",
        bodies["book.xlsx"]
    );
    assert!(
        bodies["notes.docx"].starts_with("Quarterly report\n"),
        "{}",
        bodies["notes.docx"]
    );
    assert!(
        bodies["broken.pptx"].starts_with("not valid PPTX"),
        "{}",
        bodies["broken.pptx"]
    );
}

#[tokio::test]
async fn a_corrupt_pdf_gets_its_extraction_error_and_a_blank_one_does_not() {
    let good = String::from_utf8(pdf(&["Hello PDF world", "Second page"])).unwrap();
    let corrupt = [
        (
            "a garbled content stream",
            good.replace("BT /F1 18 Tf", "\x00\x01\x02garbage((("),
        ),
        (
            "an empty page tree",
            good.replace("/Kids [4 0 R 6 0 R] /Count 2", "/Kids [] /Count 0"),
        ),
        (
            "pages that do not exist",
            good.replace("/Kids [4 0 R 6 0 R]", "/Kids [40 0 R 60 0 R]"),
        ),
    ];
    for (what, bytes) in corrupt {
        let fields = with_attachment(json!({"_attachment": b64(bytes.as_bytes())})).await;
        let error = fields["_extraction_error"].as_str().unwrap_or_default();
        assert!(error.starts_with("not valid PDF"), "{what}: {fields:?}");
        assert!(!fields.contains_key("body"), "{what}: {fields:?}");
    }
    // A page without text (a blank or scanned page) is no error.
    assert_eq!(text(&pdf(&[""]), "application/pdf").unwrap(), "");
}
