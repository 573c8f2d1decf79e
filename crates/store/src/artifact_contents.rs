//! Artifact contents, stored once per SHA-256 (table `artifact_contents`, migration 0010).
//!
//! Most generated files are byte-identical across services (the Helm chart's templates, shared
//! workflow steps), so an artifact row names its content by `sha256` (a foreign key) instead of
//! holding a copy. A transaction that writes artifact rows first stores the contents they name
//! ([`Contents`], then `store`); one that changes or deletes rows reads which contents their owner
//! named before ([`sqlite::named_by`] / [`postgres::named_by`]) and, after the change, deletes
//! those it let go of that no artifact names any more (`release`).
//!
//! Why in the same transaction rather than a periodic sweep: the table is then exactly the set of
//! named contents at every commit, with no schedule to tune and nothing piling up between sweeps,
//! and the cost is an indexed probe (`artifacts_sha256`) per content let go — none for a
//! registration, which only adds names. On PostgreSQL it also needs a lock order (see
//! [`postgres`]), which a sweep racing with writers would need as well.

use crate::{Result, StoreError};
use sha2::{Digest, Sha256};
use slipway_core::Artifact;
use std::collections::{BTreeMap, BTreeSet};

/// The distinct contents a transaction will name, by sha256 — sorted, which is the order
/// PostgreSQL locks them in.
#[derive(Default)]
pub(crate) struct Contents<'a>(BTreeMap<&'a str, &'a [u8]>);

impl<'a> Contents<'a> {
    pub(crate) fn of<I: IntoIterator<Item = &'a Artifact>>(artifacts: I) -> Result<Self> {
        let mut contents = Self::default();
        for a in artifacts {
            contents.add(&a.path, &a.sha256, &a.content)?;
        }
        Ok(contents)
    }

    /// Adds one content after checking that `sha256` is its hash: contents are shared by hash, so a
    /// wrong one would make other artifacts serve these bytes.
    pub(crate) fn add(&mut self, path: &str, sha256: &'a str, content: &'a [u8]) -> Result<()> {
        match self.0.get(sha256) {
            Some(known) if *known == content => return Ok(()),
            None if format!("{:x}", Sha256::digest(content)) == sha256 => {
                self.0.insert(sha256, content);
                return Ok(());
            }
            _ => {}
        }
        Err(StoreError::ContentHashMismatch {
            path: path.to_string(),
            sha256: sha256.to_string(),
        })
    }
}

/// The contents named before a change and not after it.
pub(crate) fn let_go(before: BTreeSet<String>, after: &BTreeSet<String>) -> BTreeSet<String> {
    before.into_iter().filter(|s| !after.contains(s)).collect()
}

/// SQLite serializes writers (one connection, `BEGIN IMMEDIATE`), so no transaction can name a
/// content between another one's check and its delete.
pub(crate) mod sqlite {
    use super::Contents;
    use crate::Result;
    use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
    use std::collections::BTreeSet;

    /// Rows per statement, well under SQLite's limit of bound parameters.
    const BATCH: usize = 200;

    /// Stores the contents that are not stored yet.
    pub(crate) async fn store(conn: &mut SqliteConnection, contents: &Contents<'_>) -> Result<()> {
        let all: Vec<(&str, &[u8])> = contents.0.iter().map(|(s, c)| (*s, *c)).collect();
        for batch in all.chunks(BATCH) {
            let mut insert =
                QueryBuilder::<Sqlite>::new("INSERT INTO artifact_contents (sha256, content) ");
            insert.push_values(batch, |mut row, (sha256, content)| {
                row.push_bind(*sha256).push_bind(*content);
            });
            insert.push(" ON CONFLICT (sha256) DO NOTHING");
            insert.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// The contents `owner`'s artifacts name (a service's name, or `''` for platform-wide files).
    pub(crate) async fn named_by(
        conn: &mut SqliteConnection,
        owner: &str,
    ) -> Result<BTreeSet<String>> {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT sha256 FROM artifacts WHERE service_name = $1")
                .bind(owner)
                .fetch_all(conn)
                .await?;
        Ok(names.into_iter().collect())
    }

    /// Deletes those of `let_go` that no artifact names.
    pub(crate) async fn release(
        conn: &mut SqliteConnection,
        let_go: &BTreeSet<String>,
    ) -> Result<()> {
        let all: Vec<&String> = let_go.iter().collect();
        for batch in all.chunks(BATCH) {
            let mut delete =
                QueryBuilder::<Sqlite>::new("DELETE FROM artifact_contents WHERE sha256 IN (");
            let mut list = delete.separated(", ");
            for sha256 in batch {
                list.push_bind(*sha256);
            }
            delete.push(
                ") AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.sha256 = artifact_contents.sha256)",
            );
            delete.build().execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// PostgreSQL runs writers side by side, so a content may be named by one transaction while
/// another deletes its last other name. Both take row locks on `artifact_contents`, in sha256
/// order, and hold them to commit:
///
/// - a writer inserts what is missing (`ON CONFLICT DO NOTHING`: two writers of one new content
///   both succeed, the second waits for the first) and then takes `FOR KEY SHARE` on every content
///   it will name — the lock its foreign keys take anyway, shared by all writers. One that was
///   deleted in between is missing from the locked rows, and the writer inserts it again;
/// - a releaser takes `FOR UPDATE` on what it let go of, which waits for every writer holding one
///   of them, and only then checks, in a new statement that sees those writers' rows, that nothing
///   names it.
///
/// A transaction that both names and lets go of contents (a regeneration) locks them in two
/// passes; two such transactions crossing each other's contents can deadlock (replicas running
/// different template versions; within one Slipway process the catalog lock serializes them).
/// PostgreSQL then aborts one, and the store runs that change again (`retry_crossed` in
/// `postgres.rs`).
pub(crate) mod postgres {
    use super::Contents;
    use crate::{Result, StoreError};
    use sqlx::PgConnection;
    use std::collections::BTreeSet;

    /// Rounds of insert-then-lock. A second round only happens when a content was deleted between
    /// the two statements, and then inserts it itself, invisible to other transactions until
    /// commit, so it cannot be deleted again.
    const ROUNDS: usize = 3;

    /// Stores the contents that are not stored yet and locks all of them (`FOR KEY SHARE`) so
    /// that no other transaction deletes one before this one commits.
    pub(crate) async fn store(conn: &mut PgConnection, contents: &Contents<'_>) -> Result<()> {
        if contents.0.is_empty() {
            return Ok(());
        }
        let shas: Vec<&str> = contents.0.keys().copied().collect();
        let mut missing = contents.0.clone();
        for _ in 0..ROUNDS {
            let (insert_shas, insert_contents): (Vec<&str>, Vec<&[u8]>) =
                missing.iter().map(|(s, c)| (*s, *c)).unzip();
            sqlx::query(
                "INSERT INTO artifact_contents (sha256, content) \
                 SELECT * FROM unnest($1::text[], $2::bytea[]) ORDER BY 1 \
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(&insert_shas)
            .bind(&insert_contents)
            .execute(&mut *conn)
            .await?;
            let locked: Vec<String> = sqlx::query_scalar(
                "SELECT sha256 FROM artifact_contents WHERE sha256 = ANY($1) \
                 ORDER BY sha256 FOR KEY SHARE",
            )
            .bind(&shas)
            .fetch_all(&mut *conn)
            .await?;
            for sha256 in &locked {
                missing.remove(sha256.as_str());
            }
            if missing.is_empty() {
                return Ok(());
            }
        }
        Err(StoreError::Refused(
            "artifact contents kept being deleted while this change stored them; try again".into(),
        ))
    }

    /// The contents `owner`'s artifacts name (a service's name, or `''` for platform-wide files).
    pub(crate) async fn named_by(conn: &mut PgConnection, owner: &str) -> Result<BTreeSet<String>> {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT sha256 FROM artifacts WHERE service_name = $1")
                .bind(owner)
                .fetch_all(conn)
                .await?;
        Ok(names.into_iter().collect())
    }

    /// Deletes those of `let_go` that no artifact names.
    pub(crate) async fn release(conn: &mut PgConnection, let_go: &BTreeSet<String>) -> Result<()> {
        if let_go.is_empty() {
            return Ok(());
        }
        let shas: Vec<&str> = let_go.iter().map(String::as_str).collect();
        sqlx::query(
            "SELECT sha256 FROM artifact_contents WHERE sha256 = ANY($1) ORDER BY sha256 FOR UPDATE",
        )
        .bind(&shas)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "DELETE FROM artifact_contents c WHERE c.sha256 = ANY($1) \
             AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.sha256 = c.sha256)",
        )
        .bind(&shas)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
