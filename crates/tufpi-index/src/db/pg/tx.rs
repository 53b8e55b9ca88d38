//! The write transaction on PostgreSQL: the rows of [`WriteTx`], each claim and lock as the
//! module docs of `pg` describe.

use tufpi_pg::postgres::Transaction;
use tufpi_repo::layout::bin_of;
use tufpi_repo::store::enqueue_in;
use tufpi_repo::{Change, RepoConfig, RepoError};
use tufpi_simple::PageKind;

use super::schema::filename_key;
use super::{dist_used, files_of, PgIndex, FILE_COLUMNS};
use crate::db::conn::now_text;
use crate::db::outbox::outbox_row;
use crate::db::tx::WriteTx;
use crate::error::IndexError;
use crate::pages::{Digests, FileRow};

impl PgIndex {
    pub(in crate::db) fn write<T>(
        &mut self,
        f: impl FnOnce(&mut dyn WriteTx) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let mut conn = self.db.get()?;
        let mut tx = PgTx {
            tx: conn.transaction()?,
            queue: self.queue.as_ref(),
        };
        let out = f(&mut tx)?;
        tx.tx.commit()?;
        Ok(out)
    }
}

/// A write transaction on PostgreSQL (READ COMMITTED; rolled back on drop).
struct PgTx<'a> {
    tx: Transaction<'a>,
    /// The repository's configuration, when changes go straight into its queue.
    queue: Option<&'a RepoConfig>,
}

impl WriteTx for PgTx<'_> {
    fn lock_project(&mut self, name: &str, create_as: Option<&str>) -> Result<bool, IndexError> {
        if let Some(display_name) = create_as {
            // The no-op update takes the row lock whether the row is new, was there, or is
            // being inserted by another transaction (then this waits for it): the first
            // display name stays, as SQLite's INSERT OR IGNORE keeps it.
            self.tx.execute(
                "INSERT INTO index_projects(name, display_name, created) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET display_name = index_projects.display_name",
                &[&name, &display_name, &now_text()],
            )?;
            return Ok(true);
        }
        Ok(self
            .tx
            .query_opt(
                "SELECT 1 FROM index_projects WHERE name = $1 FOR UPDATE",
                &[&name],
            )?
            .is_some())
    }

    fn claim_filename(&mut self, filename: &str) -> Result<bool, IndexError> {
        Ok(self.tx.execute(
            "INSERT INTO index_used_filenames(filename_key, filename) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
            &[&filename_key(filename), &filename],
        )? > 0)
    }

    fn claim_dist(&mut self, key: &str, filename: &str) -> Result<Option<String>, IndexError> {
        let claimed = self.tx.execute(
            "INSERT INTO index_used_dists(key, filename) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&key, &filename],
        )?;
        if claimed > 0 {
            return Ok(None);
        }
        // Held: by a committed row, which this new statement sees.
        Ok(Some(dist_used(&mut self.tx, key)?.unwrap_or_else(|| {
            // Not reachable under READ COMMITTED; name the file itself rather than fail.
            filename.to_string()
        })))
    }

    fn files_of(&mut self, project: &str) -> Result<Vec<FileRow>, IndexError> {
        files_of(&mut self.tx, project)
    }

    fn versions_of(&mut self, project: &str) -> Result<Vec<String>, IndexError> {
        self.tx
            .query(
                "SELECT DISTINCT version FROM index_files WHERE project = $1",
                &[&project],
            )?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
    }

    fn insert_file(&mut self, file: &FileRow) -> Result<(), IndexError> {
        let m = file.metadata.as_ref();
        self.tx.execute(
            &format!(
                "INSERT INTO index_files(filename_key, {FILE_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ),
            &[
                &filename_key(&file.filename),
                &file.filename,
                &file.project,
                &file.version,
                &file.packagetype,
                &file.path,
                &(file.digests.size as i64),
                &file.digests.sha256,
                &file.digests.blake2b,
                &file.requires_python,
                &m.map(|d| d.size as i64),
                &m.map(|d| d.sha256.as_str()),
                &m.map(|d| d.blake2b.as_str()),
                &file.upload_time,
                &file.yanked,
            ],
        )?;
        Ok(())
    }

    fn set_yanked(&mut self, filename: &str, reason: Option<&str>) -> Result<bool, IndexError> {
        Ok(self.tx.execute(
            "UPDATE index_files SET yanked = $1 WHERE filename_key = $2",
            &[&reason, &filename_key(filename)],
        )? > 0)
    }

    fn delete_file(&mut self, filename: &str) -> Result<(), IndexError> {
        self.tx.execute(
            "DELETE FROM index_files WHERE filename_key = $1",
            &[&filename_key(filename)],
        )?;
        Ok(())
    }

    fn delete_project(&mut self, name: &str) -> Result<(), IndexError> {
        self.tx
            .execute("DELETE FROM index_projects WHERE name = $1", &[&name])?;
        Ok(())
    }

    fn insert_page(
        &mut self,
        project: &str,
        kind: PageKind,
        d: &Digests,
    ) -> Result<(), IndexError> {
        self.tx.execute(
            "INSERT INTO index_pages(sha256, blake2b, project, kind, size) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
            &[&d.sha256, &d.blake2b, &project, &kind.as_str(), &(d.size as i64)],
        )?;
        Ok(())
    }

    fn set_current_pages(
        &mut self,
        project: &str,
        html: &str,
        json: &str,
    ) -> Result<(), IndexError> {
        self.tx.execute(
            "UPDATE index_projects SET html_sha256 = $1, json_sha256 = $2 WHERE name = $3",
            &[&html, &json, &project],
        )?;
        Ok(())
    }

    fn push_outbox(&mut self, changes: &[Change]) -> Result<(), IndexError> {
        if let Some(cfg) = self.queue {
            // As `Repository::enqueue` would queue them, but in this transaction.
            let routed = changes
                .iter()
                .map(|c| {
                    let c = c.clone().validate(cfg)?;
                    Ok((bin_of(cfg, c.path()), c))
                })
                .collect::<Result<Vec<_>, RepoError>>()?;
            enqueue_in(&mut self.tx, routed)?;
            return Ok(());
        }
        let stmt = self.tx.prepare(
            "INSERT INTO index_outbox(op, path, size, sha256, blake2b) VALUES ($1, $2, $3, $4, $5)",
        )?;
        for c in changes {
            let (op, path, size, sha256, blake2b) = outbox_row(c);
            self.tx
                .execute(&stmt, &[&op, &path, &size, &sha256, &blake2b])?;
        }
        Ok(())
    }
}
