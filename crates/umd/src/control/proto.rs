//! The control protocol's codec: framing, escaping, requests and replies, with no sockets.
//!
//! It exists apart from the server so the fuzz target and the unit tests can drive every
//! byte a peer may send through the same code the server runs (style R21), without I/O.
//!
//! # Wire format
//!
//! A connection carries UTF-8 text lines ending in `\n` (a `\r` before it is dropped, so
//! `socat` users may type CRLF). No line, requests and replies alike, may exceed
//! [`MAX_LINE_BYTES`] bytes without its terminator; a longer request is answered with
//! `err EINVAL ...` and skipped up to its next newline, and the connection stays usable.
//!
//! Requests (client to server):
//!
//! | request | meaning |
//! | --- | --- |
//! | `get ATTR` | read one attribute |
//! | `set ATTR VALUE` | write one attribute; VALUE is everything after the single space that follows ATTR, escaped |
//! | `list` | every attribute name |
//! | `watch ATTR...` | switch the connection to watch mode for up to [`MAX_WATCH_ATTRS`] attributes |
//!
//! Replies (server to client), one per request:
//!
//! | reply | meaning |
//! | --- | --- |
//! | `ok` | a `set` or `watch` succeeded |
//! | `ok VALUE` | a `get` succeeded (VALUE escaped); for `list`, the names joined by newlines |
//! | `err ERRNO MESSAGE` | refused; ERRNO is md's code by name (`EINVAL`, `EAGAIN`, ...), MESSAGE escaped |
//!
//! After `ok` to a `watch`, the server sends only events, first one per attribute with its
//! current value, then one per change (repeated changes before delivery may coalesce, as
//! sysfs poll does); anything the client sends afterwards is ignored:
//!
//! | event | meaning |
//! | --- | --- |
//! | `event ATTR VALUE` | ATTR now reads VALUE (escaped) |
//! | `event-err ATTR ERRNO MESSAGE` | reading ATTR failed (the member went away); the watch continues |
//!
//! ATTR is md's sysfs name (`array_state`, `dev-sdb/state`): 1 to [`MAX_ATTR_NAME_BYTES`]
//! printable ASCII characters, no spaces. Values can span lines (`bad_blocks` lists
//! `sector length` lines), so VALUE and MESSAGE escape `\` as `\\`, newline as `\n`,
//! carriage return as `\r`, tab as `\t` and any other ASCII control character as `\xHH`.

use std::fmt::Write as _;
use umd_engine::{EngineError, Errno};

/// Longest line either side may send, terminator excluded. md's largest attribute is a
/// `bad_blocks` list of at most 512 entries (one page of `sector length` pairs, about 16 KiB
/// escaped); 64 KiB leaves room for that and for `list` on arrays with many members while
/// bounding what a peer can make us buffer (R7).
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;

/// Longest attribute name. md's longest is `dev-<name>/unacknowledged_bad_blocks` with a
/// kernel device name of at most 32 bytes; 256 is generous and still bounds the watch table.
pub(crate) const MAX_ATTR_NAME_BYTES: usize = 256;

/// Most attributes one `watch` may name: every array-level pollable attribute plus `state`
/// and `bad_blocks` of a few dozen members, as mdmon watches (protocol.md §6.2).
pub(crate) const MAX_WATCH_ATTRS: usize = 256;

/// One request a client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// `get ATTR`.
    Get(String),
    /// `set ATTR VALUE`.
    Set {
        /// md's attribute name.
        attr: String,
        /// The unescaped value, exactly as the client meant it.
        value: String,
    },
    /// `list`.
    List,
    /// `watch ATTR...`.
    Watch(Vec<String>),
}

impl Request {
    /// The request as one line, terminator included.
    pub(crate) fn encode(&self) -> String {
        let mut line = match self {
            Request::Get(attr) => format!("get {attr}"),
            Request::Set { attr, value } => format!("set {attr} {}", escape(value)),
            Request::List => "list".to_owned(),
            Request::Watch(attrs) => format!("watch {}", attrs.join(" ")),
        };
        line.push('\n');
        line
    }
}

/// One line a server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `ok` with its unescaped value, if any.
    Ok(Option<String>),
    /// `err ERRNO MESSAGE`.
    Err(EngineError),
    /// `event ATTR VALUE`.
    Event {
        /// The attribute that changed.
        attr: String,
        /// Its value read at delivery.
        value: String,
    },
    /// `event-err ATTR ERRNO MESSAGE`.
    EventErr {
        /// The attribute that could not be read.
        attr: String,
        /// Why.
        error: EngineError,
    },
}

/// A protocol violation by the peer: not md's refusal but a line that is not the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProtoError(pub(crate) String);

impl ProtoError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The violation as md's refusal, for replying to a client.
    pub(crate) fn into_engine(self) -> EngineError {
        EngineError::new(Errno::EINVAL, self.0)
    }
}

/// Escape a value so it fits on one line (see the module doc).
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Undo [`escape`]; raw control characters and unknown escapes are refused so each value
/// has exactly one spelling.
pub(crate) fn unescape(text: &str) -> Result<String, ProtoError> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c.is_ascii_control() {
            return Err(ProtoError::new(format!(
                "raw control character 0x{:02x} in a value",
                c as u32
            )));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('x') => out.push(unescape_hex(&mut chars)?),
            Some(other) => return Err(ProtoError::new(format!("unknown escape \\{other}"))),
            None => return Err(ProtoError::new("value ends inside an escape")),
        }
    }
    Ok(out)
}

fn unescape_hex(chars: &mut std::str::Chars<'_>) -> Result<char, ProtoError> {
    let digits: String = chars.take(2).collect();
    let byte = (digits.len() == 2)
        .then(|| u8::from_str_radix(&digits, 16).ok())
        .flatten()
        .ok_or_else(|| ProtoError::new(format!("bad escape \\x{digits}")))?;
    // Only control characters are ever hex-escaped; anything else would be a second
    // spelling, and bytes above 0x7f would not be UTF-8 on their own.
    if byte.is_ascii_control() {
        Ok(char::from(byte))
    } else {
        Err(ProtoError::new(format!("bad escape \\x{digits}")))
    }
}

/// Check an attribute name against the module doc's rules.
pub(crate) fn check_attr(name: &str) -> Result<(), ProtoError> {
    if name.is_empty() {
        return Err(ProtoError::new("missing attribute name"));
    }
    if name.len() > MAX_ATTR_NAME_BYTES {
        return Err(ProtoError::new(format!(
            "attribute name longer than {MAX_ATTR_NAME_BYTES} bytes"
        )));
    }
    if !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ProtoError::new(
            "attribute names are printable ASCII without spaces",
        ));
    }
    Ok(())
}

/// Decode one request line (terminator already removed).
pub(crate) fn decode_request(line: &[u8]) -> Result<Request, ProtoError> {
    let line = std::str::from_utf8(line).map_err(|_| ProtoError::new("request is not UTF-8"))?;
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    match verb {
        "get" => {
            check_attr(rest)?;
            Ok(Request::Get(rest.to_owned()))
        }
        "set" => {
            let (attr, value) = rest
                .split_once(' ')
                .ok_or_else(|| ProtoError::new("usage: set ATTR VALUE"))?;
            check_attr(attr)?;
            Ok(Request::Set {
                attr: attr.to_owned(),
                value: unescape(value)?,
            })
        }
        "list" if rest.is_empty() => Ok(Request::List),
        "list" => Err(ProtoError::new("list takes no arguments")),
        "watch" => decode_watch(rest),
        "" => Err(ProtoError::new("empty request")),
        _ => Err(ProtoError::new(format!(
            "unknown request {:?}; expected get, set, list or watch",
            truncate(verb)
        ))),
    }
}

fn decode_watch(rest: &str) -> Result<Request, ProtoError> {
    let attrs: Vec<String> = rest.split(' ').map(str::to_owned).collect();
    if attrs.len() > MAX_WATCH_ATTRS {
        return Err(ProtoError::new(format!(
            "watch takes at most {MAX_WATCH_ATTRS} attributes"
        )));
    }
    for attr in &attrs {
        check_attr(attr)?;
    }
    Ok(Request::Watch(attrs))
}

/// At most a few dozen characters of peer input, for error messages.
fn truncate(text: &str) -> String {
    const SHOWN_CHARS_MAX: usize = 32;
    text.chars().take(SHOWN_CHARS_MAX).collect()
}

/// `ok` or `ok VALUE`, terminator included.
pub(crate) fn encode_ok(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("ok {}\n", escape(v)),
        None => "ok\n".to_owned(),
    }
}

/// `err ERRNO MESSAGE`, terminator included.
pub(crate) fn encode_err(error: &EngineError) -> String {
    format!("err {} {}\n", error.errno.name(), escape(&error.message))
}

/// An event line for a watcher, terminator included.
pub(crate) fn encode_event(attr: &str, value: &Result<String, EngineError>) -> String {
    match value {
        Ok(v) => format!("event {attr} {}\n", escape(v)),
        Err(e) => format!(
            "event-err {attr} {} {}\n",
            e.errno.name(),
            escape(&e.message)
        ),
    }
}

/// Decode one reply or event line (terminator already removed).
pub(crate) fn decode_reply(line: &[u8]) -> Result<Reply, ProtoError> {
    let line = std::str::from_utf8(line).map_err(|_| ProtoError::new("reply is not UTF-8"))?;
    let (kind, rest) = match line.split_once(' ') {
        Some((kind, rest)) => (kind, Some(rest)),
        None => (line, None),
    };
    match (kind, rest) {
        ("ok", None) => Ok(Reply::Ok(None)),
        ("ok", Some(value)) => Ok(Reply::Ok(Some(unescape(value)?))),
        ("err", Some(rest)) => Ok(Reply::Err(decode_error(rest)?)),
        ("event", Some(rest)) => {
            let (attr, value) = rest.split_once(' ').unwrap_or((rest, ""));
            check_attr(attr)?;
            Ok(Reply::Event {
                attr: attr.to_owned(),
                value: unescape(value)?,
            })
        }
        ("event-err", Some(rest)) => {
            let (attr, error) = rest
                .split_once(' ')
                .ok_or_else(|| ProtoError::new("event-err without an errno"))?;
            check_attr(attr)?;
            Ok(Reply::EventErr {
                attr: attr.to_owned(),
                error: decode_error(error)?,
            })
        }
        _ => Err(ProtoError::new(format!(
            "unexpected reply {:?}",
            truncate(line)
        ))),
    }
}

fn decode_error(rest: &str) -> Result<EngineError, ProtoError> {
    let (name, message) = rest.split_once(' ').unwrap_or((rest, ""));
    let errno = Errno::from_name(name)
        .ok_or_else(|| ProtoError::new(format!("unknown errno {:?}", truncate(name))))?;
    Ok(EngineError::new(errno, unescape(message)?))
}

/// What [`LineFramer::next_frame`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A complete line without its terminator.
    Line(Vec<u8>),
    /// A line longer than [`MAX_LINE_BYTES`]; its bytes were dropped up to its newline.
    TooLong,
}

/// Splits a byte stream into lines, holding at most [`MAX_LINE_BYTES`] plus one pushed
/// chunk, so a peer that never sends a newline cannot grow it without bound.
#[derive(Debug, Default)]
pub(crate) struct LineFramer {
    buf: Vec<u8>,
    /// Inside an over-long line already reported: drop bytes up to the next newline.
    discarding: bool,
}

impl LineFramer {
    /// Append bytes read from the peer. Call [`Self::next_frame`] until `None` after each
    /// push, or the buffer grows by the pushed amount.
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete line, or `None` until more bytes are pushed.
    pub(crate) fn next_frame(&mut self) -> Option<Frame> {
        loop {
            let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_LINE_BYTES || self.discarding {
                    self.buf.clear();
                    if !self.discarding {
                        self.discarding = true;
                        return Some(Frame::TooLong);
                    }
                }
                return None;
            };
            let mut line: Vec<u8> = self.buf.drain(..=end).collect();
            if self.discarding {
                self.discarding = false;
                continue;
            }
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.len() > MAX_LINE_BYTES {
                return Some(Frame::TooLong);
            }
            return Some(Frame::Line(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(framer: &mut LineFramer) -> Vec<Frame> {
        std::iter::from_fn(|| framer.next_frame()).collect()
    }

    #[test]
    fn requests_round_trip() {
        let cases = [
            Request::Get("array_state".into()),
            Request::Set {
                attr: "dev-sdb/bad_blocks".into(),
                value: "8 16\n 24\\x 32\r\t\u{1}é".into(),
            },
            Request::Set {
                attr: "array_state".into(),
                value: String::new(),
            },
            Request::List,
            Request::Watch(vec!["array_state".into(), "dev-sdb/state".into()]),
        ];
        for request in cases {
            let line = request.encode();
            assert_eq!(line.matches('\n').count(), 1, "{line:?}");
            let body = line.strip_suffix('\n').unwrap_or(&line);
            assert_eq!(decode_request(body.as_bytes()), Ok(request));
        }
    }

    #[test]
    fn set_value_keeps_spaces() {
        let got = decode_request(b"set new_dev  8:16 ");
        let want = Request::Set {
            attr: "new_dev".into(),
            value: " 8:16 ".into(),
        };
        assert_eq!(got, Ok(want));
    }

    #[test]
    fn garbage_requests_are_refused() {
        let bad: [&[u8]; 12] = [
            b"",
            b"frobnicate x",
            b"GET array_state",
            b"get",
            b"get two words",
            b"set array_state",
            b"set  clean",
            b"set a bad\\q",
            b"list extra",
            b"watch",
            b"watch a  b",
            b"get \xff\xfe",
        ];
        for line in bad {
            let error = decode_request(line).expect_err("garbage must be refused");
            assert_eq!(error.into_engine().errno, Errno::EINVAL);
        }
        let too_many = format!("watch{}", " a".repeat(MAX_WATCH_ATTRS + 1));
        assert!(decode_request(too_many.as_bytes()).is_err());
        let long_name = format!("get {}", "a".repeat(MAX_ATTR_NAME_BYTES + 1));
        assert!(decode_request(long_name.as_bytes()).is_err());
    }

    #[test]
    fn replies_round_trip() {
        let error = EngineError::new(Errno::EAGAIN, "metadata manager\nmust ack");
        let lines = [
            (encode_ok(None), Reply::Ok(None)),
            (encode_ok(Some("")), Reply::Ok(Some(String::new()))),
            (
                encode_ok(Some("8 8\n16 8\n")),
                Reply::Ok(Some("8 8\n16 8\n".into())),
            ),
            (encode_err(&error), Reply::Err(error.clone())),
            (
                encode_event("array_state", &Ok("clean".into())),
                Reply::Event {
                    attr: "array_state".into(),
                    value: "clean".into(),
                },
            ),
            (
                encode_event("dev-sdb/state", &Err(error.clone())),
                Reply::EventErr {
                    attr: "dev-sdb/state".into(),
                    error,
                },
            ),
        ];
        for (line, want) in lines {
            let body = line.strip_suffix('\n').unwrap_or(&line);
            assert!(!body.contains('\n'));
            assert_eq!(decode_reply(body.as_bytes()), Ok(want));
        }
        assert!(decode_reply(b"err EWHAT x").is_err());
        assert!(decode_reply(b"okay").is_err());
        assert!(decode_reply(b"err").is_err());
    }

    #[test]
    fn hex_escapes_only_spell_control_characters() {
        assert_eq!(unescape("\\x01"), Ok("\u{1}".into()));
        assert!(unescape("\\x41").is_err());
        assert!(unescape("\\xff").is_err());
        assert!(unescape("\\x4").is_err());
        assert!(unescape("\\").is_err());
        assert!(unescape("a\u{7}").is_err());
    }

    #[test]
    fn framer_splits_lines_across_pushes() {
        let mut framer = LineFramer::default();
        framer.push(b"get a");
        assert_eq!(framer.next_frame(), None);
        framer.push(b"rray_state\r\nlist\nget");
        assert_eq!(
            frames(&mut framer),
            vec![
                Frame::Line(b"get array_state".to_vec()),
                Frame::Line(b"list".to_vec())
            ]
        );
        framer.push(b" x\n");
        assert_eq!(frames(&mut framer), vec![Frame::Line(b"get x".to_vec())]);
    }

    #[test]
    fn framer_reports_an_oversize_line_once_and_recovers() {
        let mut framer = LineFramer::default();
        let chunk = vec![b'a'; 4096];
        let mut seen = Vec::new();
        for _ in 0..(MAX_LINE_BYTES / chunk.len() + 3) {
            framer.push(&chunk);
            seen.extend(frames(&mut framer));
            assert!(framer.buf.len() <= MAX_LINE_BYTES + chunk.len());
        }
        framer.push(b"tail\nlist\n");
        seen.extend(frames(&mut framer));
        assert_eq!(seen, vec![Frame::TooLong, Frame::Line(b"list".to_vec())]);
    }

    #[test]
    fn framer_refuses_an_oversize_line_pushed_whole() {
        let mut framer = LineFramer::default();
        let mut data = vec![b'a'; MAX_LINE_BYTES + 1];
        data.extend_from_slice(b"\nlist\n");
        framer.push(&data);
        assert_eq!(
            frames(&mut framer),
            vec![Frame::TooLong, Frame::Line(b"list".to_vec())]
        );
        let mut framer = LineFramer::default();
        let mut data = vec![b'a'; MAX_LINE_BYTES];
        data.push(b'\n');
        framer.push(&data);
        assert!(matches!(framer.next_frame(), Some(Frame::Line(l)) if l.len() == MAX_LINE_BYTES));
    }

    proptest! {
        #[test]
        fn escaped_values_round_trip(value in any::<String>()) {
            let escaped = escape(&value);
            prop_assert!(!escaped.bytes().any(|b| b.is_ascii_control()));
            prop_assert_eq!(unescape(&escaped), Ok(value.clone()));
            let request = Request::Set { attr: "bad_blocks".into(), value };
            let line = request.encode();
            prop_assert_eq!(decode_request(line.trim_end_matches('\n').as_bytes()), Ok(request));
        }

        #[test]
        fn decoders_never_panic(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_request(&line);
            let _ = decode_reply(&line);
        }
    }
}
