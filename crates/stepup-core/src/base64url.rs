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

/// Decodes `input` into the start of `out`, returning the decoded length, or
/// `None` if `input` is not canonical unpadded base64url or does not fit.
/// Bytes of `out` past the decoded length may be overwritten (with at most
/// two bytes of scratch).
pub(crate) fn decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let rest = input.len() % 4;
    let len = input.len() / 4 * 3 + rest.saturating_sub(1);
    if rest == 1 || len > out.len() {
        return None;
    }
    let mut bad = 0u8;
    // Eight characters make six bytes: one 48-bit word per step, stored as
    // one 8-byte write (the two spare bytes are overwritten by the next step)
    // so the hash that reads the buffer next waits on few stores.
    let wide = input.len() / 8;
    let (eights, tail) = input.split_at(wide * 8);
    let mut at = 0;
    for src in eights.chunks_exact(8) {
        let v = [
            TABLE[usize::from(src[0])],
            TABLE[usize::from(src[1])],
            TABLE[usize::from(src[2])],
            TABLE[usize::from(src[3])],
            TABLE[usize::from(src[4])],
            TABLE[usize::from(src[5])],
            TABLE[usize::from(src[6])],
            TABLE[usize::from(src[7])],
        ];
        bad |= v[0] | v[1] | v[2] | v[3] | v[4] | v[5] | v[6] | v[7];
        let word = (u64::from(v[0]) << 58)
            | (u64::from(v[1]) << 52)
            | (u64::from(v[2]) << 46)
            | (u64::from(v[3]) << 40)
            | (u64::from(v[4]) << 34)
            | (u64::from(v[5]) << 28)
            | (u64::from(v[6]) << 22)
            | (u64::from(v[7]) << 16);
        match out.get_mut(at..at + 8) {
            Some(dst) => dst.copy_from_slice(&word.to_be_bytes()),
            None => out[at..at + 6].copy_from_slice(&word.to_be_bytes()[..6]),
        }
        at += 6;
    }
    let out = &mut out[..len];
    let out_tail = &mut out[at..];
    // At most seven characters left: whole groups of four, then 0, 2 or 3.
    let (fours, last) = tail.split_at(tail.len() / 4 * 4);
    let (out_fours, out_last) = out_tail.split_at_mut(fours.len() / 4 * 3);
    for (src, dst) in fours.chunks_exact(4).zip(out_fours.chunks_exact_mut(3)) {
        let mut word = 0u32;
        for &c in src {
            let v = TABLE[usize::from(c)];
            bad |= v;
            word = (word << 6) | u32::from(v);
        }
        dst.copy_from_slice(&word.to_be_bytes()[1..]);
    }
    match *last {
        [] => {}
        [x, y] => {
            let (a, b) = (TABLE[usize::from(x)], TABLE[usize::from(y)]);
            bad |= a | b;
            bad |= u8::from(b & 0x0f != 0) << 7; // bits that belong to no byte must be zero
            out_last[0] = (a << 2) | (b >> 4);
        }
        [x, y, z] => {
            let (a, b, c) = (
                TABLE[usize::from(x)],
                TABLE[usize::from(y)],
                TABLE[usize::from(z)],
            );
            bad |= a | b | c;
            bad |= u8::from(c & 0x03 != 0) << 7;
            out_last[0] = (a << 2) | (b >> 4);
            out_last[1] = (b << 4) | (c >> 2);
        }
        _ => return None,
    }
    // Valid sextets are below 64, so any of the top two bits marks an invalid
    // character (or stray low bits, shifted up above).
    (bad & 0xc0 == 0).then_some(len)
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
