//! Random ids (job ids, run ids): version-4 UUIDs in hex, as APScheduler's `uuid4().hex`.
//!
//! `Uuid::new_v4` asks the OS for 16 bytes each time, one system call per id; adding a million
//! jobs or running 100k due jobs paid a million (100k) system calls for it. The bytes here
//! come from the same OS source, drawn a block at a time per thread.

use std::cell::RefCell;

/// Bytes drawn from the OS at once: 64 ids per system call.
const BLOCK: usize = 1024;

struct Pool {
    bytes: [u8; BLOCK],
    used: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            bytes: [0; BLOCK],
            used: BLOCK,
        })
    };
}

/// A new random version-4 UUID.
pub(crate) fn random_uuid() -> uuid::Uuid {
    POOL.with_borrow_mut(|pool| {
        if pool.used + 16 > BLOCK {
            if getrandom::fill(&mut pool.bytes).is_err() {
                // The OS source failed: let `uuid` try (and report) it its own way.
                return uuid::Uuid::new_v4();
            }
            pool.used = 0;
        }
        let mut bytes = [0; 16];
        bytes.copy_from_slice(&pool.bytes[pool.used..pool.used + 16]);
        // Each byte is used once: a later id never repeats an earlier one's randomness.
        pool.used += 16;
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    })
}

/// A new random id, shared: a version-4 UUID in 32 lowercase hex digits.
pub(crate) fn random_id() -> std::sync::Arc<str> {
    // `encode_lower` writes the digits directly; `to_string` went through `fmt`, which cost
    // more than drawing the id.
    let mut buf = uuid::Uuid::encode_buffer();
    std::sync::Arc::from(&*random_uuid().simple().encode_lower(&mut buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_uuids_in_hex_and_differ() {
        let ids: std::collections::HashSet<_> = (0..200).map(|_| random_id()).collect();
        assert_eq!(ids.len(), 200);
        for id in &ids {
            assert_eq!(id.len(), 32);
            let uuid = uuid::Uuid::parse_str(id).expect("hex uuid");
            assert_eq!(uuid.get_version_num(), 4);
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
        }
    }
}
