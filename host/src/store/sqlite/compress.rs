//! Event bodies are kept deflated on disk: CloudEvent JSON shrinks about threefold, which is most
//! of what a till event costs in the log.
//!
//! A stored body is either plain JSON (it starts with `{`, as every body written before
//! compression did) or [`DEFLATED`] followed by a raw deflate stream. To read one in the `sqlite3`
//! shell: `SELECT writefile('body.bin', substr(body, 2)) FROM events WHERE id = '…'` and inflate
//! it with any zlib tool (e.g. `python3 -c "import zlib,sys; print(zlib.decompress(open('body.bin','rb').read(), -15).decode())"`).

use super::super::{StoreError, StoreResult};
use std::borrow::Cow;
use std::io::{Read as _, Write as _};

/// The first byte of a deflated body (never the first byte of JSON).
pub const DEFLATED: u8 = 0x01;
/// The first byte of a body deflated with its event's body as the preset dictionary (what a
/// transform made of an event differs from it in a few fields, so this costs a few dozen bytes).
pub const DEFLATED_AGAINST_EVENT: u8 = 0x02;

/// The form a body is stored in.
pub fn pack(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 3 + 16);
    out.push(DEFLATED);
    let mut encoder = flate2::write::DeflateEncoder::new(out, flate2::Compression::new(6));
    // Writing to a Vec cannot fail.
    if encoder.write_all(body).is_err() {
        return body.to_vec();
    }
    encoder.finish().unwrap_or_else(|_| body.to_vec())
}

/// `body` deflated with `event_body` (as given, not stored) as the preset dictionary.
pub fn pack_against(body: &[u8], event_body: &[u8]) -> Vec<u8> {
    let mut compress = flate2::Compress::new(flate2::Compression::new(6), false);
    let mut out = Vec::with_capacity(body.len() / 4 + 64);
    out.push(DEFLATED_AGAINST_EVENT);
    let packed = (|| {
        compress.set_dictionary(event_body).ok()?;
        loop {
            out.reserve(256);
            let consumed = usize::try_from(compress.total_in()).ok()?;
            let status = compress
                .compress_vec(&body[consumed..], &mut out, flate2::FlushCompress::Finish)
                .ok()?;
            if status == flate2::Status::StreamEnd {
                return Some(());
            }
        }
    })();
    match packed {
        Some(()) => out,
        None => pack(body),
    }
}

/// A body stored by [`pack_against`], [`pack`] or before compression; `event_body` is the
/// unpacked body of its event.
pub fn unpack_against<'a>(stored: &'a [u8], event_body: &[u8]) -> StoreResult<Cow<'a, [u8]>> {
    let Some((&DEFLATED_AGAINST_EVENT, deflated)) = stored.split_first() else {
        return unpack(stored);
    };
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("a stored body does not inflate: {e}"));
    let mut decompress = flate2::Decompress::new(false);
    decompress.set_dictionary(event_body).map_err(|e| corrupt(&e))?;
    let mut body = Vec::with_capacity(deflated.len() * 8 + 256);
    loop {
        body.reserve(4096);
        let (read, written) = (decompress.total_in(), decompress.total_out());
        let consumed = usize::try_from(read).map_err(|e| corrupt(&e))?;
        let status = decompress
            .decompress_vec(
                deflated.get(consumed..).unwrap_or_default(),
                &mut body,
                flate2::FlushDecompress::Finish,
            )
            .map_err(|e| corrupt(&e))?;
        if status == flate2::Status::StreamEnd {
            return Ok(Cow::Owned(body));
        }
        if decompress.total_in() == read && decompress.total_out() == written {
            return Err(corrupt(&"the stream ends early"));
        }
    }
}

/// A stored body as it was given to [`pack`] (or as written before compression).
pub fn unpack(stored: &[u8]) -> StoreResult<Cow<'_, [u8]>> {
    match stored.split_first() {
        Some((&DEFLATED, deflated)) => {
            let mut body = Vec::with_capacity(deflated.len() * 4);
            flate2::read::DeflateDecoder::new(deflated)
                .read_to_end(&mut body)
                .map_err(|e| StoreError::Corrupt(format!("a stored body does not inflate: {e}")))?;
            Ok(Cow::Owned(body))
        }
        _ => Ok(Cow::Borrowed(stored)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_and_plain_ones_still_read() {
        let body = br#"{"specversion":"1.0","id":"hk-001-000123","source":"/t/acme/s/hk-001/p/till-1","data":{"lines":[{"sku":"4891234500017"},{"sku":"4891234500017"}]}}"#;
        let packed = pack(body);
        assert_eq!(packed[0], DEFLATED);
        assert!(packed.len() < body.len());
        assert_eq!(unpack(&packed).unwrap().as_ref(), body.as_slice());
        assert_eq!(unpack(body).unwrap().as_ref(), body.as_slice());
        assert!(unpack(&[DEFLATED, 0xff, 0xff]).is_err());
    }

    #[test]
    fn a_transformed_body_costs_little_against_its_event() {
        let event = br#"{"specversion":"1.0","id":"hk-001-000123","source":"/t/acme/s/hk-001/p/till-1","type":"pos.sale.completed.v1","data":{"order_id":"A-1","lines":[{"sku":"4891234500017","quantity_milli":2000}]}}"#;
        let transformed = br#"{"specversion":"1.0","id":"hk-001-000123","source":"/t/acme/s/hk-001/p/till-1","type":"pos.sale.completed.v1","data":{"order_id":"A-1","lines":[{"sku":"PANADOL-500-20","quantity_milli":2000}],"loyalty":{"points":79}}}"#;
        let packed = pack_against(transformed, event);
        assert_eq!(packed[0], DEFLATED_AGAINST_EVENT);
        assert!(packed.len() < pack(transformed).len() / 2, "{} bytes", packed.len());
        assert_eq!(unpack_against(&packed, event).unwrap().as_ref(), transformed.as_slice());
        let wrong = unpack_against(&packed, b"another event entirely");
        assert!(wrong.as_ref().map_or(true, |b| b.as_ref() != transformed.as_slice()));
    }
}
