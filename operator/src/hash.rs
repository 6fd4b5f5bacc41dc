//! The one content hash of the operator: FNV-1a, 64 bit, as 16 hex digits.
//!
//! Two things are hashed, and both values are written into objects, so they must never change
//! between operator versions: the settings a component reads (the pod template annotation
//! [`crate::build::CONFIG_HASH_ANNOTATION`], which rolls the pods when it changes) and each
//! applied object (the annotation [`crate::reconcile::APPLIED_HASH`], which lets an unchanged
//! object skip its apply). Neither needs resistance to collisions made on purpose, only
//! stability and speed; the function is five lines of the published algorithm, so it is
//! written here rather than taken from a crate (see `docs/decisions.md`).

/// FNV-1a (64 bit) of `bytes`, as 16 lowercase hex digits.
pub fn fnv1a(bytes: &[u8]) -> String {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = bytes.iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_test_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv, FNV-1a 64 bit).
        assert_eq!(fnv1a(b""), "cbf29ce484222325");
        assert_eq!(fnv1a(b"a"), "af63dc4c8601ec8c");
        assert_eq!(fnv1a(b"foobar"), "85944171f73967e8");
    }
}
