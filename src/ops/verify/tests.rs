use super::*;
use crate::ops::project;
use crate::ops::token::{self, Expiration, TokenRequest};
use crate::secret;
use crate::store::Sqlite;

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

fn setup(expiration: Expiration) -> (Sqlite, Token) {
    let store = crate::store::in_memory_for_test();
    project::create(&store, "demo", at(T0)).unwrap();
    project::create(&store, "other", at(T0)).unwrap();
    let request = TokenRequest {
        project: "demo",
        expiration,
        description: None,
    };
    let created = token::create(&store, &request, at(T0), &mut rand::rng(), |_| Ok(())).unwrap();
    (store, created.token)
}

fn is_plain_unknown(verification: &Verification) -> bool {
    matches!(
        verification,
        Verification::Invalid {
            reason: Reason::Unknown,
            token: None
        }
    )
}

fn reason(verification: &Verification) -> Option<Reason> {
    match verification {
        Verification::Valid { .. } => None,
        Verification::Invalid { reason, .. } => Some(*reason),
    }
}

#[test]
fn valid_token_records_its_use() {
    let (store, token) = setup(Expiration::Days30);
    let result = verify(&store, &token, None, at(T0 + DAY)).unwrap();
    match &result {
        Verification::Valid {
            token: verified,
            unrecorded,
            expires_soon,
        } => {
            assert_eq!(verified.project, "demo");
            assert_eq!(verified.expires_at, Some(at(T0 + 30 * DAY)));
            assert!(unrecorded.is_none());
            assert_eq!(*expires_soon, None, "29 days left");
        }
        other => panic!("{other:?}"),
    }
    let listed = token::list(&store, None, &token::Filter::default(), at(T0)).unwrap();
    assert_eq!(listed[0].last_used_at, Some(at(T0 + DAY)));
}

#[test]
fn expiry_is_decided_by_the_given_time() {
    let (store, token) = setup(Expiration::Days30);
    assert_eq!(
        reason(&verify(&store, &token, None, at(T0 + 30 * DAY - 1)).unwrap()),
        None
    );
    assert_eq!(
        reason(&verify(&store, &token, None, at(T0 + 30 * DAY)).unwrap()),
        Some(Reason::Expired)
    );
    let (store, token) = setup(Expiration::Never);
    assert_eq!(
        reason(&verify(&store, &token, None, at(T0 + 10_000 * DAY)).unwrap()),
        None
    );
}

#[test]
fn project_must_match_when_given() {
    let (store, token) = setup(Expiration::Never);
    assert_eq!(
        reason(&verify(&store, &token, Some("demo"), at(T0)).unwrap()),
        None
    );
    assert_eq!(
        reason(&verify(&store, &token, Some("other"), at(T0)).unwrap()),
        Some(Reason::WrongProject)
    );
}

#[test]
fn unknown_id_wrong_secret_and_revoked_are_all_unknown() {
    let (store, token) = setup(Expiration::Never);
    let text = token.reveal();
    let text = text.expose();
    let forge = |id: &str, secret: &str| {
        let body = format!("aut_{id}_{secret}");
        let sum = crate::token::checksum(&body);
        Token::parse(&format!("{body}{}", std::str::from_utf8(&sum).unwrap())).unwrap()
    };
    let unknown_id = forge("000000000000", &text[17..60]);
    let wrong_secret = forge(&text[4..16], &"x".repeat(43));
    for candidate in [&unknown_id, &wrong_secret] {
        let result = verify(&store, candidate, None, at(T0)).unwrap();
        assert!(is_plain_unknown(&result), "{result:?}");
    }
    token::revoke(&store, token.id().as_str(), at(T0)).unwrap();
    assert_eq!(
        reason(&verify(&store, &token, None, at(T0)).unwrap()),
        Some(Reason::Unknown)
    );
}

#[test]
fn failed_checks_record_no_use() {
    let (store, token) = setup(Expiration::Days30);
    verify(&store, &token, Some("other"), at(T0)).unwrap();
    verify(&store, &token, None, at(T0 + 31 * DAY)).unwrap();
    assert_eq!(
        token::list(&store, None, &token::Filter::default(), at(T0)).unwrap()[0].last_used_at,
        None
    );
}

/// Runs `verify` and says how many argon2 verifications it did.
/// The verdict, and how many argon2 verifications it took.
fn verifications_of(
    store: &Sqlite,
    token: &Token,
    project: Option<&str>,
    now: DateTime<Utc>,
) -> (Option<Reason>, u32) {
    let before = secret::verifications();
    let verification = verify(store, token, project, now).unwrap();
    (reason(&verification), secret::verifications() - before)
}

/// A well-formed token (valid checksum) from an id and a secret.
fn forged(id: &str, secret: &str) -> Token {
    let body = format!("aut_{id}_{secret}");
    let sum = crate::token::checksum(&body);
    Token::parse(&format!("{body}{}", std::str::from_utf8(&sum).unwrap())).unwrap()
}

#[test]
fn every_outcome_costs_exactly_one_argon2_verification() {
    let (store, token) = setup(Expiration::Days30);
    let text = token.reveal();
    let (id, secret) = (&text.expose()[4..16], &text.expose()[17..60]);
    let unknown = forged("000000000000", secret);
    let wrong_secret = forged(id, &"x".repeat(43));
    let revoked = {
        let request = TokenRequest {
            project: "demo",
            expiration: Expiration::Never,
            description: None,
        };
        let created =
            token::create(&store, &request, at(T0), &mut rand::rng(), |_| Ok(())).unwrap();
        token::revoke(&store, created.token.id().as_str(), at(T0)).unwrap();
        created.token
    };
    for (case, token, project, now, verdict) in [
        ("unknown id", &unknown, None, T0, Some(Reason::Unknown)),
        (
            "wrong secret",
            &wrong_secret,
            None,
            T0,
            Some(Reason::Unknown),
        ),
        ("revoked", &revoked, None, T0, Some(Reason::Unknown)),
        ("valid", &token, None, T0, None),
        (
            "wrong project",
            &token,
            Some("other"),
            T0,
            Some(Reason::WrongProject),
        ),
        (
            "expired",
            &token,
            None,
            T0 + 31 * DAY,
            Some(Reason::Expired),
        ),
    ] {
        assert_eq!(
            verifications_of(&store, token, project, at(now)),
            (verdict, 1),
            "{case}"
        );
    }
}

#[test]
fn a_token_revoked_while_it_is_being_verified_is_not_valid() {
    let (store, token) = setup(Expiration::Never);
    // The row vanishes between the lookup and the last-used update, as if revoked meanwhile.
    store.execute_for_test(
        "CREATE TEMP TRIGGER revoke_meanwhile BEFORE UPDATE OF last_used_at ON tokens
         BEGIN DELETE FROM tokens WHERE id = OLD.id; SELECT RAISE(IGNORE); END;",
    );
    let result = verify(&store, &token, None, at(T0)).unwrap();
    assert!(is_plain_unknown(&result), "{result:?}");
}

#[test]
fn identify_names_the_token_and_records_nothing() {
    let (store, token) = setup(Expiration::Days30);
    let found = identify(&store, &token).unwrap().expect("known token");
    assert_eq!(found.id, token.id().as_str());
    assert_eq!(found.project, "demo");
    assert_eq!(found.expires_at, Some(at(T0 + 30 * DAY)));
    let row = store.token(token.id().as_str()).unwrap().unwrap();
    assert_eq!(row.last_used_at, None, "identify must not record a use");

    let text = token.reveal();
    let body = format!("aut_{}_{}", &text.expose()[4..16], "x".repeat(43));
    let sum = crate::token::checksum(&body);
    let wrong_secret =
        Token::parse(&format!("{body}{}", std::str::from_utf8(&sum).unwrap())).unwrap();
    assert_eq!(identify(&store, &wrong_secret).unwrap(), None);
}

#[test]
fn a_valid_token_with_a_week_or_less_left_says_so() {
    let (store, token) = setup(Expiration::Days30);
    let left = |day: i64| match verify(&store, &token, None, at(T0 + day * DAY)).unwrap() {
        Verification::Valid { expires_soon, .. } => expires_soon,
        other => panic!("{other:?}"),
    };
    assert_eq!(left(22), None);
    assert_eq!(left(23), Some(chrono::TimeDelta::days(7)));
    assert_eq!(left(29), Some(chrono::TimeDelta::days(1)));
}
