//! Projects: create, list, delete.

use chrono::{DateTime, Utc};

use super::Failure;
use super::time;
use crate::error::Topic;
use crate::error::{Error, Result};
use crate::store::{ProjectRow, Store, Visit};
use crate::text;

pub const NAME_MAX_LEN: usize = 64;

/// A project as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub tokens: u64,
}

/// Checks a project name: 1-64 of letters, digits, `.`, `_`, `-`, starting with a letter or
/// digit.
pub fn validate_name(name: &str) -> Result<()> {
    let rule = "a project name is 1-64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit";
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let allowed = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() {
        Err(Error::usage(format!("the project name is empty: {rule}")))
    } else if name.chars().count() > NAME_MAX_LEN {
        Err(Error::usage(format!(
            "the project name is {} characters long: {rule}",
            name.chars().count()
        )))
    } else if !starts_well || !allowed {
        Err(Error::usage(format!(
            "invalid project name '{name}': {rule}"
        )))
    } else {
        Ok(())
    }
}

/// Checks the name of a new project: [`validate_name`]'s rule, and nothing shaped like a token
/// (names are shown everywhere, and errors would show it redacted). Only for new names, so
/// that a project named so before this rule can still be used and deleted.
pub fn validate_new_name(name: &str) -> Result<()> {
    validate_name(name)?;
    if text::has_token_shape(name) {
        return Err(Error::usage(format!(
            "the project name '{}' looks like a token: a name may not hold aut_ followed by a token id (12 letters or digits), nor 43 letters and digits that mix upper case, lower case and digits, as a secret does",
            text::redact_tokens(name)
        )));
    }
    Ok(())
}

pub fn create(store: &dyn Store, name: &str, now: DateTime<Utc>) -> Result<Project> {
    validate_new_name(name)?;
    super::token::remove_stopped(store, now)?;
    if !store.insert_project(name, now.timestamp())? {
        return Err(
            Error::refused(format!("a project named '{name}' already exists"))
                .about(Topic::ProjectNameTaken),
        );
    }
    Ok(Project {
        name: name.to_owned(),
        created_at: now,
        tokens: 0,
    })
}

/// A visitor of listed projects that may fail (writing to stdout); its first error stops the
/// listing.
pub type Each<'a> = &'a mut dyn FnMut(Project) -> Result<()>;

/// Hands every project, by name, with its count of tokens at `now`, to each visitor of
/// `passes` in turn, all of the same moment, as the store reads them.
pub fn for_each(store: &dyn Store, now: DateTime<Utc>, passes: &mut [Each<'_>]) -> Result<()> {
    let failure = Failure::default();
    let mut visitors: Vec<_> = passes
        .iter_mut()
        .map(|each| {
            let failure = &failure;
            move |row: ProjectRow| {
                failure.check(each(Project {
                    name: row.name,
                    created_at: time(row.created_at),
                    tokens: row.tokens,
                }))
            }
        })
        .collect();
    let mut visits: Vec<Visit<'_, ProjectRow>> = visitors
        .iter_mut()
        .map(|visit| visit as Visit<'_, ProjectRow>)
        .collect();
    let listed = store.projects(now.timestamp(), &mut visits);
    drop(visits);
    drop(visitors);
    failure.or(listed.map_err(Error::from))
}

/// Every project, by name, with its count of tokens at `now`.
pub fn list(store: &dyn Store, now: DateTime<Utc>) -> Result<Vec<Project>> {
    let mut projects = Vec::new();
    for_each(
        store,
        now,
        &mut [&mut |project| {
            projects.push(project);
            Ok(())
        }],
    )?;
    Ok(projects)
}

/// Checks that a project exists, or says what to do. The name is checked first, so that a
/// refused error never echoes something that cannot be a name (such as a token pasted in the
/// wrong place).
pub fn require(store: &dyn Store, name: &str) -> Result<()> {
    validate_name(name)?;
    if store.project_exists(name)? {
        Ok(())
    } else {
        Err(not_found(name))
    }
}

pub(super) fn not_found(name: &str) -> Error {
    Error::refused(format!("no project named '{name}'")).about(Topic::NoProject)
}

/// How many tokens deleting the project at `now` would revoke.
pub fn token_count(store: &dyn Store, name: &str, now: DateTime<Utc>) -> Result<u64> {
    validate_name(name)?;
    store
        .project_token_count(name, now.timestamp())?
        .ok_or_else(|| not_found(name))
}

/// Deletes the project and all its tokens; returns how many tokens were revoked (those whose
/// scheduled end has come by `now` are not counted: they stopped on their own).
pub fn delete(store: &dyn Store, name: &str, now: DateTime<Utc>) -> Result<u64> {
    validate_name(name)?;
    super::token::remove_stopped(store, now)?;
    store
        .delete_project(name, now.timestamp())?
        .ok_or_else(|| not_found(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn names_follow_the_rule() {
        for good in ["a", "demo", "Prod-1", "x.y_z", "9lives", &"a".repeat(64)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-x",
            ".x",
            "_x",
            "a b",
            "../x",
            "a/b",
            "é",
            &"a".repeat(65),
            "a\u{1b}[31m",
        ] {
            let err = validate_name(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Usage, "{bad}");
        }
    }

    #[test]
    fn new_names_hold_no_token_shape() {
        for good in ["aut_short", "autumn_sale_2026", "aut_", "aut_payments_v2"] {
            assert!(validate_new_name(good).is_ok(), "{good}");
        }
        for bad in ["aut_3kTMd9aPq0Zx", "x-aut_3kTMd9aPq0Zx_T0kxV2bq8Xc1"] {
            assert_eq!(
                validate_new_name(bad).unwrap_err().kind(),
                ErrorKind::Usage,
                "{bad}"
            );
            assert!(
                validate_name(bad).is_ok(),
                "{bad}: still usable once it exists"
            );
        }
    }

    #[test]
    fn create_list_delete() {
        let store = crate::store::in_memory();
        create(&*store, "web", now()).unwrap();
        create(&*store, "api", now()).unwrap();
        let names: Vec<_> = list(&*store, now())
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["api", "web"]);
        assert_eq!(token_count(&*store, "web", now()).unwrap(), 0);
        assert_eq!(delete(&*store, "web", now()).unwrap(), 0);
        assert_eq!(list(&*store, now()).unwrap().len(), 1);
    }

    #[test]
    fn taken_and_unknown_names_are_refused() {
        let store = crate::store::in_memory();
        create(&*store, "web", now()).unwrap();
        assert_eq!(
            create(&*store, "web", now()).unwrap_err().kind(),
            ErrorKind::Refused
        );
        assert_eq!(
            delete(&*store, "nope", now()).unwrap_err().kind(),
            ErrorKind::Refused
        );
        assert_eq!(
            token_count(&*store, "nope", now()).unwrap_err().kind(),
            ErrorKind::Refused
        );
    }
}
