use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::error::ErrorKind;
use crate::ops::project;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn store_with_project() -> Store {
    let store = Store::in_memory().unwrap();
    project::create(&store, "demo", at(T0)).unwrap();
    store
}

fn request(expiration: Expiration, description: Option<&str>) -> TokenRequest<'_> {
    TokenRequest {
        project: "demo",
        expiration,
        description,
    }
}

fn create_ok(store: &Store, request: &TokenRequest<'_>, now: DateTime<Utc>) -> CreatedToken {
    create(store, request, now, &mut rand::rng(), |_| Ok(())).unwrap()
}

#[test]
fn expiry_is_whole_days_after_creation() {
    let created = at(T0);
    assert_eq!(
        Expiration::Days30.expires_at(created),
        Some(at(T0 + 30 * DAY))
    );
    assert_eq!(
        Expiration::Days90.expires_at(created),
        Some(at(T0 + 90 * DAY))
    );
    assert_eq!(
        Expiration::Days365.expires_at(created),
        Some(at(T0 + 365 * DAY))
    );
    assert_eq!(Expiration::Never.expires_at(created), None);
}

#[test]
fn status_turns_expired_at_the_expiry_instant() {
    let expiry = Some(at(T0));
    assert_eq!(Status::at(expiry, at(T0 - 1)), Status::Active);
    assert_eq!(Status::at(expiry, at(T0)), Status::Expired);
    assert_eq!(Status::at(None, at(i64::from(i32::MAX))), Status::Active);
}

#[test]
fn descriptions() {
    assert_eq!(validate_description("").unwrap(), None);
    assert_eq!(validate_description("CI 🚀").unwrap(), Some("CI 🚀"));
    assert!(validate_description(&"é".repeat(200)).is_ok());
    for bad in [
        &"x".repeat(201),
        "a\nb",
        "a\u{1b}[0m",
        "\u{202e}abc",
        "a\u{200d}b",
    ] {
        assert_eq!(
            validate_description(bad).unwrap_err().kind(),
            ErrorKind::Usage,
            "{bad:?}"
        );
    }
}

#[test]
fn create_keeps_only_a_hash_and_lists_without_secrets() {
    let store = store_with_project();
    let created = create_ok(&store, &request(Expiration::Days90, Some("CI")), at(T0));
    assert_eq!(created.expires_at, Some(at(T0 + 90 * DAY)));
    let listed = list(&store, Some("demo"), &Filter::default(), at(T0 + DAY)).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, created.token.id().as_str());
    assert_eq!(listed[0].description.as_deref(), Some("CI"));
    assert_eq!(listed[0].status, Status::Active);
    assert_eq!(listed[0].last_used_at, None);
    let expired = list(&store, None, &Filter::default(), at(T0 + 90 * DAY)).unwrap();
    assert_eq!(expired[0].status, Status::Expired);
}

#[test]
fn a_failed_delivery_keeps_nothing() {
    let store = store_with_project();
    let err = create(
        &store,
        &request(Expiration::Never, None),
        at(T0),
        &mut rand::rng(),
        |_| Err(Error::environment("stdout is gone")),
    )
    .unwrap_err();
    assert_eq!(err.message(), "stdout is gone");
    assert!(list(&store, None, &Filter::default(), at(T0)).unwrap().is_empty());
}

#[test]
fn delivery_sees_a_committed_token() {
    let store = store_with_project();
    create(
        &store,
        &request(Expiration::Never, None),
        at(T0),
        &mut rand::rng(),
        |created: &CreatedToken| {
            assert_eq!(
                list(&store, None, &Filter::default(), at(T0)).unwrap()[0].id,
                created.token.id().as_str()
            );
            Ok(())
        },
    )
    .unwrap();
}

#[test]
fn create_refuses_unknown_projects_and_bad_descriptions_before_writing() {
    let store = store_with_project();
    let unknown = TokenRequest {
        project: "nope",
        expiration: Expiration::Days30,
        description: None,
    };
    assert_eq!(
        create(&store, &unknown, at(T0), &mut rand::rng(), |_| Ok(()))
            .unwrap_err()
            .kind(),
        ErrorKind::Refused
    );
    let bad = request(Expiration::Days30, Some("a\nb"));
    assert_eq!(
        create(&store, &bad, at(T0), &mut rand::rng(), |_| Ok(()))
            .unwrap_err()
            .kind(),
        ErrorKind::Usage
    );
    assert!(list(&store, None, &Filter::default(), at(T0)).unwrap().is_empty());
}

#[test]
fn list_is_oldest_first() {
    let store = store_with_project();
    let later = create_ok(&store, &request(Expiration::Never, None), at(T0 + 10));
    let earlier = create_ok(&store, &request(Expiration::Never, None), at(T0));
    let same_second = create_ok(&store, &request(Expiration::Never, None), at(T0));
    let ids: Vec<String> = list(&store, None, &Filter::default(), at(T0))
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(
        ids,
        [
            earlier.token.id().as_str(),
            same_second.token.id().as_str(),
            later.token.id().as_str()
        ]
    );
}

#[test]
fn revoke_and_find() {
    let store = store_with_project();
    let created = create_ok(&store, &request(Expiration::Days30, None), at(T0));
    let id = created.token.id().as_str();
    assert_eq!(find(&store, id, at(T0)).unwrap().project, "demo");
    revoke(&store, id).unwrap();
    assert_eq!(revoke(&store, id).unwrap_err().kind(), ErrorKind::Refused);
    assert_eq!(
        find(&store, id, at(T0)).unwrap_err().kind(),
        ErrorKind::Refused
    );
    assert_eq!(
        revoke(&store, "not-an-id").unwrap_err().kind(),
        ErrorKind::Usage
    );
}

#[test]
fn a_colliding_id_is_drawn_again() {
    let store = store_with_project();
    let first = create(
        &store,
        &request(Expiration::Never, None),
        at(T0),
        &mut StdRng::seed_from_u64(9),
        |_| Ok(()),
    )
    .unwrap();
    // The same seed draws the same id first; the store refuses it and a new one is drawn.
    let second = create(
        &store,
        &request(Expiration::Never, None),
        at(T0),
        &mut StdRng::seed_from_u64(9),
        |_| Ok(()),
    )
    .unwrap();
    assert_ne!(first.token.id(), second.token.id());
    assert_eq!(list(&store, None, &Filter::default(), at(T0)).unwrap().len(), 2);
}
