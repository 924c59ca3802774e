use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::error::ErrorKind;
use crate::ops::project;
use crate::store::Sqlite;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn store_with_project() -> Sqlite {
    let store = crate::store::in_memory_for_test();
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

fn create_ok(store: &Sqlite, request: &TokenRequest<'_>, now: DateTime<Utc>) -> CreatedToken {
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
    assert!(
        list(&store, None, &Filter::default(), at(T0))
            .unwrap()
            .is_empty()
    );
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
    assert!(
        list(&store, None, &Filter::default(), at(T0))
            .unwrap()
            .is_empty()
    );
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
    revoke(&store, id, at(T0)).unwrap();
    assert_eq!(
        revoke(&store, id, at(T0)).unwrap_err().kind(),
        ErrorKind::Refused
    );
    assert_eq!(
        find(&store, id, at(T0)).unwrap_err().kind(),
        ErrorKind::Refused
    );
    assert_eq!(
        revoke(&store, "not-an-id", at(T0)).unwrap_err().kind(),
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
    assert_eq!(
        list(&store, None, &Filter::default(), at(T0))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn rotate_draws_a_colliding_id_again() {
    let store = store_with_project();
    let never = || request(Expiration::Never, None);
    let seeded = || StdRng::seed_from_u64(9);
    let taken = create(&store, &never(), at(T0), &mut seeded(), |_| Ok(())).unwrap();
    let old = create(&store, &never(), at(T0), &mut rand::rng(), |_| Ok(())).unwrap();
    // The same seed draws the taken id first; the store refuses it and a new one is drawn.
    assert_eq!(
        crate::token::Token::generate(&mut seeded()).id(),
        taken.token.id()
    );
    let new = rotate(
        &store,
        old.token.id().as_str(),
        Grace::NONE,
        at(T0),
        &mut seeded(),
        |_| Ok(()),
    )
    .unwrap()
    .created;
    let listed = list(&store, None, &Filter::default(), at(T0)).unwrap();
    let mut expected = vec![taken.token.id().as_str(), new.token.id().as_str()];
    expected.sort_unstable();
    let mut listed = ids(&listed);
    listed.sort_unstable();
    assert_eq!(listed, expected);
}

fn ids(tokens: &[TokenSummary]) -> Vec<&str> {
    tokens.iter().map(|t| t.id.as_str()).collect()
}

#[test]
fn expires_soon_within_the_notice_only_while_it_still_works() {
    let expiry = Some(at(T0));
    assert_eq!(expires_soon(expiry, at(T0 - 8 * DAY)), None);
    assert_eq!(
        expires_soon(expiry, at(T0 - 7 * DAY)),
        Some(TimeDelta::days(7))
    );
    assert_eq!(
        expires_soon(expiry, at(T0 - 1)),
        Some(TimeDelta::seconds(1))
    );
    assert_eq!(expires_soon(expiry, at(T0)), None, "expired");
    assert_eq!(expires_soon(None, at(T0)), None, "never expires");
}

#[test]
fn filters_select_by_expiry_and_use_and_combine() {
    let store = store_with_project();
    let short = create_ok(&store, &request(Expiration::Days30, None), at(T0));
    let long = create_ok(&store, &request(Expiration::Days365, None), at(T0));
    let never = create_ok(&store, &request(Expiration::Never, None), at(T0));
    let used = create_ok(&store, &request(Expiration::Days90, None), at(T0));
    store
        .record_use(used.token.id().as_str(), T0 + 50 * DAY)
        .unwrap();
    let (short, long, never, used) = (
        short.token.id().as_str(),
        long.token.id().as_str(),
        never.token.id().as_str(),
        used.token.id().as_str(),
    );
    let now = at(T0 + 60 * DAY);
    let select = |filter: Filter| list(&store, None, &filter, now).unwrap();

    let all = select(Filter::default());
    assert_eq!(ids(&all), [short, long, never, used]);
    let expired = Filter {
        expired: true,
        ..Filter::default()
    };
    assert_eq!(ids(&select(expired)), [short]);
    // `used` expires at day 90: within 30 days of day 60, and not yet expired.
    let within = |days| Filter {
        expiring_within: Some(days),
        ..Filter::default()
    };
    assert_eq!(ids(&select(within(30))), [used]);
    assert_eq!(ids(&select(within(29))), Vec::<&str>::new());
    assert_eq!(ids(&select(within(305))), [long, used]);
    let unused = Filter {
        unused: true,
        ..Filter::default()
    };
    assert_eq!(ids(&select(unused)), [short, long, never]);
    // Used at day 50: unused for 10 days at day 60, not 11. Never used counts from day 0.
    let unused_for = |days| Filter {
        unused_for: Some(days),
        ..Filter::default()
    };
    assert_eq!(ids(&select(unused_for(10))), [short, long, never, used]);
    assert_eq!(ids(&select(unused_for(11))), [short, long, never]);
    assert_eq!(ids(&select(unused_for(61))), Vec::<&str>::new());
    let expired_and_unused = Filter {
        expired: true,
        unused: true,
        ..Filter::default()
    };
    assert_eq!(ids(&select(expired_and_unused)), [short]);
    assert!(!Filter::default().is_set());
    assert!(expired.is_set());
}

#[test]
fn a_token_expiring_within_a_week_is_flagged_in_the_listing() {
    let store = store_with_project();
    create_ok(&store, &request(Expiration::Days30, None), at(T0));
    let listed = |day| list(&store, None, &Filter::default(), at(T0 + day * DAY)).unwrap();
    assert_eq!(listed(22)[0].expires_soon, None);
    assert_eq!(listed(23)[0].expires_soon, Some(TimeDelta::days(7)));
    assert_eq!(listed(23)[0].status, Status::Active);
    assert_eq!(listed(30)[0].expires_soon, None);
}

#[test]
fn rotate_keeps_project_description_and_lifetime_and_revokes_the_old() {
    for expiration in Expiration::ALL {
        let store = store_with_project();
        let old = create_ok(&store, &request(expiration, Some("CI runner")), at(T0));
        store.record_use(old.token.id().as_str(), T0 + DAY).unwrap();
        let now = at(T0 + 10 * DAY);
        let mut seen = None;
        let rotated = rotate(
            &store,
            old.token.id().as_str(),
            Grace::NONE,
            now,
            &mut rand::rng(),
            |created| {
                seen = Some(created.token.id().clone());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(rotated.old, OldToken::Stopped);
        let new = rotated.created;
        assert_eq!(seen.as_ref(), Some(new.token.id()));
        assert_ne!(new.token.id(), old.token.id());
        assert_eq!(new.project, "demo");
        assert_eq!(new.description.as_deref(), Some("CI runner"));
        assert_eq!(new.created_at, now);
        assert_eq!(new.expires_at, expiration.expires_at(now), "{expiration:?}");
        let listed = list(&store, None, &Filter::default(), now).unwrap();
        assert_eq!(ids(&listed), [new.token.id().as_str()]);
        assert_eq!(listed[0].last_used_at, None, "use is not carried over");
        let row = store
            .token_for_verify(new.token.id().as_str())
            .unwrap()
            .unwrap();
        assert!(crate::secret::verify(new.token.secret(), &row.secret_hash));
    }
}

#[test]
fn a_failed_rotation_delivery_changes_nothing() {
    let store = store_with_project();
    let old = create_ok(&store, &request(Expiration::Days90, Some("keep")), at(T0));
    let before = list(&store, None, &Filter::default(), at(T0)).unwrap();
    let err = rotate(
        &store,
        old.token.id().as_str(),
        Grace::NONE,
        at(T0 + DAY),
        &mut rand::rng(),
        |_| Err(Error::environment("stdout closed")),
    )
    .unwrap_err();
    assert_eq!(err.message(), "stdout closed");
    assert_eq!(
        list(&store, None, &Filter::default(), at(T0)).unwrap(),
        before
    );
    assert!(
        store
            .token_for_verify(old.token.id().as_str())
            .unwrap()
            .is_some()
    );
}

#[test]
fn rotate_refuses_unknown_and_malformed_ids_without_delivering() {
    let store = store_with_project();
    let rotate_id = |store: &Sqlite, id: &str| {
        rotate(store, id, Grace::NONE, at(T0), &mut rand::rng(), |_| {
            panic!("nothing to deliver")
        })
        .unwrap_err()
        .kind()
    };
    assert_eq!(rotate_id(&store, "000000000000"), ErrorKind::Refused);
    assert_eq!(rotate_id(&store, "aut_x"), ErrorKind::Usage);
}

#[test]
fn revoke_all_revokes_those_given_in_one_go() {
    let store = store_with_project();
    for _ in 0..3 {
        create_ok(&store, &request(Expiration::Days30, None), at(T0));
    }
    let keep = create_ok(&store, &request(Expiration::Never, None), at(T0));
    let expired = Filter {
        expired: true,
        ..Filter::default()
    };
    let now = at(T0 + 31 * DAY);
    let doomed = list(&store, None, &expired, now).unwrap();
    assert_eq!(doomed.len(), 3);
    assert_eq!(revoke_all(&store, &doomed, None, &expired, now).unwrap(), 3);
    assert_eq!(
        revoke_all(&store, &doomed, None, &expired, now).unwrap(),
        0,
        "already gone"
    );
    let left = list(&store, None, &Filter::default(), now).unwrap();
    assert_eq!(ids(&left), [keep.token.id().as_str()]);
}

#[test]
fn revoke_all_keeps_a_token_used_since_it_was_selected() {
    let unused_for = Filter {
        unused_for: Some(90),
        ..Filter::default()
    };
    let never_used = Filter {
        unused: true,
        ..Filter::default()
    };
    for filter in [unused_for, never_used] {
        let store = store_with_project();
        let used = create_ok(&store, &request(Expiration::Never, None), at(T0));
        let stale = create_ok(&store, &request(Expiration::Never, None), at(T0));
        let (used, stale) = (used.token.id().as_str(), stale.token.id().as_str());
        let now = at(T0 + 100 * DAY);
        let selected = list(&store, None, &filter, now).unwrap();
        assert_eq!(ids(&selected), [used, stale], "{filter:?}");
        // Used while the person was reading the confirmation.
        store.record_use(used, now.timestamp()).unwrap();
        assert_eq!(
            revoke_all(&store, &selected, None, &filter, now).unwrap(),
            1
        );
        assert!(store.token(used).unwrap().is_some(), "{filter:?}");
        assert_eq!(store.token(stale).unwrap(), None);
    }
}

/// The store fails on the second delete of a prune (a trigger planted in the in-memory
/// database, which only a test can do): the first is undone with it.
#[test]
fn a_prune_that_fails_midway_revokes_nothing() {
    let store = store_with_project();
    let first = create_ok(&store, &request(Expiration::Days30, None), at(T0));
    let second = create_ok(&store, &request(Expiration::Days30, None), at(T0));
    store.execute_for_test(&format!(
        "CREATE TRIGGER keep_one BEFORE DELETE ON tokens WHEN old.id = '{}'
         BEGIN SELECT RAISE(ABORT, 'kept by the test'); END;",
        second.token.id()
    ));
    let expired = Filter {
        expired: true,
        ..Filter::default()
    };
    let now = at(T0 + 31 * DAY);
    let doomed = list(&store, None, &expired, now).unwrap();
    assert_eq!(
        ids(&doomed),
        [first.token.id().as_str(), second.token.id().as_str()]
    );
    let err = revoke_all(&store, &doomed, None, &expired, now).unwrap_err();
    assert!(
        err.message().contains("kept by the test"),
        "{}",
        err.message()
    );
    assert!(
        store.token(first.token.id().as_str()).unwrap().is_some(),
        "the first token was revoked though the prune failed"
    );
}

/// The store refuses the new token of a rotation: nothing is delivered and the old token
/// stays.
#[test]
fn a_rotation_the_store_refuses_delivers_nothing_and_keeps_the_old_token() {
    let store = store_with_project();
    let old = create_ok(&store, &request(Expiration::Days30, None), at(T0));
    store.execute_for_test(
        "CREATE TRIGGER no_new_tokens BEFORE INSERT ON tokens
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
    );
    let result = rotate(
        &store,
        old.token.id().as_str(),
        Grace::NONE,
        at(T0 + DAY),
        &mut rand::rng(),
        |_| panic!("a token the store refused was delivered"),
    );
    assert!(
        result
            .unwrap_err()
            .message()
            .contains("refused by the test")
    );
    assert!(store.token(old.token.id().as_str()).unwrap().is_some());
}

/// The project is looked up by the statement that stores the token: a project deleted after
/// `create` checked it, and another created in its place, never receives the token.
#[test]
fn a_token_never_lands_in_a_project_created_after_its_own_was_deleted() {
    let store = store_with_project();
    let mut rng = StdRng::seed_from_u64(7);
    project::require(&store, "demo").unwrap();
    // What another process may do while this one hashes the new token's secret.
    store.delete_project("demo", 0).unwrap();
    store.insert_project("other", T0).unwrap();
    let (token, secret_hash) = fresh_token(&mut rng).unwrap();
    let created = CreatedToken {
        token,
        project: "demo".to_owned(),
        description: None,
        created_at: at(T0),
        expires_at: None,
    };
    assert_eq!(
        store
            .insert_token(&token_row(&created, &secret_hash), Durability::Deferred)
            .unwrap(),
        Inserted::NoProject
    );
    assert!(
        list(&store, Some("other"), &Filter::default(), at(T0))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn grace_periods_are_read_in_minutes_hours_or_days_up_to_30_days() {
    for (text, length) in [
        ("0", TimeDelta::zero()),
        ("30m", TimeDelta::minutes(30)),
        ("1h", TimeDelta::hours(1)),
        ("24h", TimeDelta::hours(24)),
        ("7d", TimeDelta::days(7)),
        ("30d", TimeDelta::days(30)),
        ("720h", TimeDelta::days(30)),
        ("43200m", TimeDelta::days(30)),
        ("0h", TimeDelta::zero()),
    ] {
        assert_eq!(Grace::parse(text).map(Grace::length), Ok(length), "{text}");
    }
    for text in [
        "", "h", "1", "1s", "1w", "-1h", "+1h", "1.5h", " 1h", "1h ", "1H", "１h",
    ] {
        let err = Grace::parse(text).unwrap_err();
        assert!(err.contains("30m, 1h, 24h or 7d"), "{text:?}: {err}");
    }
    for text in ["31d", "721h", "43201m", "99999999999d"] {
        let err = Grace::parse(text).unwrap_err();
        assert!(err.contains("at most 30 days"), "{text}: {err}");
    }
}

fn rotate_with(store: &Sqlite, id: &str, grace: &str, now: DateTime<Utc>) -> Result<Rotated> {
    rotate(
        store,
        id,
        Grace::parse(grace).unwrap(),
        now,
        &mut rand::rng(),
        |_| Ok(()),
    )
}

#[test]
fn a_grace_period_keeps_the_old_token_until_it_ends_then_it_is_gone() {
    let store = store_with_project();
    let old = create_ok(&store, &request(Expiration::Days90, Some("api")), at(T0));
    let old_id = old.token.id().as_str();
    let rotated = rotate_with(&store, old_id, "1h", at(T0 + DAY)).unwrap();
    let stops = at(T0 + DAY + 3600);
    assert_eq!(rotated.old, OldToken::StopsAt(stops));
    let new_id = rotated.created.token.id().to_string();
    let end = ScheduledEnd {
        replaced_by: new_id.clone(),
        stops_at: stops,
    };
    // Just before its end: listed, as replaced, and still found.
    let before = at(T0 + DAY + 3599);
    let listed = list(&store, None, &Filter::default(), before).unwrap();
    assert_eq!(ids(&listed), [old_id, new_id.as_str()]);
    assert_eq!(listed[0].ends.as_ref(), Some(&end));
    assert_eq!(listed[0].status, Status::Active);
    assert_eq!(listed[1].ends, None);
    assert_eq!(find(&store, old_id, before).unwrap().ends, Some(end));
    // From its end on: neither listed nor found, though its row is still there...
    for now in [stops, at(T0 + 2 * DAY)] {
        assert_eq!(
            ids(&list(&store, None, &Filter::default(), now).unwrap()),
            [new_id.as_str()]
        );
        assert_eq!(
            find(&store, old_id, now).unwrap_err().kind(),
            ErrorKind::Refused
        );
    }
    assert!(store.token(old_id).unwrap().is_some());
    // ... until a command writes.
    project::create(&store, "other", stops).unwrap();
    assert_eq!(store.token(old_id).unwrap(), None);
}

#[test]
fn a_grace_period_ends_at_the_old_tokens_expiry_if_that_is_sooner() {
    let store = store_with_project();
    let old = create_ok(&store, &request(Expiration::Days30, None), at(T0));
    let now = at(T0 + 29 * DAY);
    let rotated = rotate_with(&store, old.token.id().as_str(), "7d", now).unwrap();
    assert_eq!(rotated.old, OldToken::StopsAt(at(T0 + 30 * DAY)));
}

#[test]
fn a_replaced_token_cannot_be_rotated_again_nor_an_expired_one_with_grace() {
    let store = store_with_project();
    let old = create_ok(&store, &request(Expiration::Days30, None), at(T0));
    let old_id = old.token.id().as_str();
    let rotated = rotate_with(&store, old_id, "24h", at(T0)).unwrap();
    for grace in ["0", "1h"] {
        let err = rotate_with(&store, old_id, grace, at(T0 + 60)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Refused, "{grace}");
        assert!(
            err.message().contains(&format!(
                "its replacement is token {}",
                rotated.created.token.id()
            )),
            "{}",
            err.message()
        );
    }
    // Its replacement may be rotated, and revoking the old one stops it at once.
    let new_id = rotated.created.token.id().to_string();
    rotate_with(&store, &new_id, "1h", at(T0 + 60)).unwrap();
    revoke(&store, old_id, at(T0 + 60)).unwrap();
    assert_eq!(store.token(old_id).unwrap(), None);

    let expired = create_ok(&store, &request(Expiration::Days30, None), at(T0));
    let later = at(T0 + 31 * DAY);
    let err = rotate_with(&store, expired.token.id().as_str(), "1h", later).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage);
    let count = list(&store, None, &Filter::default(), later).unwrap().len();
    let fresh = rotate_with(&store, expired.token.id().as_str(), "0", later).unwrap();
    assert_eq!(fresh.old, OldToken::Stopped);
    assert_eq!(
        list(&store, None, &Filter::default(), later).unwrap().len(),
        count
    );
}

#[test]
fn an_undelivered_replacement_is_deleted_and_the_old_token_is_untouched() {
    let store = store_with_project();
    let old = create_ok(&store, &request(Expiration::Days30, None), at(T0));
    let old_id = old.token.id().as_str();
    let before = list(&store, None, &Filter::default(), at(T0)).unwrap();
    let err = rotate(
        &store,
        old_id,
        Grace::parse("1h").unwrap(),
        at(T0),
        &mut rand::rng(),
        |_| Err(Error::environment("stdout closed")),
    )
    .unwrap_err();
    assert_eq!(err.message(), "stdout closed");
    assert_eq!(
        list(&store, None, &Filter::default(), at(T0)).unwrap(),
        before
    );
    assert_eq!(store.token(old_id).unwrap().unwrap().replacement, None);
}

/// Two rotations of one token, the second at once, both past their checks before either
/// retired it: the end the first scheduled stands (it is set once), and the second is told.
#[test]
fn a_rotation_at_once_leaves_the_end_another_rotation_scheduled_meanwhile() {
    let store = store_with_project();
    let old = create_ok(&store, &request(Expiration::Days30, None), at(T0));
    let id = old.token.id().as_str();
    let first = store
        .retire_token(id, "AAAAAAAAAAAA", Some(T0 + 3600), T0)
        .unwrap();
    assert_eq!(first, Retired::Done);
    let second = store.retire_token(id, "BBBBBBBBBBBB", None, T0).unwrap();
    assert_eq!(
        second,
        Retired::Scheduled(Replacement {
            by: "AAAAAAAAAAAA".into(),
            stops_at: T0 + 3600
        })
    );
    assert!(
        store.token(id).unwrap().is_some(),
        "the scheduled token was deleted"
    );
}
