//! The NBD wire codec: handshake option handling, request parsing and reply encoding.
//!
//! This file is sans-I/O (style R8): it never touches a socket, so the same code
//! runs under the threaded server, the fuzz target and the unit tests below. The
//! caller reads fixed-size headers off the wire, hands them here, and writes back
//! whatever bytes come out. Numbers and field layouts follow the NBD protocol
//! document (`doc/proto.md` of the reference implementation); every constant
//! carries that document's name.
//!
//! Negotiation is a two-state machine in rustls's form: [`ExpectClientFlags`]
//! consumes the client's flags and yields [`ExpectOption`], whose
//! [`ExpectOption::handle`] consumes `self` and returns the next step. We speak
//! fixed newstyle only and reply with simple replies only: structured replies are
//! refused with `NBD_REP_ERR_UNSUP`, which every client handles.
//!
//! Several named exports: every option is answered from an [`ExportSet`], the
//! caller's snapshot of what may be chosen at that moment, so an export withdrawn
//! between two options is already unknown to the second. The empty name means the
//! default export, which the set names explicitly: when that export is withdrawn
//! the empty name is unknown too, rather than silently meaning another array.
//!
//! Alignment: the export advertises a 512-byte minimum block, but byte-granular
//! READ, WRITE, TRIM and WRITE_ZEROES are served rather than refused, since the
//! host handles arbitrary byte ranges and refusing gains nothing.

use std::fmt;

use umd_engine::Errno;

/// Server greeting magic, ASCII "NBDMAGIC" (`NBDMAGIC`, also `INIT_PASSWD`).
pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
/// Newstyle magic, ASCII "IHAVEOPT"; also prefixes every client option (`IHAVEOPT`).
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
/// Magic opening every option reply (`NBD_REP_MAGIC`, "magic number for replies").
pub const NBD_REP_MAGIC: u64 = 0x0003_e889_0455_65a9;
/// Request magic (`NBD_REQUEST_MAGIC`).
pub const NBD_REQUEST_MAGIC: u32 = 0x2560_9513;
/// Simple reply magic (`NBD_SIMPLE_REPLY_MAGIC`).
pub const NBD_SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

/// Handshake flag: the server speaks fixed newstyle (`NBD_FLAG_FIXED_NEWSTYLE`).
pub const NBD_FLAG_FIXED_NEWSTYLE: u16 = 1 << 0;
/// Handshake flag: the server can omit the 124 reserved zero bytes (`NBD_FLAG_NO_ZEROES`).
pub const NBD_FLAG_NO_ZEROES: u16 = 1 << 1;
/// Client flag: the client speaks fixed newstyle (`NBD_FLAG_C_FIXED_NEWSTYLE`).
pub const NBD_FLAG_C_FIXED_NEWSTYLE: u32 = 1 << 0;
/// Client flag: omit the 124 zero bytes after `NBD_OPT_EXPORT_NAME` (`NBD_FLAG_C_NO_ZEROES`).
pub const NBD_FLAG_C_NO_ZEROES: u32 = 1 << 1;
/// Every client flag this server understands; others force a close (proto.md, handshake).
pub const CLIENT_FLAGS_KNOWN: u32 = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES;

/// Option: choose an export and enter transmission, old style (`NBD_OPT_EXPORT_NAME`).
pub const NBD_OPT_EXPORT_NAME: u32 = 1;
/// Option: the client gives up (`NBD_OPT_ABORT`).
pub const NBD_OPT_ABORT: u32 = 2;
/// Option: list exports (`NBD_OPT_LIST`).
pub const NBD_OPT_LIST: u32 = 3;
/// Option: describe an export without entering transmission (`NBD_OPT_INFO`).
pub const NBD_OPT_INFO: u32 = 6;
/// Option: describe an export and enter transmission (`NBD_OPT_GO`).
pub const NBD_OPT_GO: u32 = 7;
/// Option: ask for structured replies, which we refuse (`NBD_OPT_STRUCTURED_REPLY`).
pub const NBD_OPT_STRUCTURED_REPLY: u32 = 8;

/// Option reply: success, final reply (`NBD_REP_ACK`).
pub const NBD_REP_ACK: u32 = 1;
/// Option reply: one export name, for `NBD_OPT_LIST` (`NBD_REP_SERVER`).
pub const NBD_REP_SERVER: u32 = 2;
/// Option reply: one information item for INFO/GO (`NBD_REP_INFO`).
pub const NBD_REP_INFO: u32 = 3;
/// Bit marking an option reply as an error (`NBD_REP_FLAG_ERROR`).
pub const NBD_REP_FLAG_ERROR: u32 = 1 << 31;
/// Option reply: option not supported (`NBD_REP_ERR_UNSUP`).
pub const NBD_REP_ERR_UNSUP: u32 = NBD_REP_FLAG_ERROR | 1;
/// Option reply: the option's data is malformed (`NBD_REP_ERR_INVALID`).
pub const NBD_REP_ERR_INVALID: u32 = NBD_REP_FLAG_ERROR | 3;
/// Option reply: no export by that name (`NBD_REP_ERR_UNKNOWN`).
pub const NBD_REP_ERR_UNKNOWN: u32 = NBD_REP_FLAG_ERROR | 6;

/// Information item: size and transmission flags (`NBD_INFO_EXPORT`).
pub const NBD_INFO_EXPORT: u16 = 0;
/// Information item: the export's canonical name (`NBD_INFO_NAME`).
pub const NBD_INFO_NAME: u16 = 1;
/// Information item: a human-readable description (`NBD_INFO_DESCRIPTION`).
pub const NBD_INFO_DESCRIPTION: u16 = 2;
/// Information item: minimum, preferred and maximum block sizes (`NBD_INFO_BLOCK_SIZE`).
pub const NBD_INFO_BLOCK_SIZE: u16 = 3;

/// Transmission flag: the flags field is valid (`NBD_FLAG_HAS_FLAGS`).
pub const NBD_FLAG_HAS_FLAGS: u16 = 1 << 0;
/// Transmission flag: the export is read-only (`NBD_FLAG_READ_ONLY`).
pub const NBD_FLAG_READ_ONLY: u16 = 1 << 1;
/// Transmission flag: `NBD_CMD_FLUSH` is accepted (`NBD_FLAG_SEND_FLUSH`).
pub const NBD_FLAG_SEND_FLUSH: u16 = 1 << 2;
/// Transmission flag: `NBD_CMD_FLAG_FUA` is honoured (`NBD_FLAG_SEND_FUA`).
pub const NBD_FLAG_SEND_FUA: u16 = 1 << 3;
/// Transmission flag: `NBD_CMD_TRIM` is accepted (`NBD_FLAG_SEND_TRIM`).
pub const NBD_FLAG_SEND_TRIM: u16 = 1 << 5;
/// Transmission flag: `NBD_CMD_WRITE_ZEROES` is accepted (`NBD_FLAG_SEND_WRITE_ZEROES`).
pub const NBD_FLAG_SEND_WRITE_ZEROES: u16 = 1 << 6;
/// Transmission flag: a flush on one connection covers writes on all (`NBD_FLAG_CAN_MULTI_CONN`).
pub const NBD_FLAG_CAN_MULTI_CONN: u16 = 1 << 8;

/// Command: read (`NBD_CMD_READ`).
pub const NBD_CMD_READ: u16 = 0;
/// Command: write; the payload follows the header (`NBD_CMD_WRITE`).
pub const NBD_CMD_WRITE: u16 = 1;
/// Command: disconnect after in-flight requests; no reply (`NBD_CMD_DISC`).
pub const NBD_CMD_DISC: u16 = 2;
/// Command: make completed writes durable (`NBD_CMD_FLUSH`).
pub const NBD_CMD_FLUSH: u16 = 3;
/// Command: discard a range (`NBD_CMD_TRIM`).
pub const NBD_CMD_TRIM: u16 = 4;
/// Command: write zeroes to a range, no payload (`NBD_CMD_WRITE_ZEROES`).
pub const NBD_CMD_WRITE_ZEROES: u16 = 6;

/// Command flag: durable before the reply (`NBD_CMD_FLAG_FUA`).
pub const NBD_CMD_FLAG_FUA: u16 = 1 << 0;
/// Command flag: WRITE_ZEROES must allocate; we may ignore it (`NBD_CMD_FLAG_NO_HOLE`).
pub const NBD_CMD_FLAG_NO_HOLE: u16 = 1 << 1;

/// Reply error: operation not permitted (`NBD_EPERM`).
pub const NBD_EPERM: u32 = 1;
/// Reply error: input/output error (`NBD_EIO`).
pub const NBD_EIO: u32 = 5;
/// Reply error: cannot allocate memory (`NBD_ENOMEM`).
pub const NBD_ENOMEM: u32 = 12;
/// Reply error: invalid argument (`NBD_EINVAL`).
pub const NBD_EINVAL: u32 = 22;
/// Reply error: no space left on device (`NBD_ENOSPC`).
pub const NBD_ENOSPC: u32 = 28;
/// Reply error: value too large (`NBD_EOVERFLOW`).
pub const NBD_EOVERFLOW: u32 = 75;
/// Reply error: operation not supported (`NBD_ENOTSUP`).
pub const NBD_ENOTSUP: u32 = 95;
/// Reply error: server is shutting down (`NBD_ESHUTDOWN`).
pub const NBD_ESHUTDOWN: u32 = 108;

/// Server greeting: `NBDMAGIC`, `IHAVEOPT`, 16-bit handshake flags.
pub const GREETING_LEN: usize = 8 + 8 + 2;
/// Client flags sent after the greeting: 32 bits.
pub const CLIENT_FLAGS_LEN: usize = 4;
/// Option header: `IHAVEOPT`, 32-bit option, 32-bit data length.
pub const OPTION_HEADER_LEN: usize = 8 + 4 + 4;
/// Option reply header: magic, option, reply type, data length.
pub const OPTION_REPLY_HEADER_LEN: usize = 8 + 4 + 4 + 4;
/// Request header: magic, flags, type, cookie (handle), offset, length.
pub const REQUEST_HEADER_LEN: usize = 4 + 2 + 2 + 8 + 8 + 4;
/// Simple reply: magic, error, cookie (handle).
pub const SIMPLE_REPLY_LEN: usize = 4 + 4 + 8;
/// Reserved zero bytes after an `NBD_OPT_EXPORT_NAME` reply unless `NO_ZEROES` was agreed.
pub const EXPORT_NAME_ZEROES_LEN: usize = 124;
/// Longest string the protocol allows (export names, error messages: "MUST be no
/// longer than 4096 bytes").
pub const NBD_STRING_BYTES_MAX: usize = 4096;
/// Longest export description we send (`NBD_REP_SERVER`, `NBD_INFO_DESCRIPTION`);
/// longer ones are cut at a character boundary. Short, so a LIST reply item with a
/// maximal name still fits [`OPTION_DATA_BYTES_MAX`].
pub const NBD_DESCRIPTION_BYTES_MAX: usize = 1024;
/// Most exports one server offers: far more arrays than one process hosts, and it
/// bounds an `NBD_OPT_LIST` answer (each item at most about 5 KiB).
pub const EXPORTS_MAX: usize = 256;
/// Longest option data we read: an INFO/GO request with a maximal name and a
/// generous list of info requests. Anything longer is a client wasting our memory,
/// which the protocol lets us answer with a hard disconnect.
pub const OPTION_DATA_BYTES_MAX: u32 = 4 + NBD_STRING_BYTES_MAX as u32 + 2 + 2 * 1024;
/// Options accepted in one negotiation before we treat the client as hostile; real
/// clients send a handful (libnbd's `--list` mode sends one INFO per export).
pub const OPTIONS_MAX: u32 = 256;

const _: () = assert!(GREETING_LEN == 18);
const _: () = assert!(OPTION_HEADER_LEN == 16);
const _: () = assert!(OPTION_REPLY_HEADER_LEN == 20);
const _: () = assert!(REQUEST_HEADER_LEN == 28);
const _: () = assert!(SIMPLE_REPLY_LEN == 16);
const _: () = assert!(CLIENT_FLAGS_KNOWN & !0b11 == 0);
// A LIST item (length, maximal name, maximal description) fits one option reply.
const _: () =
    assert!(4 + NBD_STRING_BYTES_MAX + NBD_DESCRIPTION_BYTES_MAX <= OPTION_DATA_BYTES_MAX as usize);
// An INFO_NAME item (type, maximal name) fits one option reply.
const _: () = assert!(2 + NBD_STRING_BYTES_MAX <= OPTION_DATA_BYTES_MAX as usize);

/// The client broke the protocol in a way that ends the connection (style R4:
/// the peer misbehaved). Per-request problems are not errors here: they become
/// NBD error replies through [`Rejection`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtoError {
    /// A magic number was not the one the protocol requires at this point.
    BadMagic {
        /// Which magic (`IHAVEOPT`, `NBD_REQUEST_MAGIC`).
        field: &'static str,
        /// The value required.
        expected: u64,
        /// The value received.
        found: u64,
    },
    /// The client set flags we do not know; proto.md says the server MUST close.
    UnknownClientFlags {
        /// The client's flags as sent.
        flags: u32,
    },
    /// An option's data is longer than [`OPTION_DATA_BYTES_MAX`].
    OptionTooLong {
        /// The option number.
        option: u32,
        /// The announced data length.
        len: u32,
    },
    /// More than [`OPTIONS_MAX`] options in one negotiation.
    TooManyOptions,
    /// A slice passed by the caller had the wrong length: a bug, please report.
    Unreachable(&'static str),
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::BadMagic {
                field,
                expected,
                found,
            } => {
                write!(f, "bad {field}: expected {expected:#x}, found {found:#x}")
            }
            ProtoError::UnknownClientFlags { flags } => {
                write!(f, "unknown client flags {flags:#x}")
            }
            ProtoError::OptionTooLong { option, len } => {
                write!(
                    f,
                    "option {option} data of {len} bytes exceeds {OPTION_DATA_BYTES_MAX}"
                )
            }
            ProtoError::TooManyOptions => write!(f, "more than {OPTIONS_MAX} options"),
            ProtoError::Unreachable(what) => write!(f, "internal error, please report: {what}"),
        }
    }
}

impl std::error::Error for ProtoError {}

/// What the negotiation tells the client about one export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportInfo {
    /// The export's name: at most [`NBD_STRING_BYTES_MAX`] bytes.
    pub name: String,
    /// A human-readable description, possibly empty: at most
    /// [`NBD_DESCRIPTION_BYTES_MAX`] bytes.
    pub description: String,
    /// Size in bytes, as sent in `NBD_INFO_EXPORT`.
    pub size_bytes: u64,
    /// Transmission flags (`NBD_FLAG_HAS_FLAGS` | ...).
    pub transmission_flags: u16,
    /// `NBD_INFO_BLOCK_SIZE` minimum.
    pub block_size_min: u32,
    /// `NBD_INFO_BLOCK_SIZE` preferred.
    pub block_size_preferred: u32,
    /// `NBD_INFO_BLOCK_SIZE` maximum: the largest READ or WRITE payload we accept.
    pub block_size_max: u32,
}

/// The exports a client may choose from when one option arrives: the caller's
/// snapshot, in listing order.
#[derive(Debug, Clone, Copy)]
pub struct ExportSet<'a> {
    /// Every export currently offered; at most [`EXPORTS_MAX`], names unique.
    pub exports: &'a [ExportInfo],
    /// The name the empty name stands for (the default export). It need not be in
    /// `exports`: a withdrawn default leaves the empty name unknown.
    pub default_name: &'a str,
}

impl ExportSet<'_> {
    /// The index of the export `requested` names: an exact name first, then, for
    /// the empty name, the default export.
    #[must_use]
    pub fn find(&self, requested: &[u8]) -> Option<usize> {
        assert!(self.exports.len() <= EXPORTS_MAX, "export count is bounded");
        let by_name = |name: &[u8]| self.exports.iter().position(|e| e.name.as_bytes() == name);
        let found = by_name(requested).or_else(|| {
            if requested.is_empty() {
                by_name(self.default_name.as_bytes())
            } else {
                None
            }
        });
        if let Some(index) = found {
            let name = self.exports[index].name.as_bytes();
            assert!(
                name == requested || requested.is_empty(),
                "a found export carries the name asked for"
            );
        }
        found
    }
}

/// The greeting the server sends first: magics and handshake flags.
#[must_use]
pub fn greeting() -> [u8; GREETING_LEN] {
    let mut out = [0u8; GREETING_LEN];
    out[0..8].copy_from_slice(&NBDMAGIC.to_be_bytes());
    out[8..16].copy_from_slice(&IHAVEOPT.to_be_bytes());
    out[16..18].copy_from_slice(&(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES).to_be_bytes());
    out
}

/// Negotiation state: the greeting is sent, the client's 32-bit flags are next.
#[derive(Debug, Default)]
pub struct ExpectClientFlags;

impl ExpectClientFlags {
    /// Consumes the client flags; unknown flags end the connection (proto.md).
    pub fn handle(self, bytes: [u8; CLIENT_FLAGS_LEN]) -> Result<ExpectOption, ProtoError> {
        let flags = u32::from_be_bytes(bytes);
        if flags & !CLIENT_FLAGS_KNOWN != 0 {
            return Err(ProtoError::UnknownClientFlags { flags });
        }
        Ok(ExpectOption {
            no_zeroes: flags & NBD_FLAG_C_NO_ZEROES != 0,
            options_seen: 0,
        })
    }
}

/// An option header as parsed off the wire; its data (`len` bytes) follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionHeader {
    /// The option number (`NBD_OPT_*`).
    pub option: u32,
    /// Length of the option data; at most [`OPTION_DATA_BYTES_MAX`].
    pub len: u32,
}

/// Parses an option header, refusing a bad magic or data too long to buffer.
pub fn parse_option_header(bytes: [u8; OPTION_HEADER_LEN]) -> Result<OptionHeader, ProtoError> {
    let magic = be_u64(&bytes[0..8]);
    if magic != IHAVEOPT {
        return Err(ProtoError::BadMagic {
            field: "IHAVEOPT",
            expected: IHAVEOPT,
            found: magic,
        });
    }
    let option = be_u32(&bytes[8..12]);
    let len = be_u32(&bytes[12..16]);
    if len > OPTION_DATA_BYTES_MAX {
        return Err(ProtoError::OptionTooLong { option, len });
    }
    Ok(OptionHeader { option, len })
}

/// Negotiation state: between options; the next option header is expected.
#[derive(Debug)]
pub struct ExpectOption {
    no_zeroes: bool,
    options_seen: u32,
}

/// Where negotiation goes after one option. In every case the caller first sends
/// the bytes the option appended to its output buffer.
#[derive(Debug)]
pub enum OptionOutcome {
    /// Read the next option in this state.
    Next(ExpectOption),
    /// Enter the transmission phase serving this export (an index into the
    /// [`ExportSet`] the option was handled with).
    Transmission(usize),
    /// Close the connection (abort, or an export we cannot serve after
    /// `NBD_OPT_EXPORT_NAME`, where the protocol has no error reply).
    Close,
}

impl ExpectOption {
    /// Handles one option whose data the caller read in full, appending the
    /// reply bytes to `out`. `exports` is what may be chosen right now.
    pub fn handle(
        mut self,
        header: OptionHeader,
        data: &[u8],
        exports: &ExportSet<'_>,
        out: &mut Vec<u8>,
    ) -> Result<OptionOutcome, ProtoError> {
        if data.len() != header.len as usize {
            return Err(ProtoError::Unreachable(
                "option data length differs from header",
            ));
        }
        self.options_seen += 1;
        if self.options_seen > OPTIONS_MAX {
            return Err(ProtoError::TooManyOptions);
        }
        let option = header.option;
        match option {
            NBD_OPT_EXPORT_NAME => Ok(self.export_name(data, exports, out)),
            NBD_OPT_ABORT => {
                option_reply(out, option, NBD_REP_ACK, &[]);
                Ok(OptionOutcome::Close)
            }
            NBD_OPT_LIST => {
                if data.is_empty() {
                    list(exports, out);
                } else {
                    option_reply(out, option, NBD_REP_ERR_INVALID, b"LIST takes no data");
                }
                Ok(OptionOutcome::Next(self))
            }
            NBD_OPT_INFO | NBD_OPT_GO => Ok(match info_or_go(option, data, exports, out) {
                Some(index) => OptionOutcome::Transmission(index),
                None => OptionOutcome::Next(self),
            }),
            NBD_OPT_STRUCTURED_REPLY => {
                option_reply(out, option, NBD_REP_ERR_UNSUP, b"simple replies only");
                Ok(OptionOutcome::Next(self))
            }
            _ => {
                option_reply(out, option, NBD_REP_ERR_UNSUP, b"unsupported option");
                Ok(OptionOutcome::Next(self))
            }
        }
    }

    fn export_name(self, data: &[u8], exports: &ExportSet<'_>, out: &mut Vec<u8>) -> OptionOutcome {
        let Some(index) = exports.find(data) else {
            return OptionOutcome::Close;
        };
        let export = &exports.exports[index];
        out.extend_from_slice(&export.size_bytes.to_be_bytes());
        out.extend_from_slice(&export.transmission_flags.to_be_bytes());
        if !self.no_zeroes {
            out.extend_from_slice(&[0u8; EXPORT_NAME_ZEROES_LEN]);
        }
        OptionOutcome::Transmission(index)
    }
}

/// Answers `NBD_OPT_LIST`: one `NBD_REP_SERVER` per export (name, then its
/// description), then the final ACK.
fn list(exports: &ExportSet<'_>, out: &mut Vec<u8>) {
    assert!(
        exports.exports.len() <= EXPORTS_MAX,
        "export count is bounded"
    );
    let start = out.len();
    for export in exports.exports {
        let name = export.name.as_bytes();
        let description = export.description.as_bytes();
        assert!(
            name.len() <= NBD_STRING_BYTES_MAX,
            "names are checked on entry"
        );
        assert!(
            description.len() <= NBD_DESCRIPTION_BYTES_MAX,
            "descriptions are cut on entry"
        );
        let mut item = Vec::with_capacity(4 + name.len() + description.len());
        item.extend_from_slice(&(name.len() as u32).to_be_bytes());
        item.extend_from_slice(name);
        item.extend_from_slice(description);
        option_reply(out, NBD_OPT_LIST, NBD_REP_SERVER, &item);
    }
    option_reply(out, NBD_OPT_LIST, NBD_REP_ACK, &[]);
    assert!(
        out.len() - start >= OPTION_REPLY_HEADER_LEN * (exports.exports.len() + 1),
        "one reply per export plus the ACK"
    );
}

/// An INFO/GO request's data: u32 name length, name, u16 count, count × u16.
struct InfoRequest<'a> {
    name: &'a [u8],
    infos: &'a [u8],
}

fn parse_info_request(data: &[u8]) -> Option<InfoRequest<'_>> {
    let name_len = be_u32(data.get(0..4)?) as usize;
    let name_end = 4usize.checked_add(name_len)?;
    let name = data.get(4..name_end)?;
    let count = usize::from(be_u16(data.get(name_end..name_end + 2)?));
    let infos = data.get(name_end + 2..)?;
    if infos.len() != count * 2 {
        return None;
    }
    Some(InfoRequest { name, infos })
}

/// Answers `NBD_OPT_INFO` or `NBD_OPT_GO`; returns the chosen export's index
/// when GO succeeded and transmission begins.
fn info_or_go(
    option: u32,
    data: &[u8],
    exports: &ExportSet<'_>,
    out: &mut Vec<u8>,
) -> Option<usize> {
    let Some(request) = parse_info_request(data) else {
        option_reply(
            out,
            option,
            NBD_REP_ERR_INVALID,
            b"malformed INFO/GO request",
        );
        return None;
    };
    let Some(index) = exports.find(request.name) else {
        option_reply(out, option, NBD_REP_ERR_UNKNOWN, b"no such export");
        return None;
    };
    let export = &exports.exports[index];
    let mut item = [0u8; 2 + 8 + 2];
    item[0..2].copy_from_slice(&NBD_INFO_EXPORT.to_be_bytes());
    item[2..10].copy_from_slice(&export.size_bytes.to_be_bytes());
    item[10..12].copy_from_slice(&export.transmission_flags.to_be_bytes());
    option_reply(out, option, NBD_REP_INFO, &item);
    // The protocol lets a server send block sizes unasked; clients then keep
    // requests aligned and within the maximum, so we always do.
    let mut sizes = [0u8; 2 + 4 + 4 + 4];
    sizes[0..2].copy_from_slice(&NBD_INFO_BLOCK_SIZE.to_be_bytes());
    sizes[2..6].copy_from_slice(&export.block_size_min.to_be_bytes());
    sizes[6..10].copy_from_slice(&export.block_size_preferred.to_be_bytes());
    sizes[10..14].copy_from_slice(&export.block_size_max.to_be_bytes());
    option_reply(out, option, NBD_REP_INFO, &sizes);
    let wanted = |info: u16| request.infos.chunks_exact(2).any(|c| be_u16(c) == info);
    if wanted(NBD_INFO_NAME) {
        info_string(out, option, NBD_INFO_NAME, &export.name);
    }
    if wanted(NBD_INFO_DESCRIPTION) && !export.description.is_empty() {
        info_string(out, option, NBD_INFO_DESCRIPTION, &export.description);
    }
    option_reply(out, option, NBD_REP_ACK, &[]);
    (option == NBD_OPT_GO).then_some(index)
}

/// Appends an information item that carries one string (name, description).
fn info_string(out: &mut Vec<u8>, option: u32, info: u16, text: &str) {
    let mut item = Vec::with_capacity(2 + text.len());
    item.extend_from_slice(&info.to_be_bytes());
    item.extend_from_slice(text.as_bytes());
    option_reply(out, option, NBD_REP_INFO, &item);
}

/// Appends one option reply (header and data) to `out`.
fn option_reply(out: &mut Vec<u8>, option: u32, reply_type: u32, data: &[u8]) {
    assert!(
        data.len() <= OPTION_DATA_BYTES_MAX as usize,
        "option reply data is bounded"
    );
    out.extend_from_slice(&NBD_REP_MAGIC.to_be_bytes());
    out.extend_from_slice(&option.to_be_bytes());
    out.extend_from_slice(&reply_type.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
}

/// A request header as parsed off the wire, before validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    /// Command flags (`NBD_CMD_FLAG_*`).
    pub flags: u16,
    /// Command type (`NBD_CMD_*`).
    pub command_type: u16,
    /// The client's opaque handle, echoed in the reply.
    pub cookie: u64,
    /// Byte offset into the export.
    pub offset: u64,
    /// Byte length; for `NBD_CMD_WRITE` also the payload length that follows.
    pub length: u32,
}

/// Parses a request header; a bad magic means the stream is out of sync, so the
/// connection must close.
pub fn parse_request_header(bytes: &[u8; REQUEST_HEADER_LEN]) -> Result<RequestHeader, ProtoError> {
    let magic = be_u32(&bytes[0..4]);
    if magic != NBD_REQUEST_MAGIC {
        return Err(ProtoError::BadMagic {
            field: "NBD_REQUEST_MAGIC",
            expected: u64::from(NBD_REQUEST_MAGIC),
            found: u64::from(magic),
        });
    }
    Ok(RequestHeader {
        flags: be_u16(&bytes[4..6]),
        command_type: be_u16(&bytes[6..8]),
        cookie: be_u64(&bytes[8..16]),
        offset: be_u64(&bytes[16..24]),
        length: be_u32(&bytes[24..28]),
    })
}

/// A validated command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `NBD_CMD_READ`: reply carries `length` bytes.
    Read,
    /// `NBD_CMD_WRITE`: `length` payload bytes follow the header.
    Write,
    /// `NBD_CMD_DISC`: finish in-flight requests, then close; no reply.
    Disc,
    /// `NBD_CMD_FLUSH`.
    Flush,
    /// `NBD_CMD_TRIM`.
    Trim,
    /// `NBD_CMD_WRITE_ZEROES`.
    WriteZeroes,
}

/// A request that passed every check in [`check_request`]: the range lies inside
/// the export and a payload fits the buffer limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The client's handle, echoed in the reply.
    pub cookie: u64,
    /// What to do.
    pub command: Command,
    /// Byte offset; `offset + length <= size_bytes` for range commands.
    pub offset: u64,
    /// Byte length; at most `request_bytes_max` for READ and WRITE.
    pub length: u32,
    /// `NBD_CMD_FLAG_FUA` was set.
    pub fua: bool,
}

/// The limits a request is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Export size in bytes.
    pub size_bytes: u64,
    /// Largest READ or WRITE payload (the advertised maximum block size).
    pub request_bytes_max: u32,
    /// The export refuses WRITE, TRIM and WRITE_ZEROES.
    pub read_only: bool,
}

/// A request refused with an NBD error reply; the connection stays usable once
/// the caller has skipped `payload_bytes` of write data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// The client's handle, echoed in the reply.
    pub cookie: u64,
    /// The NBD error value (`NBD_EINVAL`, ...).
    pub error: u32,
    /// Write payload the client sends anyway and the server must read and discard.
    pub payload_bytes: u32,
}

/// Validates a request header against the export's limits (proto.md "Error values"):
/// unknown command or flag EINVAL; write-type on a read-only export EPERM; a READ or
/// WRITE longer than the maximum block size EINVAL; a range past the end ENOSPC for
/// writes and EINVAL otherwise.
pub fn check_request(header: &RequestHeader, limits: &Limits) -> Result<Request, Rejection> {
    let payload_bytes = if header.command_type == NBD_CMD_WRITE {
        header.length
    } else {
        0
    };
    let reject = |error| Rejection {
        cookie: header.cookie,
        error,
        payload_bytes,
    };
    let command = match header.command_type {
        NBD_CMD_READ => Command::Read,
        NBD_CMD_WRITE => Command::Write,
        NBD_CMD_DISC => Command::Disc,
        NBD_CMD_FLUSH => Command::Flush,
        NBD_CMD_TRIM => Command::Trim,
        NBD_CMD_WRITE_ZEROES => Command::WriteZeroes,
        _ => return Err(reject(NBD_EINVAL)),
    };
    // FUA is meaningful on every write-type command and harmless elsewhere (some
    // clients set it on FLUSH); NO_HOLE applies only to WRITE_ZEROES.
    let flags_allowed = match command {
        Command::WriteZeroes => NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE,
        _ => NBD_CMD_FLAG_FUA,
    };
    if header.flags & !flags_allowed != 0 {
        return Err(reject(NBD_EINVAL));
    }
    let request = Request {
        cookie: header.cookie,
        command,
        offset: header.offset,
        length: header.length,
        fua: header.flags & NBD_CMD_FLAG_FUA != 0,
    };
    let writes = matches!(
        command,
        Command::Write | Command::Trim | Command::WriteZeroes
    );
    if writes && limits.read_only {
        return Err(reject(NBD_EPERM));
    }
    if matches!(command, Command::Disc | Command::Flush) {
        return Ok(request);
    }
    if matches!(command, Command::Read | Command::Write) && header.length > limits.request_bytes_max
    {
        return Err(reject(NBD_EINVAL));
    }
    let in_range = header
        .offset
        .checked_add(u64::from(header.length))
        .is_some_and(|end| end <= limits.size_bytes);
    if !in_range {
        let past_end = if matches!(command, Command::Write | Command::WriteZeroes) {
            NBD_ENOSPC
        } else {
            NBD_EINVAL
        };
        return Err(reject(past_end));
    }
    Ok(request)
}

/// Encodes a simple reply header; a successful READ's data follows it on the wire.
#[must_use]
pub fn encode_simple_reply(cookie: u64, error: u32) -> [u8; SIMPLE_REPLY_LEN] {
    let mut out = [0u8; SIMPLE_REPLY_LEN];
    out[0..4].copy_from_slice(&NBD_SIMPLE_REPLY_MAGIC.to_be_bytes());
    out[4..8].copy_from_slice(&error.to_be_bytes());
    out[8..16].copy_from_slice(&cookie.to_be_bytes());
    out
}

/// Maps an engine errno to the restricted set NBD allows on the wire (proto.md
/// "Error values"); anything without an NBD equivalent is an I/O error to the client.
#[must_use]
pub fn nbd_error_from_errno(errno: Errno) -> u32 {
    match errno {
        // A read-only array refuses writes as the protocol asks: EPERM.
        Errno::EPERM | Errno::EACCES | Errno::EROFS => NBD_EPERM,
        Errno::ENOMEM => NBD_ENOMEM,
        Errno::EINVAL => NBD_EINVAL,
        Errno::ENOSPC => NBD_ENOSPC,
        Errno::E2BIG => NBD_EOVERFLOW,
        Errno::EOPNOTSUPP => NBD_ENOTSUP,
        _ => NBD_EIO,
    }
}

fn be_u16(bytes: &[u8]) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(bytes);
    u16::from_be_bytes(a)
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(bytes);
    u32::from_be_bytes(a)
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(bytes);
    u64::from_be_bytes(a)
}

#[cfg(test)]
mod tests;
