//! Keys for imported rows: the FNV-1a hash, the content-derived external ids
//! of rows that come without one, and the hasher of the import's in-memory
//! maps.

use std::hash::{BuildHasherDefault, Hasher};

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The 64-bit FNV-1a hash of `bytes`, in one call (tests pin values with it; assessments
/// digest stored rows with it).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash = Fnv1a::new();
    hash.bytes(bytes);
    hash.0
}

/// An incremental 64-bit FNV-1a hash.
///
/// Defined byte by byte, so it is the same on every platform, build and run;
/// derived keys stored in databases depend on that.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv1a(u64);

impl Fnv1a {
    /// A hash of nothing yet.
    pub(crate) const fn new() -> Self {
        Fnv1a(FNV_OFFSET_BASIS)
    }

    /// Feeds raw bytes.
    fn bytes(&mut self, bytes: &[u8]) {
        let mut hash = self.0;
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
        self.0 = hash;
    }
}

/// Builds the external id of a row that has none, from the row's content:
/// `auto:` followed by 16 lower-case hex digits of a 64-bit FNV-1a hash.
///
/// Every field is written as a tag byte (`0` absent, `1` text, `2` integer,
/// `3` number), then for text its length as 8 little-endian bytes and its
/// UTF-8 bytes, for numbers their 8 little-endian bytes; fields are separated
/// by that framing, so `("ab", "c")` and `("a", "bc")` differ. The first field
/// is the table's name, so equal content in two tables gives two keys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DerivedKey {
    hash: Fnv1a,
}

impl DerivedKey {
    /// Starts the key of a row of `table`.
    pub(crate) fn new(table: &str) -> Self {
        let mut key = DerivedKey { hash: Fnv1a::new() };
        key.text(table);
        key
    }

    /// Adds a text field.
    pub(crate) fn text(&mut self, value: &str) -> &mut Self {
        self.hash.bytes(&[1]);
        self.hash.bytes(&(value.len() as u64).to_le_bytes());
        self.hash.bytes(value.as_bytes());
        self
    }

    /// Adds an optional text field.
    pub(crate) fn opt_text(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.text(value),
            None => self.absent(),
        }
    }

    /// Adds an integer field.
    pub(crate) fn int(&mut self, value: i64) -> &mut Self {
        self.hash.bytes(&[2]);
        self.hash.bytes(&value.to_le_bytes());
        self
    }

    /// Adds a floating-point field; `-0.0` counts as `0.0`.
    pub(crate) fn number(&mut self, value: f64) -> &mut Self {
        let value = if value == 0.0 { 0.0 } else { value };
        self.hash.bytes(&[3]);
        self.hash.bytes(&value.to_bits().to_le_bytes());
        self
    }

    fn absent(&mut self) -> &mut Self {
        self.hash.bytes(&[0]);
        self
    }

    /// The finished key, `auto:` and 16 hex digits, without allocating.
    pub(crate) fn finish(&self) -> KeyText {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = *b"auto:0000000000000000";
        let hash = self.hash.0;
        for (index, digit) in text[5..].iter_mut().enumerate() {
            let shift = 60 - 4 * index;
            *digit = HEX[((hash >> shift) & 0xf) as usize];
        }
        KeyText(text)
    }
}

/// A derived external id held inline (21 ASCII bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyText([u8; 21]);

impl KeyText {
    /// The key as text.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("derived keys are ASCII")
    }
}

/// A [`Hasher`] for the import's in-memory maps: it folds the input eight
/// bytes at a time (multiply and rotate, as rustc's `FxHasher`) and finishes
/// with a 64-bit mixer, so that the low bits (which pick the bucket) depend
/// on every input bit.
///
/// It is several times faster than the standard SipHash on the short ids the
/// import deals with. It is not resistant to crafted collisions, which is
/// acceptable for a user's own import files: at worst an import gets slower.
/// Nothing it computes is stored.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MapHasher(u64);

impl MapHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for MapHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8-byte chunk")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        mix64(self.0)
    }
}

/// The builder of [`MapHasher`]s, for `HashMap::with_hasher`.
pub(crate) type BuildMapHasher = BuildHasherDefault<MapHasher>;

/// MurmurHash3's 64-bit finaliser: every output bit depends on every input bit.
fn mix64(mut value: u64) -> u64 {
    value ^= value >> 33;
    value = value.wrapping_mul(0xff51_afd7_ed55_8ccd);
    value ^= value >> 33;
    value = value.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    value ^ (value >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn derived_keys_are_stable_and_framed() {
        // Pinned value (also computed independently from the documented
        // framing): a change here would give every stored row without an id
        // a new key, and the next import would duplicate them.
        let mut key = DerivedKey::new("interactions");
        key.text("C1")
            .text("call")
            .int(1_700_000_000)
            .opt_text(None);
        assert_eq!(key.finish().as_str(), "auto:c0c737427b3a17ce");

        let mut a = DerivedKey::new("t");
        a.text("ab").text("c");
        let mut b = DerivedKey::new("t");
        b.text("a").text("bc");
        assert_ne!(a.finish(), b.finish());

        let mut none = DerivedKey::new("t");
        none.opt_text(None);
        let mut empty = DerivedKey::new("t");
        empty.opt_text(Some(""));
        assert_ne!(none.finish(), empty.finish());

        let mut zero = DerivedKey::new("t");
        zero.number(0.0);
        let mut negative_zero = DerivedKey::new("t");
        negative_zero.number(-0.0);
        assert_eq!(zero.finish(), negative_zero.finish());
    }
}
