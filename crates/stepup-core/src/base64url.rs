//! A strict base64url (no padding) decoder into a caller's buffer, for the
//! token hot path: no allocation, one table lookup per character, and only
//! the canonical encoding of each byte string is accepted (stray low bits in
//! the last character are refused), so one token has exactly one spelling.

const INVALID: u8 = 0xff;

const TABLE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Marks an invalid character in the pre-shifted tables.
const BAD: u32 = 1 << 31;

/// `SHIFTED[k][c]`: the sextet of character `c` already shifted into place
/// for position `k` of a four-character group (or [`BAD`]), so a group
/// decodes with four lookups and three ORs.
const SHIFTED: [[u32; 256]; 4] = {
    let mut t = [[BAD; 256]; 4];
    let mut c = 0;
    while c < 256 {
        let v = TABLE[c];
        if v != INVALID {
            let v = v as u32;
            t[0][c] = v << 18;
            t[1][c] = v << 12;
            t[2][c] = v << 6;
            t[3][c] = v;
        }
        c += 1;
    }
    t
};

/// Decodes `input` into the start of `out`, returning the decoded length, or
/// `None` if `input` is not canonical unpadded base64url or does not fit.
/// Up to one byte of `out` past the decoded length may be overwritten.
pub(crate) fn decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let rest = input.len() % 4;
    let len = input.len() / 4 * 3 + rest.saturating_sub(1);
    if rest == 1 || len > out.len() {
        return None;
    }
    let mut bad = 0u32;
    let (groups, last) = input.split_at(input.len() - rest);
    let mut at = 0;
    for src in groups.chunks_exact(4) {
        let word = SHIFTED[0][usize::from(src[0])]
            | SHIFTED[1][usize::from(src[1])]
            | SHIFTED[2][usize::from(src[2])]
            | SHIFTED[3][usize::from(src[3])];
        bad |= word;
        // One 4-byte store when there is room (its spare byte is overwritten
        // by the next group), else three single bytes.
        match out.get_mut(at..at + 4) {
            Some(dst) => dst.copy_from_slice(&(word << 8).to_be_bytes()),
            None => out[at..at + 3].copy_from_slice(&word.to_be_bytes()[1..]),
        }
        at += 3;
    }
    match *last {
        [] => {}
        [x, y] => {
            let word = SHIFTED[0][usize::from(x)] | SHIFTED[1][usize::from(y)];
            // Bits that belong to no byte must be zero (canonical encoding).
            bad |= word | (u32::from(word & 0xffff != 0) << 31);
            out[at] = (word >> 16) as u8;
        }
        [x, y, z] => {
            let word = SHIFTED[0][usize::from(x)]
                | SHIFTED[1][usize::from(y)]
                | SHIFTED[2][usize::from(z)];
            bad |= word | (u32::from(word & 0xff != 0) << 31);
            out[at] = (word >> 16) as u8;
            out[at + 1] = (word >> 8) as u8;
        }
        _ => return None,
    }
    (bad & BAD == 0).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn ours(input: &str) -> Option<Vec<u8>> {
        let mut buf = [0u8; 64];
        decode(input.as_bytes(), &mut buf).map(|n| buf[..n].to_vec())
    }

    #[test]
    fn agrees_with_the_reference_on_valid_input() {
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 73 + 11) as u8).collect();
            let text = URL_SAFE_NO_PAD.encode(&bytes);
            assert_eq!(ours(&text), Some(bytes), "{text}");
        }
    }

    #[test]
    fn refuses_what_the_reference_refuses() {
        for bad in [
            "A", "AAAAA", "AB", "ABC", "ab+/", "ab==", "a b=", "AA=A", "é", "AAA\0",
        ] {
            assert_eq!(
                ours(bad).is_some(),
                URL_SAFE_NO_PAD.decode(bad).is_ok(),
                "{bad:?}"
            );
        }
        // Non-canonical trailing bits: "AB" would decode to the same byte as "AA".
        assert_eq!(ours("AA"), Some(vec![0]));
        assert_eq!(ours("AB"), None);
        assert_eq!(ours("AAB"), None);
    }

    proptest::proptest! {
        #[test]
        fn matches_the_reference_decoder(text in "[A-Za-z0-9_+/=. -]{0,60}") {
            let reference = URL_SAFE_NO_PAD.decode(&text).ok();
            proptest::prop_assert_eq!(ours(&text), reference);
        }
    }

    #[test]
    fn refuses_output_that_does_not_fit() {
        let mut small = [0u8; 2];
        assert_eq!(decode(b"AAAA", &mut small), None);
    }
}
