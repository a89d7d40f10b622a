//! Where a value sits in a document's JSON text, to prefix refusal reasons with `[line:col]`
//! the way Elasticsearch's parser does. Used only on the error path, so it re-scans the text
//! instead of keeping offsets for every document.

use super::mapping::Step;

/// The 1-based `line:column` of the value at `steps` in `text` (a one-line bulk source), or of
/// the document's start when the path cannot be followed.
pub(super) fn position(text: &str, steps: &[Step]) -> String {
    let offset = locate(text.as_bytes(), steps).unwrap_or(0);
    let column = text
        .get(..offset)
        .map_or(1, |prefix| prefix.chars().count() + 1);
    format!("[1:{column}]")
}

fn locate(b: &[u8], steps: &[Step]) -> Option<usize> {
    let mut pos = skip_ws(b, 0);
    for step in steps {
        pos = match step {
            Step::Key(key) => member(b, pos, key)?,
            Step::Index(index) => element(b, pos, *index)?,
        };
    }
    Some(pos)
}

/// The offset of member `key`'s value in the object at `pos`.
fn member(b: &[u8], mut pos: usize, key: &str) -> Option<usize> {
    if *b.get(pos)? != b'{' {
        return None;
    }
    pos += 1;
    loop {
        pos = skip_ws(b, pos);
        match *b.get(pos)? {
            b',' => {
                pos += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let (end, name) = read_string(b, pos)?;
        pos = skip_ws(b, end);
        if *b.get(pos)? != b':' {
            return None;
        }
        pos = skip_ws(b, pos + 1);
        if name == key {
            return Some(pos);
        }
        pos = skip_value(b, pos)?;
    }
}

/// The offset of element `index` in the array at `pos`.
fn element(b: &[u8], mut pos: usize, index: usize) -> Option<usize> {
    if *b.get(pos)? != b'[' {
        return None;
    }
    pos += 1;
    let mut current = 0;
    loop {
        pos = skip_ws(b, pos);
        match *b.get(pos)? {
            b']' => return None,
            b',' => {
                pos += 1;
                continue;
            }
            _ => {}
        }
        if current == index {
            return Some(pos);
        }
        pos = skip_value(b, pos)?;
        current += 1;
    }
}

fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while b.get(pos).is_some_and(|c| c.is_ascii_whitespace()) {
        pos += 1;
    }
    pos
}

/// Reads the string starting at `pos` (a `"`); returns the offset after it and its text.
fn read_string(b: &[u8], pos: usize) -> Option<(usize, String)> {
    let mut i = pos + 1;
    let mut escaped = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => {
                escaped = true;
                i += 2;
                continue;
            }
            b'"' => break,
            _ => i += 1,
        }
    }
    let raw = b.get(pos..=i)?;
    let text = if escaped {
        serde_json::from_slice::<String>(raw).ok()?
    } else {
        String::from_utf8(raw.get(1..raw.len() - 1)?.to_vec()).ok()?
    };
    Some((i + 1, text))
}

/// The offset just after the value starting at `pos`.
fn skip_value(b: &[u8], pos: usize) -> Option<usize> {
    match *b.get(pos)? {
        b'"' => read_string(b, pos).map(|(end, _)| end),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = pos;
            while let Some(&c) = b.get(i) {
                match c {
                    b'"' => {
                        i = read_string(b, i)?.0;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let mut i = pos;
            while b
                .get(i)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                i += 1;
            }
            Some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Step {
        Step::Key(k.into())
    }

    #[test]
    fn finds_values_like_jackson_columns() {
        let text = r#"{"name":"x","price":"abc"}"#;
        assert_eq!(position(text, &[key("price")]), "[1:21]");
        let nested = r#"{"a": {"b\"q": [1, {"c": "x"}]}, "c": 2}"#;
        assert_eq!(position(nested, &[key("c")]), "[1:39]");
        let steps = [key("a"), key("b\"q"), Step::Index(1), key("c")];
        assert_eq!(position(nested, &steps), "[1:26]");
        assert_eq!(position("{\"é\":1,\"z\":2}", &[key("z")]), "[1:12]");
    }

    #[test]
    fn unfollowable_paths_point_at_the_start() {
        assert_eq!(position(r#"{"a":1}"#, &[key("missing")]), "[1:1]");
        assert_eq!(position("{\"a\":[1", &[key("a"), Step::Index(3)]), "[1:1]");
        assert_eq!(position("", &[key("a")]), "[1:1]");
    }
}
