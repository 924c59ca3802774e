//! Who is making a change, for the audit log: the operating-system user and the host.

use crate::store::Actor;

/// This process's user (name and uid) and host. Looked up only when a store records its first
/// change (the user's name costs an NSS lookup, which a verify should not pay).
pub fn who() -> Actor {
    // The effective uid, whose name whoami looks up. SAFETY: geteuid cannot fail and touches
    // no memory.
    let uid = unsafe { libc::geteuid() };
    Actor {
        user: whoami::username().ok(),
        uid: Some(uid),
        host: whoami::hostname().ok(),
    }
}
