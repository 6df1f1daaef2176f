//! The manager socket's wire codec: frames, requests and replies, with no I/O.
//!
//! The framing is mdadm's (`msg.c`: start magic, signed length, payload, end
//! magic) with our own magic values and explicit little-endian integers, so an
//! mdadm and a umd manager that meet fail on the first word instead of
//! misreading each other. One frame:
//!
//! | offset      | size            | field                                   |
//! | ----------- | --------------- | --------------------------------------- |
//! | 0           | 4               | [`FRAME_START_MAGIC`], bytes `umd{`     |
//! | 4           | 4               | length, `i32` little-endian             |
//! | 8           | max(length, 0)  | payload                                 |
//! | 8 + payload | 4               | [`FRAME_END_MAGIC`], bytes `}dmu`       |
//!
//! What the length means depends on the direction (protocol.md §6.5):
//!
//! | length | client → manager                         | manager → client                     |
//! | ------ | ---------------------------------------- | ------------------------------------ |
//! | > 0    | metadata update blob, opaque here        | ping reply: the manager's version    |
//! | 0      | ping monitor (reply after a full pass)   | ack: update queued, manager pinged   |
//! | -1     | ping manager (re-scan now)               | refused, [`Refusal`] code 1          |
//! | < -1   | invalid: the connection closes           | refused, [`Refusal`] code `-length`  |
//!
//! A frame is at most [`FRAME_BYTES_MAX`] bytes; the decoder rejects a longer
//! length as soon as the header is in, before any payload is buffered.
//! Anything malformed is a [`FrameError`] and the caller closes the connection.

use std::fmt;

/// Opens every frame: the bytes `umd{` (mdadm uses `0x5a5aa5a5`).
pub const FRAME_START_MAGIC: u32 = u32::from_le_bytes(*b"umd{");
/// Closes every frame: the bytes `}dmu` (mdadm uses `0xa5a55a5a`).
pub const FRAME_END_MAGIC: u32 = u32::from_le_bytes(*b"}dmu");
/// Start magic and length.
pub const FRAME_HEADER_LEN: usize = 4 + 4;
/// End magic.
pub const FRAME_TRAILER_LEN: usize = 4;
/// Largest metadata update: a DDF update carries one configuration record or a
/// disk table, tens of KiB; 1 MiB leaves room while bounding what a peer can
/// make the manager allocate.
pub const UPDATE_BYTES_MAX: usize = 1 << 20;
/// Largest version string in a ping reply.
pub const VERSION_BYTES_MAX: usize = 256;
/// Largest frame either side accepts.
pub const FRAME_BYTES_MAX: usize = FRAME_HEADER_LEN + UPDATE_BYTES_MAX + FRAME_TRAILER_LEN;
/// Request length meaning "ping monitor" (mdadm's `ack()` message).
pub const LEN_PING_MONITOR: i32 = 0;
/// Request length meaning "ping manager" (mdadm's `ping_manager`).
pub const LEN_PING_MANAGER: i32 = -1;

const _: () = assert!(FRAME_START_MAGIC != FRAME_END_MAGIC);
const _: () = assert!(FRAME_START_MAGIC != 0x5a5a_a5a5, "not mdadm's");
const _: () = assert!(UPDATE_BYTES_MAX <= i32::MAX as usize, "fits the length");
const _: () = assert!(VERSION_BYTES_MAX <= UPDATE_BYTES_MAX);

/// What a client asks the manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Queue this metadata update (1 to [`UPDATE_BYTES_MAX`] bytes, format
    /// private to the metadata handler); acked once queued, not once written.
    Update(Vec<u8>),
    /// Reply once the monitor completed a full pass that started after the
    /// ping arrived: everything queued before it is applied and written.
    PingMonitor,
    /// Make the manager look for new or changed arrays now; acked at once.
    PingManager,
}

/// Why the manager refused a request; carried as the negated reply length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Refusal {
    /// The metadata handler refused the update (the manager logs why).
    UpdateRefused = 1,
    /// The monitor did not complete a pass within the manager's limit.
    MonitorStalled = 2,
    /// The client runs as a user other than root or the manager's.
    PeerNotAllowed = 3,
    /// The manager serves its client limit already.
    TooManyClients = 4,
}

impl Refusal {
    /// Every refusal, for decoding and tests.
    pub const ALL: [Refusal; 4] = [
        Refusal::UpdateRefused,
        Refusal::MonitorStalled,
        Refusal::PeerNotAllowed,
        Refusal::TooManyClients,
    ];

    /// The code on the wire (the reply length is its negation).
    #[must_use]
    pub fn code(self) -> i32 {
        self as i32
    }

    fn from_code(code: i32) -> Option<Refusal> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::UpdateRefused => "the metadata handler refused the update",
            Refusal::MonitorStalled => "the monitor did not complete a pass in time",
            Refusal::PeerNotAllowed => "this user may not talk to the manager",
            Refusal::TooManyClients => "too many clients",
        })
    }
}

/// What the manager answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The update is queued, or the manager was pinged.
    Ack,
    /// The monitor completed a pass; the manager's version string.
    Version(String),
    /// The request was refused.
    Refused(Refusal),
}

/// A frame that is not the protocol; the connection closes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The first word is not [`FRAME_START_MAGIC`].
    BadStartMagic {
        /// The word received.
        found: u32,
    },
    /// The word after the payload is not [`FRAME_END_MAGIC`].
    BadEndMagic {
        /// The word received.
        found: u32,
    },
    /// The length announces more than [`UPDATE_BYTES_MAX`] bytes.
    TooLong {
        /// The announced length.
        len: i32,
    },
    /// A request length that means nothing (below -1).
    BadRequestLength {
        /// The announced length.
        len: i32,
    },
    /// A reply length that means nothing (an unknown refusal code).
    BadReplyLength {
        /// The announced length.
        len: i32,
    },
    /// A ping reply whose version is longer than [`VERSION_BYTES_MAX`] or not UTF-8.
    BadVersion,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadStartMagic { found } => write!(
                f,
                "bad start magic {found:#010x} (expected {FRAME_START_MAGIC:#010x})"
            ),
            FrameError::BadEndMagic { found } => write!(
                f,
                "bad end magic {found:#010x} (expected {FRAME_END_MAGIC:#010x})"
            ),
            FrameError::TooLong { len } => {
                write!(f, "length {len} exceeds {UPDATE_BYTES_MAX} bytes")
            }
            FrameError::BadRequestLength { len } => write!(f, "request length {len} is invalid"),
            FrameError::BadReplyLength { len } => write!(f, "reply length {len} is invalid"),
            FrameError::BadVersion => write!(
                f,
                "version is not UTF-8 of at most {VERSION_BYTES_MAX} bytes"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// One frame off the wire: its length field and payload (empty unless length > 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The signed length field.
    pub len: i32,
    /// `len` bytes when `len > 0`, else empty.
    pub payload: Vec<u8>,
}

/// Builds frames from bytes the caller reads; never reads ahead of a frame.
///
/// The caller asks [`FrameDecoder::needed`] how many bytes the current frame
/// still lacks, reads at most that many and hands them to
/// [`FrameDecoder::push`]. So the decoder never holds more than one frame and
/// never more than [`FRAME_BYTES_MAX`] bytes.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// The current frame's length field, once its header is in.
    len: Option<i32>,
}

impl FrameDecoder {
    /// Bytes the current frame still lacks (the header's, until it is in).
    #[must_use]
    pub fn needed(&self) -> usize {
        let total = match self.len {
            None => FRAME_HEADER_LEN,
            Some(len) => frame_len(len),
        };
        assert!(self.buf.len() < total, "a complete frame is handed out");
        total - self.buf.len()
    }

    /// True between frames: nothing of the next frame has arrived.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes `bytes` (at most [`FrameDecoder::needed`]); returns the frame they
    /// complete, if any. After an error the decoder starts over, but the stream
    /// is out of step: the caller closes the connection.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<Frame>, FrameError> {
        assert!(
            bytes.len() <= self.needed(),
            "the caller reads what is needed"
        );
        self.buf.extend_from_slice(bytes);
        if self.len.is_none() && self.buf.len() == FRAME_HEADER_LEN {
            match parse_header(&self.buf) {
                Ok(len) => self.len = Some(len),
                Err(error) => {
                    self.reset();
                    return Err(error);
                }
            }
        }
        let Some(len) = self.len else {
            return Ok(None);
        };
        if self.buf.len() < frame_len(len) {
            return Ok(None);
        }
        assert_eq!(self.buf.len(), frame_len(len), "never past one frame");
        let end = le_u32(&self.buf[self.buf.len() - FRAME_TRAILER_LEN..]);
        let mut buf = std::mem::take(&mut self.buf);
        self.reset();
        if end != FRAME_END_MAGIC {
            return Err(FrameError::BadEndMagic { found: end });
        }
        buf.truncate(buf.len() - FRAME_TRAILER_LEN);
        buf.drain(..FRAME_HEADER_LEN);
        assert_eq!(buf.len(), payload_len(len), "payload as announced");
        Ok(Some(Frame { len, payload: buf }))
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.len = None;
    }
}

/// Checks a header's magic and length bound; returns the length field.
fn parse_header(header: &[u8]) -> Result<i32, FrameError> {
    assert_eq!(header.len(), FRAME_HEADER_LEN, "a whole header");
    let start = le_u32(&header[0..4]);
    if start != FRAME_START_MAGIC {
        return Err(FrameError::BadStartMagic { found: start });
    }
    let len = i32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if payload_len(len) > UPDATE_BYTES_MAX {
        return Err(FrameError::TooLong { len });
    }
    Ok(len)
}

/// Payload bytes a length field announces: none for zero and negative lengths.
fn payload_len(len: i32) -> usize {
    usize::try_from(len).unwrap_or(0)
}

/// Whole frame bytes for a length field.
fn frame_len(len: i32) -> usize {
    FRAME_HEADER_LEN + payload_len(len) + FRAME_TRAILER_LEN
}

/// Appends one frame with length field `len` and `payload` to `out`.
fn encode_frame(len: i32, payload: &[u8], out: &mut Vec<u8>) {
    assert_eq!(
        payload.len(),
        payload_len(len),
        "payload matches its length"
    );
    assert!(payload.len() <= UPDATE_BYTES_MAX, "frames are bounded");
    out.reserve(frame_len(len));
    out.extend_from_slice(&FRAME_START_MAGIC.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&FRAME_END_MAGIC.to_le_bytes());
}

impl Request {
    /// Appends this request's frame to `out`. An update must be 1 to
    /// [`UPDATE_BYTES_MAX`] bytes (the client checks before encoding).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Request::Update(blob) => {
                assert!(!blob.is_empty(), "an empty update would be a ping");
                assert!(blob.len() <= UPDATE_BYTES_MAX, "checked by the client");
                encode_frame(blob.len() as i32, blob, out);
            }
            Request::PingMonitor => encode_frame(LEN_PING_MONITOR, &[], out),
            Request::PingManager => encode_frame(LEN_PING_MANAGER, &[], out),
        }
    }

    /// The request a frame carries.
    pub fn from_frame(frame: Frame) -> Result<Request, FrameError> {
        match frame.len {
            len if len > 0 => {
                assert_eq!(frame.payload.len(), payload_len(len), "decoder checked");
                Ok(Request::Update(frame.payload))
            }
            LEN_PING_MONITOR => Ok(Request::PingMonitor),
            LEN_PING_MANAGER => Ok(Request::PingManager),
            len => Err(FrameError::BadRequestLength { len }),
        }
    }
}

impl Reply {
    /// Appends this reply's frame to `out`. A version is at most
    /// [`VERSION_BYTES_MAX`] bytes and not empty.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Ack => encode_frame(0, &[], out),
            Reply::Version(version) => {
                assert!(!version.is_empty(), "an empty version would be an ack");
                assert!(version.len() <= VERSION_BYTES_MAX, "versions are short");
                encode_frame(version.len() as i32, version.as_bytes(), out);
            }
            Reply::Refused(refusal) => encode_frame(-refusal.code(), &[], out),
        }
    }

    /// The reply a frame carries.
    pub fn from_frame(frame: Frame) -> Result<Reply, FrameError> {
        match frame.len {
            0 => Ok(Reply::Ack),
            len if len > 0 => {
                if frame.payload.len() > VERSION_BYTES_MAX {
                    return Err(FrameError::BadVersion);
                }
                String::from_utf8(frame.payload)
                    .map(Reply::Version)
                    .map_err(|_| FrameError::BadVersion)
            }
            len => len
                .checked_neg()
                .and_then(Refusal::from_code)
                .map(Reply::Refused)
                .ok_or(FrameError::BadReplyLength { len }),
        }
    }
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes);
    u32::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `bytes` in pieces of at most `step`, as a socket might deliver them.
    fn decode_all(bytes: &[u8], step: usize) -> Result<Vec<Frame>, FrameError> {
        let mut decoder = FrameDecoder::default();
        let mut frames = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = decoder.needed().min(step).min(rest.len());
            if let Some(frame) = decoder.push(&rest[..take])? {
                frames.push(frame);
            }
            rest = &rest[take..];
        }
        assert!(decoder.is_idle(), "input ends on a frame boundary");
        Ok(frames)
    }

    #[test]
    fn the_magics_read_as_text_in_a_dump() {
        assert_eq!(FRAME_START_MAGIC.to_le_bytes(), *b"umd{");
        assert_eq!(FRAME_END_MAGIC.to_le_bytes(), *b"}dmu");
    }

    #[test]
    fn requests_round_trip_byte_by_byte() {
        let requests = [
            Request::Update(b"ddf update".to_vec()),
            Request::PingMonitor,
            Request::PingManager,
            Request::Update(vec![7; UPDATE_BYTES_MAX]),
        ];
        let mut wire = Vec::new();
        for request in &requests {
            request.encode(&mut wire);
        }
        assert_eq!(&wire[..4], b"umd{");
        assert_eq!(wire[4..8], 10i32.to_le_bytes());
        assert_eq!(&wire[18..22], b"}dmu");
        for step in [1, 3, 4096] {
            let frames = decode_all(&wire, step).expect("valid frames");
            let decoded: Vec<Request> = frames
                .into_iter()
                .map(|f| Request::from_frame(f).expect("request"))
                .collect();
            assert_eq!(decoded, requests);
        }
    }

    #[test]
    fn replies_round_trip() {
        let mut replies = vec![Reply::Ack, Reply::Version("umd 0.1.0".into())];
        replies.extend(Refusal::ALL.map(Reply::Refused));
        for reply in replies {
            let mut wire = Vec::new();
            reply.encode(&mut wire);
            let frames = decode_all(&wire, 2).expect("valid frame");
            assert_eq!(frames.len(), 1);
            let back = Reply::from_frame(frames.into_iter().next().expect("one"));
            assert_eq!(back, Ok(reply));
        }
    }

    #[test]
    fn a_ping_manager_is_a_refusal_when_read_as_a_reply() {
        let mut wire = Vec::new();
        Request::PingManager.encode(&mut wire);
        let frame = decode_all(&wire, 64).expect("frame").remove(0);
        assert_eq!(
            Reply::from_frame(frame),
            Ok(Reply::Refused(Refusal::UpdateRefused))
        );
    }

    #[test]
    fn bad_magics_lengths_and_versions_are_errors() {
        let mut wire = Vec::new();
        Request::PingMonitor.encode(&mut wire);
        let mut bad_start = wire.clone();
        bad_start[0] ^= 0xff;
        assert!(matches!(
            decode_all(&bad_start, 64),
            Err(FrameError::BadStartMagic { .. })
        ));
        let mut bad_end = wire.clone();
        bad_end[9] ^= 0xff;
        assert!(matches!(
            decode_all(&bad_end, 64),
            Err(FrameError::BadEndMagic { .. })
        ));
        let mut mdadm = 0x5a5a_a5a5u32.to_le_bytes().to_vec();
        mdadm.extend_from_slice(&[0; 8]);
        assert!(matches!(
            decode_all(&mdadm, 64),
            Err(FrameError::BadStartMagic { found: 0x5a5a_a5a5 })
        ));
        let mut too_long = FRAME_START_MAGIC.to_le_bytes().to_vec();
        too_long.extend_from_slice(&(UPDATE_BYTES_MAX as i32 + 1).to_le_bytes());
        let mut decoder = FrameDecoder::default();
        assert_eq!(
            decoder.push(&too_long),
            Err(FrameError::TooLong {
                len: UPDATE_BYTES_MAX as i32 + 1
            }),
            "refused on the header, before any payload"
        );
        let frame = |len| Frame {
            len,
            payload: Vec::new(),
        };
        assert_eq!(
            Request::from_frame(frame(-2)),
            Err(FrameError::BadRequestLength { len: -2 })
        );
        assert_eq!(
            Reply::from_frame(frame(i32::MIN)),
            Err(FrameError::BadReplyLength { len: i32::MIN })
        );
        let not_utf8 = Frame {
            len: 2,
            payload: vec![0xff, 0xfe],
        };
        assert_eq!(Reply::from_frame(not_utf8), Err(FrameError::BadVersion));
    }

    #[test]
    fn the_decoder_never_wants_more_than_one_frame() {
        let mut decoder = FrameDecoder::default();
        assert_eq!(decoder.needed(), FRAME_HEADER_LEN);
        let mut wire = Vec::new();
        Request::Update(vec![1; 100]).encode(&mut wire);
        Request::PingManager.encode(&mut wire);
        assert_eq!(decoder.push(&wire[..FRAME_HEADER_LEN]), Ok(None));
        assert_eq!(decoder.needed(), 100 + FRAME_TRAILER_LEN);
        assert!(!decoder.is_idle());
        let frame = decoder.push(&wire[FRAME_HEADER_LEN..112]).expect("valid");
        assert_eq!(frame.map(|f| f.payload.len()), Some(100));
        assert!(decoder.is_idle());
        assert_eq!(decoder.needed(), FRAME_HEADER_LEN);
    }
}
