//! Unit tests of the NBD codec: negotiation, request checks, reply encoding.

use super::*;

fn info() -> ExportInfo {
    ExportInfo {
        name: "md0".to_owned(),
        description: String::new(),
        size_bytes: 1 << 20,
        transmission_flags: NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH,
        block_size_min: 512,
        block_size_preferred: 4096,
        block_size_max: 1 << 16,
    }
}

/// The one-export set most tests negotiate against: `md0`, the default.
fn one() -> Vec<ExportInfo> {
    vec![info()]
}

fn set(exports: &[ExportInfo]) -> ExportSet<'_> {
    ExportSet {
        exports,
        default_name: "md0",
    }
}

/// Three exports of different sizes and flags; `md0` is the default.
fn three() -> Vec<ExportInfo> {
    let md1 = ExportInfo {
        name: "md1".to_owned(),
        description: "raid5, 3 members".to_owned(),
        size_bytes: 2 << 20,
        transmission_flags: NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY,
        ..info()
    };
    let md2 = ExportInfo {
        name: "md2".to_owned(),
        size_bytes: 3 << 20,
        ..info()
    };
    vec![info(), md1, md2]
}

fn expect_option(flags: u32) -> ExpectOption {
    ExpectClientFlags
        .handle(flags.to_be_bytes())
        .expect("known flags")
}

fn go_data(name: &[u8], infos: &[u16]) -> Vec<u8> {
    let mut data = (name.len() as u32).to_be_bytes().to_vec();
    data.extend_from_slice(name);
    data.extend_from_slice(&(infos.len() as u16).to_be_bytes());
    for info in infos {
        data.extend_from_slice(&info.to_be_bytes());
    }
    data
}

fn handle(state: ExpectOption, option: u32, data: &[u8], out: &mut Vec<u8>) -> OptionOutcome {
    let header = OptionHeader {
        option,
        len: data.len() as u32,
    };
    state
        .handle(header, data, &set(&one()), out)
        .expect("option handled")
}

fn handle_in(
    exports: &ExportSet<'_>,
    state: ExpectOption,
    option: u32,
    data: &[u8],
    out: &mut Vec<u8>,
) -> OptionOutcome {
    let header = OptionHeader {
        option,
        len: data.len() as u32,
    };
    state
        .handle(header, data, exports, out)
        .expect("option handled")
}

/// Splits option replies into (option, type, data).
fn replies(mut out: &[u8]) -> Vec<(u32, u32, Vec<u8>)> {
    let mut all = Vec::new();
    while !out.is_empty() {
        assert_eq!(be_u64(&out[0..8]), NBD_REP_MAGIC);
        let len = be_u32(&out[16..20]) as usize;
        all.push((
            be_u32(&out[8..12]),
            be_u32(&out[12..16]),
            out[20..20 + len].to_vec(),
        ));
        out = &out[20 + len..];
    }
    all
}

#[test]
fn greeting_is_fixed_newstyle_with_no_zeroes() {
    let g = greeting();
    assert_eq!(&g[0..8], b"NBDMAGIC");
    assert_eq!(&g[8..16], b"IHAVEOPT");
    assert_eq!(
        be_u16(&g[16..18]),
        NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES
    );
}

#[test]
fn unknown_client_flags_are_refused() {
    let err = ExpectClientFlags
        .handle(4u32.to_be_bytes())
        .expect_err("bit 2 unknown");
    assert_eq!(err, ProtoError::UnknownClientFlags { flags: 4 });
    assert!(
        ExpectClientFlags.handle(0u32.to_be_bytes()).is_ok(),
        "plain newstyle is fine"
    );
}

#[test]
fn option_header_checks_magic_and_length() {
    let mut bytes = [0u8; OPTION_HEADER_LEN];
    bytes[0..8].copy_from_slice(&IHAVEOPT.to_be_bytes());
    bytes[8..12].copy_from_slice(&NBD_OPT_GO.to_be_bytes());
    bytes[12..16].copy_from_slice(&OPTION_DATA_BYTES_MAX.to_be_bytes());
    assert_eq!(
        parse_option_header(bytes),
        Ok(OptionHeader {
            option: NBD_OPT_GO,
            len: OPTION_DATA_BYTES_MAX
        })
    );
    bytes[12..16].copy_from_slice(&(OPTION_DATA_BYTES_MAX + 1).to_be_bytes());
    assert!(matches!(
        parse_option_header(bytes),
        Err(ProtoError::OptionTooLong { .. })
    ));
    bytes[0] ^= 1;
    assert!(matches!(
        parse_option_header(bytes),
        Err(ProtoError::BadMagic { .. })
    ));
}

#[test]
fn go_sends_export_block_size_name_and_ack() {
    let mut out = Vec::new();
    let state = expect_option(NBD_FLAG_C_FIXED_NEWSTYLE);
    let outcome = handle(state, NBD_OPT_GO, &go_data(b"", &[NBD_INFO_NAME]), &mut out);
    assert!(matches!(outcome, OptionOutcome::Transmission(0)));
    let r = replies(&out);
    assert_eq!(r.len(), 4);
    assert_eq!((r[0].0, r[0].1), (NBD_OPT_GO, NBD_REP_INFO));
    assert_eq!(be_u16(&r[0].2[0..2]), NBD_INFO_EXPORT);
    assert_eq!(be_u64(&r[0].2[2..10]), 1 << 20);
    assert_eq!(
        be_u16(&r[0].2[10..12]),
        NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH
    );
    assert_eq!(be_u16(&r[1].2[0..2]), NBD_INFO_BLOCK_SIZE);
    let sizes = (
        be_u32(&r[1].2[2..6]),
        be_u32(&r[1].2[6..10]),
        be_u32(&r[1].2[10..14]),
    );
    assert_eq!(sizes, (512, 4096, 1 << 16));
    assert_eq!(&r[2].2[0..2], &NBD_INFO_NAME.to_be_bytes());
    assert_eq!(&r[2].2[2..], b"md0");
    assert_eq!(r[3].1, NBD_REP_ACK);
}

#[test]
fn info_stays_in_negotiation_and_unknown_names_are_refused() {
    let mut out = Vec::new();
    let state = expect_option(NBD_FLAG_C_FIXED_NEWSTYLE);
    let outcome = handle(state, NBD_OPT_INFO, &go_data(b"md0", &[]), &mut out);
    let OptionOutcome::Next(state) = outcome else {
        panic!("INFO must not transmit")
    };
    assert_eq!(replies(&out).last().map(|r| r.1), Some(NBD_REP_ACK));
    out.clear();
    let outcome = handle(state, NBD_OPT_GO, &go_data(b"md1", &[]), &mut out);
    let OptionOutcome::Next(state) = outcome else {
        panic!("unknown export must not transmit")
    };
    let expected = vec![(NBD_OPT_GO, NBD_REP_ERR_UNKNOWN, b"no such export".to_vec())];
    assert_eq!(replies(&out), expected);
    out.clear();
    let mut bad = go_data(b"md0", &[NBD_INFO_NAME]);
    bad.pop();
    assert!(matches!(
        handle(state, NBD_OPT_GO, &bad, &mut out),
        OptionOutcome::Next(_)
    ));
    assert_eq!(replies(&out)[0].1, NBD_REP_ERR_INVALID);
}

#[test]
fn export_name_replies_with_or_without_zeroes() {
    let mut out = Vec::new();
    let outcome = handle(expect_option(0), NBD_OPT_EXPORT_NAME, b"md0", &mut out);
    assert!(matches!(outcome, OptionOutcome::Transmission(0)));
    assert_eq!(out.len(), 8 + 2 + EXPORT_NAME_ZEROES_LEN);
    assert_eq!(be_u64(&out[0..8]), 1 << 20);
    out.clear();
    let no_zeroes = expect_option(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    let outcome = handle(no_zeroes, NBD_OPT_EXPORT_NAME, b"", &mut out);
    assert!(matches!(outcome, OptionOutcome::Transmission(0)));
    assert_eq!(out.len(), 8 + 2);
    out.clear();
    let outcome = handle(expect_option(0), NBD_OPT_EXPORT_NAME, b"nope", &mut out);
    assert!(
        matches!(outcome, OptionOutcome::Close),
        "no error reply exists: close"
    );
    assert!(out.is_empty());
}

#[test]
fn list_abort_structured_and_unknown_options() {
    let mut out = Vec::new();
    let state = expect_option(NBD_FLAG_C_FIXED_NEWSTYLE);
    let OptionOutcome::Next(state) = handle(state, NBD_OPT_LIST, &[], &mut out) else {
        panic!("LIST stays in negotiation");
    };
    let r = replies(&out);
    assert_eq!(r[0].1, NBD_REP_SERVER);
    assert_eq!(r[0].2, b"\0\0\0\x03md0".to_vec());
    assert_eq!(r[1].1, NBD_REP_ACK);
    out.clear();
    let outcome = handle(state, NBD_OPT_STRUCTURED_REPLY, &[], &mut out);
    let OptionOutcome::Next(state) = outcome else {
        panic!("refusal stays in negotiation")
    };
    assert_eq!(replies(&out)[0].1, NBD_REP_ERR_UNSUP);
    out.clear();
    let OptionOutcome::Next(state) = handle(state, 77, b"xyz", &mut out) else {
        panic!("unknown option stays in negotiation");
    };
    assert_eq!(replies(&out)[0].1, NBD_REP_ERR_UNSUP);
    out.clear();
    assert!(matches!(
        handle(state, NBD_OPT_ABORT, &[], &mut out),
        OptionOutcome::Close
    ));
    assert_eq!(replies(&out)[0].1, NBD_REP_ACK);
}

#[test]
fn options_are_bounded() {
    let mut state = expect_option(NBD_FLAG_C_FIXED_NEWSTYLE);
    let mut out = Vec::new();
    for _ in 0..OPTIONS_MAX {
        let header = OptionHeader { option: 77, len: 0 };
        match state.handle(header, &[], &set(&one()), &mut out) {
            Ok(OptionOutcome::Next(next)) => state = next,
            other => panic!("option within the limit: {other:?}"),
        }
    }
    let header = OptionHeader { option: 77, len: 0 };
    let result = state.handle(header, &[], &set(&one()), &mut out);
    assert!(matches!(result, Err(ProtoError::TooManyOptions)));
}

#[test]
fn list_names_every_export_with_its_description() {
    let exports = three();
    let mut out = Vec::new();
    let state = expect_option(NBD_FLAG_C_FIXED_NEWSTYLE);
    let outcome = handle_in(&set(&exports), state, NBD_OPT_LIST, &[], &mut out);
    assert!(matches!(outcome, OptionOutcome::Next(_)));
    let expected = vec![
        (NBD_OPT_LIST, NBD_REP_SERVER, b"\0\0\0\x03md0".to_vec()),
        (
            NBD_OPT_LIST,
            NBD_REP_SERVER,
            b"\0\0\0\x03md1raid5, 3 members".to_vec(),
        ),
        (NBD_OPT_LIST, NBD_REP_SERVER, b"\0\0\0\x03md2".to_vec()),
        (NBD_OPT_LIST, NBD_REP_ACK, Vec::new()),
    ];
    assert_eq!(replies(&out), expected);
    out.clear();
    let empty = ExportSet {
        exports: &[],
        default_name: "md0",
    };
    handle_in(&empty, expect_option(1), NBD_OPT_LIST, &[], &mut out);
    assert_eq!(replies(&out), vec![(NBD_OPT_LIST, NBD_REP_ACK, Vec::new())]);
}

#[test]
fn go_and_info_choose_by_name_with_that_exports_size_and_flags() {
    let exports = three();
    let exports = set(&exports);
    let mut out = Vec::new();
    let state = expect_option(NBD_FLAG_C_FIXED_NEWSTYLE);
    let data = go_data(b"md1", &[NBD_INFO_NAME, NBD_INFO_DESCRIPTION]);
    let OptionOutcome::Next(state) = handle_in(&exports, state, NBD_OPT_INFO, &data, &mut out)
    else {
        panic!("INFO stays in negotiation");
    };
    let r = replies(&out);
    assert_eq!(be_u64(&r[0].2[2..10]), 2 << 20, "md1's size");
    assert_eq!(
        be_u16(&r[0].2[10..12]),
        NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY,
        "md1's flags"
    );
    assert_eq!(r[2].2, [&NBD_INFO_NAME.to_be_bytes()[..], b"md1"].concat());
    let description = [&NBD_INFO_DESCRIPTION.to_be_bytes()[..], b"raid5, 3 members"].concat();
    assert_eq!(r[3].2, description);
    assert_eq!(r[4].1, NBD_REP_ACK);
    out.clear();
    let outcome = handle_in(&exports, state, NBD_OPT_GO, &go_data(b"md2", &[]), &mut out);
    assert!(matches!(outcome, OptionOutcome::Transmission(2)));
    assert_eq!(be_u64(&replies(&out)[0].2[2..10]), 3 << 20, "md2's size");
}

#[test]
fn the_empty_name_is_the_default_export_and_unknown_when_it_is_withdrawn() {
    let exports = three();
    let mut out = Vec::new();
    let state = expect_option(NBD_FLAG_C_FIXED_NEWSTYLE);
    let data = go_data(b"", &[NBD_INFO_NAME]);
    let outcome = handle_in(&set(&exports), state, NBD_OPT_GO, &data, &mut out);
    assert!(matches!(outcome, OptionOutcome::Transmission(0)));
    assert_eq!(replies(&out)[2].2[2..], *b"md0", "canonical name sent");
    // md0 withdrawn: the empty name must not fall through to md1.
    let without_default = &exports[1..];
    out.clear();
    let state = expect_option(NBD_FLAG_C_FIXED_NEWSTYLE);
    let outcome = handle_in(&set(without_default), state, NBD_OPT_GO, &data, &mut out);
    assert!(matches!(outcome, OptionOutcome::Next(_)));
    assert_eq!(replies(&out)[0].1, NBD_REP_ERR_UNKNOWN);
    out.clear();
    let outcome = handle_in(
        &set(without_default),
        expect_option(0),
        NBD_OPT_EXPORT_NAME,
        b"",
        &mut out,
    );
    assert!(matches!(outcome, OptionOutcome::Close), "no default: close");
    assert!(out.is_empty());
}

#[test]
fn export_name_picks_by_name_and_closes_on_unknown() {
    let exports = three();
    let mut out = Vec::new();
    let outcome = handle_in(
        &set(&exports),
        expect_option(0),
        NBD_OPT_EXPORT_NAME,
        b"md2",
        &mut out,
    );
    assert!(matches!(outcome, OptionOutcome::Transmission(2)));
    assert_eq!(be_u64(&out[0..8]), 3 << 20);
    out.clear();
    let outcome = handle_in(
        &set(&exports),
        expect_option(0),
        NBD_OPT_EXPORT_NAME,
        b"md9",
        &mut out,
    );
    assert!(matches!(outcome, OptionOutcome::Close));
    assert!(out.is_empty(), "EXPORT_NAME has no error reply");
}

fn header(command_type: u16, flags: u16, offset: u64, length: u32) -> RequestHeader {
    RequestHeader {
        flags,
        command_type,
        cookie: 0xfeed,
        offset,
        length,
    }
}

const LIMITS: Limits = Limits {
    size_bytes: 1 << 20,
    request_bytes_max: 1 << 16,
    read_only: false,
};

#[test]
fn request_header_round_trip_and_bad_magic() {
    let mut bytes = [0u8; REQUEST_HEADER_LEN];
    bytes[0..4].copy_from_slice(&NBD_REQUEST_MAGIC.to_be_bytes());
    bytes[4..6].copy_from_slice(&NBD_CMD_FLAG_FUA.to_be_bytes());
    bytes[6..8].copy_from_slice(&NBD_CMD_WRITE.to_be_bytes());
    bytes[8..16].copy_from_slice(&7u64.to_be_bytes());
    bytes[16..24].copy_from_slice(&4096u64.to_be_bytes());
    bytes[24..28].copy_from_slice(&512u32.to_be_bytes());
    let parsed = parse_request_header(&bytes).expect("valid header");
    let expected = RequestHeader {
        flags: NBD_CMD_FLAG_FUA,
        command_type: NBD_CMD_WRITE,
        cookie: 7,
        offset: 4096,
        length: 512,
    };
    assert_eq!(parsed, expected);
    bytes[3] ^= 0xff;
    assert!(matches!(
        parse_request_header(&bytes),
        Err(ProtoError::BadMagic { .. })
    ));
}

fn refusal(h: RequestHeader, limits: &Limits) -> Result<Command, u32> {
    check_request(&h, limits)
        .map(|r| r.command)
        .map_err(|r| r.error)
}

#[test]
fn check_request_maps_each_refusal_to_its_error() {
    let end = LIMITS.size_bytes;
    assert_eq!(
        refusal(header(NBD_CMD_READ, 0, end - 512, 1024), &LIMITS),
        Err(NBD_EINVAL)
    );
    assert_eq!(
        refusal(header(NBD_CMD_WRITE, 0, end - 512, 1024), &LIMITS),
        Err(NBD_ENOSPC)
    );
    assert_eq!(
        refusal(header(NBD_CMD_WRITE_ZEROES, 0, end, 1), &LIMITS),
        Err(NBD_ENOSPC)
    );
    assert_eq!(
        refusal(header(NBD_CMD_TRIM, 0, end, 1), &LIMITS),
        Err(NBD_EINVAL)
    );
    assert_eq!(
        refusal(header(NBD_CMD_READ, 0, u64::MAX, 1), &LIMITS),
        Err(NBD_EINVAL)
    );
    let oversized = header(NBD_CMD_READ, 0, 0, (1 << 16) + 1);
    assert_eq!(refusal(oversized, &LIMITS), Err(NBD_EINVAL));
    assert_eq!(refusal(header(99, 0, 0, 0), &LIMITS), Err(NBD_EINVAL));
    assert_eq!(
        refusal(header(NBD_CMD_READ, 1 << 7, 0, 512), &LIMITS),
        Err(NBD_EINVAL)
    );
    let no_hole_write = header(NBD_CMD_WRITE, NBD_CMD_FLAG_NO_HOLE, 0, 512);
    assert_eq!(refusal(no_hole_write, &LIMITS), Err(NBD_EINVAL));
    let ro = Limits {
        read_only: true,
        ..LIMITS
    };
    assert_eq!(
        refusal(header(NBD_CMD_TRIM, 0, 0, 512), &ro),
        Err(NBD_EPERM)
    );
    assert_eq!(
        refusal(header(NBD_CMD_READ, 0, 0, 512), &ro),
        Ok(Command::Read)
    );
    let refused = check_request(&header(NBD_CMD_WRITE, 0, end, 4096), &LIMITS);
    assert_eq!(
        refused.map_err(|r| r.payload_bytes),
        Err(4096),
        "payload must be skipped"
    );
}

#[test]
fn check_request_accepts_valid_requests() {
    let ok = check_request(
        &header(NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 512, 1 << 16),
        &LIMITS,
    );
    let expected = Request {
        cookie: 0xfeed,
        command: Command::Write,
        offset: 512,
        length: 1 << 16,
        fua: true,
    };
    assert_eq!(ok, Ok(expected));
    let zeroes = header(NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE, 0, 1 << 20);
    assert_eq!(refusal(zeroes, &LIMITS), Ok(Command::WriteZeroes));
    assert_eq!(
        refusal(header(NBD_CMD_FLUSH, 0, 0, 0), &LIMITS),
        Ok(Command::Flush)
    );
    let read_last = header(NBD_CMD_READ, 0, LIMITS.size_bytes - 512, 512);
    assert_eq!(
        refusal(read_last, &LIMITS),
        Ok(Command::Read),
        "last block is in range"
    );
}

#[test]
fn simple_reply_layout_and_errno_mapping() {
    let reply = encode_simple_reply(0x0102_0304_0506_0708, NBD_EIO);
    assert_eq!(be_u32(&reply[0..4]), NBD_SIMPLE_REPLY_MAGIC);
    assert_eq!(be_u32(&reply[4..8]), 5);
    assert_eq!(be_u64(&reply[8..16]), 0x0102_0304_0506_0708);
    assert_eq!(nbd_error_from_errno(Errno::EROFS), NBD_EPERM);
    assert_eq!(nbd_error_from_errno(Errno::ENOSPC), NBD_ENOSPC);
    assert_eq!(nbd_error_from_errno(Errno::EOPNOTSUPP), NBD_ENOTSUP);
    assert_eq!(nbd_error_from_errno(Errno::EBUSY), NBD_EIO);
    let allowed = [
        NBD_EPERM,
        NBD_EIO,
        NBD_ENOMEM,
        NBD_EINVAL,
        NBD_ENOSPC,
        NBD_EOVERFLOW,
        NBD_ENOTSUP,
    ];
    for errno in Errno::ALL {
        let nbd = nbd_error_from_errno(errno);
        assert!(
            allowed.contains(&nbd),
            "{} maps to a protocol error",
            errno.name()
        );
    }
}

fn push_request(stream: &mut Vec<u8>, command: u16, offset: u64, length: u32) {
    stream.extend_from_slice(&NBD_REQUEST_MAGIC.to_be_bytes());
    stream.extend_from_slice(&0u16.to_be_bytes());
    stream.extend_from_slice(&command.to_be_bytes());
    stream.extend_from_slice(&1u64.to_be_bytes());
    stream.extend_from_slice(&offset.to_be_bytes());
    stream.extend_from_slice(&length.to_be_bytes());
}

#[test]
fn fuzz_entry_survives_truncated_and_garbage_streams() {
    let mut stream = 3u32.to_be_bytes().to_vec();
    let data = go_data(b"", &[]);
    stream.extend_from_slice(&IHAVEOPT.to_be_bytes());
    stream.extend_from_slice(&NBD_OPT_GO.to_be_bytes());
    stream.extend_from_slice(&(data.len() as u32).to_be_bytes());
    stream.extend_from_slice(&data);
    push_request(&mut stream, NBD_CMD_WRITE, 0, 16);
    stream.extend_from_slice(&[0xaa; 16]);
    push_request(&mut stream, NBD_CMD_READ, 0, 16);
    push_request(&mut stream, NBD_CMD_READ, u64::MAX, 9);
    push_request(&mut stream, NBD_CMD_WRITE, 0, u32::MAX);
    push_request(&mut stream, 42, 0, 0);
    for cut in 0..=stream.len() {
        crate::nbd::fuzz::request_stream(&stream[..cut]);
    }
    let garbage: Vec<u8> = stream
        .iter()
        .enumerate()
        .map(|(i, b)| b.wrapping_mul(31).wrapping_add(i as u8))
        .collect();
    crate::nbd::fuzz::request_stream(&garbage);
}
