//! The gate's allow path allocates nothing: verifying a token decodes into a
//! stack buffer and fills the assurance in place. (One test in this binary,
//! so no other test thread allocates while it counts.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::alloc::System;

use common::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use stepup_core::{Decision, Method, Policy, Subject};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn verifying_and_allowing_allocate_nothing() {
    let (issuer, gate) = pair();
    let user = Subject::new("6f1c2a9e-3b7d-4c55-9a0e-2d8b1f4e7c31")
        .with_session("k3J9xQ2mZ8vT5wL1nB7cR4yH6pD0sF2gA9eU3iO5tYw")
        .with_epoch(7);
    let token = token_for(
        &issuer,
        &user,
        &[Method::Password, Method::Totp, Method::Passkey],
        T0,
    );
    let policy = Policy::level(2).max_age(secs(300));
    let now = T0 + secs(10);
    // Warm up: the default level table is built once per process, on first use.
    assert!(matches!(
        gate.check(&user, Some(&token), &policy, now),
        Decision::Allow(_)
    ));
    let (a, b) = (user.clone(), user.clone());

    let region = Region::new(GLOBAL);
    let verified = gate.verify(a, Some(&token), now);
    let decided = gate.check(b, Some(&token), &policy, now);
    let counted = region.change();

    assert!(verified.is_ok());
    assert!(matches!(decided, Decision::Allow(_)));
    assert_eq!(counted.allocations, 0, "{counted:?}");
    assert_eq!(counted.reallocations, 0, "{counted:?}");
}
