//! Reading an import's file: a window of its bytes into a chunk of whole lines, numbered,
//! UTF-8 checked, blank ones skipped, each at most a request body's size.

use crate::model::job::LineError;
use crate::validate::FieldError;

use super::{CHUNK_LINES, MAX_LINE_BYTES};

/// The lines of one chunk as read from a window of the file.
pub(super) struct Chunk<'a> {
    pub(super) lines: Vec<(u64, Result<&'a str, LineError>)>,
    /// Bytes of the window the chunk takes (complete lines only).
    pub(super) consumed: usize,
    /// The number of the last line the chunk takes.
    pub(super) last: u64,
    /// Why the file is no JSONL, when a line says so: the job fails there.
    pub(super) bad_file: Option<String>,
    /// The first line runs past the window: longer than any line may be.
    pub(super) overlong: bool,
}

pub(super) fn line_error(
    line: u64,
    code: &str,
    detail: String,
    errors: Vec<FieldError>,
) -> LineError {
    LineError {
        line,
        code: code.to_owned(),
        detail,
        errors,
    }
}

pub(super) fn too_long(line: u64) -> LineError {
    line_error(
        line,
        "payload_too_large",
        format!("the line is longer than {MAX_LINE_BYTES} bytes, a request body's limit"),
        Vec::new(),
    )
}

/// Up to [`CHUNK_LINES`] lines of `window` (the file from the byte after line `last`): whole
/// lines only, the last one without its newline only at the file's end.
pub(super) fn read_chunk(window: &[u8], last: u64, at_end: bool) -> Chunk<'_> {
    let mut chunk = Chunk {
        lines: Vec::new(),
        consumed: 0,
        last,
        bad_file: None,
        overlong: false,
    };
    while chunk.lines.len() < CHUNK_LINES && chunk.consumed < window.len() {
        let rest = &window[chunk.consumed..];
        let (mut raw, next) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], chunk.consumed + i + 1),
            None if at_end => (rest, window.len()),
            None => {
                chunk.overlong = chunk.consumed == 0;
                break;
            }
        };
        let number = chunk.last + 1;
        if number == 1 {
            raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        }
        raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > MAX_LINE_BYTES {
            chunk.lines.push((number, Err(too_long(number))));
        } else {
            match std::str::from_utf8(raw) {
                Ok(text) if text.trim().is_empty() => {}
                Ok(text) => chunk.lines.push((number, Ok(text))),
                Err(e) => {
                    chunk.bad_file = Some(format!(
                        "not UTF-8 text: line {number} has an invalid byte at column {}",
                        e.valid_up_to() + 1
                    ));
                    break;
                }
            }
        }
        chunk.consumed = next;
        chunk.last = number;
    }
    chunk
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn a_chunk_takes_whole_lines_skips_blank_ones_and_stops_at_a_partial_one() {
        let window = b"{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":";
        let chunk = read_chunk(window, 0, false);
        let lines: Vec<(u64, &str)> = chunk
            .lines
            .iter()
            .map(|(n, l)| (*n, *l.as_ref().unwrap()))
            .collect();
        assert_eq!(lines, [(1, "{\"a\":1}"), (4, "{\"b\":2}")]);
        assert_eq!(chunk.consumed, window.len() - "{\"c\":".len());
        assert_eq!(chunk.last, 4);
        // At the file's end, the last line needs no newline.
        let chunk = read_chunk(window, 0, true);
        assert_eq!(chunk.lines.len(), 3);
        assert_eq!(chunk.consumed, window.len());
    }

    #[test]
    fn a_line_that_is_not_utf8_ends_the_chunk_before_it_and_fails_the_file() {
        let chunk = read_chunk(b"{}\n{\"a\":\"\xff\"}\n{}\n", 7, false);
        assert_eq!(chunk.lines.len(), 1);
        assert_eq!(chunk.last, 8);
        assert_eq!(chunk.consumed, 3);
        assert!(chunk.bad_file.unwrap().contains("line 9"));
    }

    #[test]
    fn a_byte_order_mark_opens_the_first_line_only() {
        let chunk = read_chunk(b"\xEF\xBB\xBF{}\n", 0, false);
        assert_eq!(chunk.lines[0].1.as_ref().unwrap(), &"{}");
    }

    #[test]
    fn a_line_past_the_window_is_overlong_and_one_past_the_limit_fails_alone() {
        assert!(read_chunk(b"{\"a\":", 0, false).overlong);
        let mut long = vec![b' '; MAX_LINE_BYTES + 1];
        long.extend(b"\n{}\n");
        let chunk = read_chunk(&long, 0, false);
        assert_eq!(chunk.lines.len(), 2);
        assert_eq!(
            chunk.lines[0].1.as_ref().unwrap_err().code,
            "payload_too_large"
        );
    }
}
