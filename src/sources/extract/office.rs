//! Office Open XML text (DOCX, XLSX, PPTX): the package is a zip of XML parts, read with
//! `zip` and `quick-xml`. Word paragraphs and PowerPoint slides keep their line breaks; a
//! spreadsheet becomes one line per row, cells separated by spaces, shared strings resolved.
//! The unpacked size of the parts read is bounded (zip bombs), and the time limit is checked
//! while parsing. Nothing here knows about documents or files.

use super::{Deadline, ExtractError, ExtractLimits};
use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};
use std::io::{Cursor, Read};
use zip::ZipArchive;
use zip::result::ZipError;

pub const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
pub const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";

/// How many XML events are parsed between two looks at the clock.
const EVENTS_PER_CHECK: u32 = 2048;

fn invalid(format: &'static str, reason: impl std::fmt::Display) -> ExtractError {
    ExtractError::Invalid {
        format,
        reason: reason.to_string(),
    }
}

/// Which Office format a zip holds, from the parts it lists; `None` for other zips.
pub(super) fn package_type(bytes: &[u8]) -> Option<&'static str> {
    let zip = ZipArchive::new(Cursor::new(bytes)).ok()?;
    let mut names = zip.file_names().filter_map(Result::ok);
    names.find_map(|name| match name.as_ref() {
        "word/document.xml" => Some(DOCX),
        "xl/workbook.xml" => Some(XLSX),
        "ppt/presentation.xml" => Some(PPTX),
        _ => None,
    })
}

/// An opened package with what is left of its unpacked-size budget.
struct Package<'a> {
    zip: ZipArchive<Cursor<&'a [u8]>>,
    format: &'static str,
    budget: u64,
    limit: u64,
}

impl<'a> Package<'a> {
    fn open(
        bytes: &'a [u8],
        format: &'static str,
        limits: &ExtractLimits,
    ) -> Result<Self, ExtractError> {
        let zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| invalid(format, e))?;
        let limit = limits.unpacked_limit();
        Ok(Self {
            zip,
            format,
            budget: limit,
            limit,
        })
    }

    /// A part's text, `None` when the package has no such part.
    fn part(&mut self, name: &str) -> Result<Option<String>, ExtractError> {
        let format = self.format;
        let file = match self.zip.by_name(name) {
            Ok(file) => file,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(invalid(format, format!("part '{name}': {e}"))),
        };
        let mut bytes = Vec::new();
        // One byte past the budget tells "over" from "exactly at".
        file.take(self.budget.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| invalid(format, format!("part '{name}': {e}")))?;
        let used = bytes.len() as u64;
        if used > self.budget {
            return Err(invalid(
                format,
                format!("the package unpacks to more than {} bytes", self.limit),
            ));
        }
        self.budget -= used;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| invalid(format, format!("part '{name}' is not UTF-8")))
    }

    /// Parts named `prefix<N>suffix`, in the order of N (`slide2` before `slide10`).
    fn numbered(&self, prefix: &str, suffix: &str) -> Vec<String> {
        let mut parts: Vec<(u64, String)> = self
            .zip
            .file_names()
            .filter_map(Result::ok)
            .filter_map(|name| {
                let n = name
                    .strip_prefix(prefix)?
                    .strip_suffix(suffix)?
                    .parse()
                    .ok()?;
                Some((n, name.to_string()))
            })
            .collect();
        parts.sort();
        parts.into_iter().map(|(_, name)| name).collect()
    }
}

/// A Word document's text: one line per paragraph.
pub(super) fn docx_text(
    bytes: &[u8],
    limits: &ExtractLimits,
    deadline: &Deadline,
) -> Result<String, ExtractError> {
    let mut package = Package::open(bytes, "DOCX", limits)?;
    let xml = package
        .part("word/document.xml")?
        .ok_or_else(|| invalid("DOCX", "the package has no 'word/document.xml'"))?;
    paragraphs(&xml, "DOCX", deadline)
}

/// A presentation's text: slides in order, separated by blank lines.
pub(super) fn pptx_text(
    bytes: &[u8],
    limits: &ExtractLimits,
    deadline: &Deadline,
) -> Result<String, ExtractError> {
    let mut package = Package::open(bytes, "PPTX", limits)?;
    let mut slides = Vec::new();
    for name in package.numbered("ppt/slides/slide", ".xml") {
        deadline.check()?;
        if let Some(xml) = package.part(&name)? {
            let text = paragraphs(&xml, "PPTX", deadline)?;
            if !text.is_empty() {
                slides.push(text);
            }
        }
    }
    Ok(slides.join("\n\n"))
}

/// A workbook's text: sheets in order, one line per row, cells separated by spaces.
pub(super) fn xlsx_text(
    bytes: &[u8],
    limits: &ExtractLimits,
    deadline: &Deadline,
) -> Result<String, ExtractError> {
    let mut package = Package::open(bytes, "XLSX", limits)?;
    let shared = match package.part("xl/sharedStrings.xml")? {
        Some(xml) => shared_strings(&xml, deadline)?,
        None => Vec::new(),
    };
    let mut sheets = Vec::new();
    for name in package.numbered("xl/worksheets/sheet", ".xml") {
        deadline.check()?;
        if let Some(xml) = package.part(&name)? {
            let text = sheet_rows(&xml, &shared, deadline)?;
            if !text.is_empty() {
                sheets.push(text);
            }
        }
    }
    Ok(sheets.join("\n\n"))
}

/// Reads XML events, looking at the clock every [`EVENTS_PER_CHECK`] of them.
struct Events<'a> {
    reader: Reader<&'a [u8]>,
    format: &'static str,
    deadline: &'a Deadline,
    count: u32,
}

impl<'a> Events<'a> {
    fn new(xml: &'a str, format: &'static str, deadline: &'a Deadline) -> Self {
        Self {
            reader: Reader::from_reader(xml.as_bytes()),
            format,
            deadline,
            count: 0,
        }
    }

    fn next(&mut self) -> Result<Event<'a>, ExtractError> {
        self.count = self.count.wrapping_add(1);
        if self.count.is_multiple_of(EVENTS_PER_CHECK) {
            self.deadline.check()?;
        }
        self.reader
            .read_event()
            .map_err(|e| invalid(self.format, e))
    }
}

fn local(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_string()
}

/// Appends an entity or character reference (`&amp;`, `&#x263A;`) as its character.
fn push_ref(out: &mut String, reference: &BytesRef<'_>) {
    if let Ok(Some(c)) = reference.resolve_char_ref() {
        out.push(c);
        return;
    }
    let name: &str = reference.as_ref();
    match name {
        "amp" => out.push('&'),
        "lt" => out.push('<'),
        "gt" => out.push('>'),
        "quot" => out.push('"'),
        "apos" => out.push('\''),
        other => {
            out.push('&');
            out.push_str(other);
            out.push(';');
        }
    }
}

/// The text of `<t>` elements of Word (`w:`) or DrawingML (`a:`) markup: paragraphs end
/// lines, breaks break them, tabs inside runs are kept.
fn paragraphs(
    xml: &str,
    format: &'static str,
    deadline: &Deadline,
) -> Result<String, ExtractError> {
    let mut events = Events::new(xml, format, deadline);
    let mut out = String::new();
    let (mut in_text, mut in_run) = (false, false);
    loop {
        match events.next()? {
            Event::Start(e) => match local(&e).as_str() {
                "t" => in_text = true,
                "r" => in_run = true,
                _ => {}
            },
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "r" => in_run = false,
                "p" => out.push('\n'),
                _ => {}
            },
            Event::Empty(e) => match local(&e).as_str() {
                "tab" if in_run => out.push('\t'),
                "br" | "cr" => out.push('\n'),
                _ => {}
            },
            Event::Text(t) if in_text => out.push_str(&t.xml10_content()),
            Event::CData(t) if in_text => out.push_str(t.as_ref()),
            Event::GeneralRef(r) if in_text => push_ref(&mut out, &r),
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(tidy(&out))
}

// Trailing spaces and blank lines go; leading indentation inside a line stays.
fn tidy(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The shared strings table: each `<si>`'s text runs joined (phonetic hints left out).
fn shared_strings(xml: &str, deadline: &Deadline) -> Result<Vec<String>, ExtractError> {
    let mut events = Events::new(xml, "XLSX", deadline);
    let mut strings = Vec::new();
    let mut current = String::new();
    let (mut in_text, mut in_phonetic) = (false, false);
    loop {
        match events.next()? {
            Event::Start(e) => match local(&e).as_str() {
                "si" => current.clear(),
                "t" => in_text = true,
                "rPh" => in_phonetic = true,
                _ => {}
            },
            Event::Empty(e) if local(&e) == "si" => strings.push(String::new()),
            Event::End(e) => match e.local_name().as_ref() {
                "si" => strings.push(std::mem::take(&mut current)),
                "t" => in_text = false,
                "rPh" => in_phonetic = false,
                _ => {}
            },
            Event::Text(t) if in_text && !in_phonetic => current.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text && !in_phonetic => push_ref(&mut current, &r),
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(strings)
}

/// One cell being read.
#[derive(Default)]
struct Cell {
    kind: String,
    value: String,
    inline: String,
}

impl Cell {
    fn text(self, shared: &[String]) -> String {
        match self.kind.as_str() {
            "s" => self
                .value
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(|i| shared.get(i).cloned())
                .unwrap_or_default(),
            "inlineStr" => self.inline,
            "b" => match self.value.trim() {
                "1" => "TRUE".into(),
                "0" => "FALSE".into(),
                other => other.to_string(),
            },
            _ => self.value,
        }
    }
}

/// A worksheet's rows: cells separated by spaces, one row a line.
fn sheet_rows(xml: &str, shared: &[String], deadline: &Deadline) -> Result<String, ExtractError> {
    let mut events = Events::new(xml, "XLSX", deadline);
    let mut lines = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut cell: Option<Cell> = None;
    let (mut in_value, mut in_inline) = (false, false);
    loop {
        match events.next()? {
            Event::Start(e) => match local(&e).as_str() {
                "c" => {
                    let kind = e
                        .try_get_attribute("t")
                        .ok()
                        .flatten()
                        .map(|a| a.value.into_owned())
                        .unwrap_or_default();
                    cell = Some(Cell {
                        kind,
                        ..Cell::default()
                    });
                }
                "v" => in_value = true,
                "t" => in_inline = true,
                _ => {}
            },
            Event::End(e) => match e.local_name().as_ref() {
                "c" => {
                    let text = cell.take().map(|c| c.text(shared)).unwrap_or_default();
                    let text = text.trim();
                    if !text.is_empty() {
                        row.push(text.to_string());
                    }
                }
                "v" => in_value = false,
                "t" => in_inline = false,
                "row" => {
                    if !row.is_empty() {
                        lines.push(row.join(" "));
                    }
                    row.clear();
                }
                _ => {}
            },
            Event::Text(t) => {
                if let Some(cell) = cell.as_mut() {
                    if in_value {
                        cell.value.push_str(&t.xml10_content());
                    } else if in_inline {
                        cell.inline.push_str(&t.xml10_content());
                    }
                }
            }
            Event::GeneralRef(r) => {
                if let Some(cell) = cell.as_mut() {
                    if in_value {
                        push_ref(&mut cell.value, &r);
                    } else if in_inline {
                        push_ref(&mut cell.inline, &r);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(lines.join("\n"))
}
