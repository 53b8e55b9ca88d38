//! Every row of the index's PostgreSQL tables, read in one transaction, and the load of an
//! export into empty tables (a migration's target), a chunk of rows per statement.

use tufpi_pg::postgres::types::ToSql;
use tufpi_pg::postgres::{GenericClient, Transaction};

use super::schema::filename_key;
use super::{file_row, read_outbox, PgIndex, FILE_COLUMNS};
use crate::db::export::{IndexRows, PageRow, ProjectRow, StoredToken};
use crate::db::outbox::outbox_row;
use crate::error::IndexError;

/// The tables, as `tables_with_rows` names them.
const TABLES: [&str; 7] = [
    "index_projects",
    "index_files",
    "index_used_filenames",
    "index_used_dists",
    "index_pages",
    "index_tokens",
    "index_outbox",
];

/// Rows loaded per statement: one round trip per chunk, not per row.
const CHUNK: usize = 2000;

/// The tables that exist and hold rows.
pub(in crate::db) fn tables_with_rows(
    c: &mut impl GenericClient,
) -> Result<Vec<&'static str>, IndexError> {
    let mut out = Vec::new();
    for t in TABLES {
        let there: bool = c
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t])?
            .try_get(0)?;
        if there
            && c.query_one(&format!("SELECT EXISTS (SELECT 1 FROM {t})"), &[])?
                .try_get::<_, bool>(0)?
        {
            out.push(t);
        }
    }
    Ok(out)
}

fn export(c: &mut impl GenericClient) -> Result<IndexRows, IndexError> {
    let mut rows = IndexRows::default();
    for r in c.query(
        "SELECT name, display_name, created, html_sha256, json_sha256 FROM index_projects",
        &[],
    )? {
        rows.projects.push(ProjectRow {
            name: r.try_get(0)?,
            display_name: r.try_get(1)?,
            created: r.try_get(2)?,
            html_sha256: r.try_get(3)?,
            json_sha256: r.try_get(4)?,
        });
    }
    for r in c.query(&format!("SELECT {FILE_COLUMNS} FROM index_files"), &[])? {
        rows.files.push(file_row(&r)?);
    }
    for r in c.query("SELECT filename FROM index_used_filenames", &[])? {
        rows.used_filenames.push(r.try_get(0)?);
    }
    for r in c.query("SELECT key, filename FROM index_used_dists", &[])? {
        rows.used_dists.push((r.try_get(0)?, r.try_get(1)?));
    }
    for r in c.query(
        "SELECT sha256, blake2b, project, kind, size FROM index_pages",
        &[],
    )? {
        rows.pages.push(PageRow {
            sha256: r.try_get(0)?,
            blake2b: r.try_get(1)?,
            project: r.try_get(2)?,
            kind: r.try_get(3)?,
            size: r.try_get::<_, i64>(4)? as u64,
        });
    }
    for r in c.query(
        "SELECT hash, project, description, created FROM index_tokens",
        &[],
    )? {
        rows.tokens.push(StoredToken {
            hash: r.try_get(0)?,
            project: r.try_get(1)?,
            description: r.try_get(2)?,
            created: r.try_get(3)?,
        });
    }
    rows.outbox = read_outbox(c)?.into_iter().map(|(_, ch)| ch).collect();
    Ok(rows)
}

impl PgIndex {
    pub(in crate::db) fn export(&mut self) -> Result<IndexRows, IndexError> {
        let mut conn = self.db.get()?;
        // REPEATABLE READ: every table as of one snapshot.
        let mut tx = conn
            .build_transaction()
            .isolation_level(tufpi_pg::postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let rows = export(&mut tx)?;
        tx.rollback()?;
        Ok(rows)
    }

    pub(in crate::db) fn tables_with_rows(&mut self) -> Result<Vec<&'static str>, IndexError> {
        tables_with_rows(&mut *self.db.get()?)
    }

    pub(in crate::db) fn import(&mut self, rows: &IndexRows) -> Result<(), IndexError> {
        let mut conn = self.db.get()?;
        let mut tx = conn.transaction()?;
        import_in(&mut tx, rows)?;
        tx.commit()?;
        Ok(())
    }
}

/// Insert `n` rows, a chunk at a time: `columns(range)` gives one array per column of the
/// rows in `range`, `sql` inserts them (`… SELECT * FROM UNNEST($1::T[], …)`).
fn insert_chunked(
    tx: &mut Transaction<'_>,
    sql: &str,
    n: usize,
    columns: &dyn Fn(std::ops::Range<usize>) -> Vec<Box<dyn ToSql + Sync>>,
) -> Result<(), IndexError> {
    let stmt = tx.prepare(sql)?;
    let mut start = 0;
    while start < n {
        let end = (start + CHUNK).min(n);
        let cols = columns(start..end);
        let params: Vec<&(dyn ToSql + Sync)> = cols.iter().map(|b| &**b).collect();
        tx.execute(&stmt, &params)?;
        start = end;
    }
    Ok(())
}

/// Column `f` of rows `r` of `v`, boxed as a statement parameter.
fn col<T, U: ToSql + Sync + 'static>(
    v: &[T],
    r: &std::ops::Range<usize>,
    f: impl Fn(&T) -> U,
) -> Box<dyn ToSql + Sync> {
    Box::new(v[r.clone()].iter().map(f).collect::<Vec<U>>())
}

/// See [`crate::db::export::import_in`].
pub(in crate::db) fn import_in(
    tx: &mut Transaction<'_>,
    rows: &IndexRows,
) -> Result<(), IndexError> {
    let full = tables_with_rows(tx)?;
    if !full.is_empty() {
        return Err(IndexError::bad(format!(
            "the database holds an index already (rows in {}): refusing to load another over it",
            full.join(", ")
        )));
    }
    let p = &rows.projects;
    insert_chunked(
        tx,
        "INSERT INTO index_projects(name, display_name, created, html_sha256, json_sha256) \
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[])",
        p.len(),
        &|r| {
            vec![
                col(p, &r, |x| x.name.clone()),
                col(p, &r, |x| x.display_name.clone()),
                col(p, &r, |x| x.created.clone()),
                col(p, &r, |x| x.html_sha256.clone()),
                col(p, &r, |x| x.json_sha256.clone()),
            ]
        },
    )?;
    let f = &rows.files;
    insert_chunked(
        tx,
        &format!(
            "INSERT INTO index_files(filename_key, {FILE_COLUMNS}) SELECT * FROM UNNEST(\
             $1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], \
             $7::BIGINT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::BIGINT[], $12::TEXT[], \
             $13::TEXT[], $14::TEXT[], $15::TEXT[])"
        ),
        f.len(),
        &|r| {
            let meta = |x: &crate::pages::FileRow| x.metadata.clone();
            vec![
                col(f, &r, |x| filename_key(&x.filename)),
                col(f, &r, |x| x.filename.clone()),
                col(f, &r, |x| x.project.clone()),
                col(f, &r, |x| x.version.clone()),
                col(f, &r, |x| x.packagetype.clone()),
                col(f, &r, |x| x.path.clone()),
                col(f, &r, |x| x.digests.size as i64),
                col(f, &r, |x| x.digests.sha256.clone()),
                col(f, &r, |x| x.digests.blake2b.clone()),
                col(f, &r, |x| x.requires_python.clone()),
                col(f, &r, move |x| meta(x).map(|m| m.size as i64)),
                col(f, &r, move |x| meta(x).map(|m| m.sha256)),
                col(f, &r, move |x| meta(x).map(|m| m.blake2b)),
                col(f, &r, |x| x.upload_time.clone()),
                col(f, &r, |x| x.yanked.clone()),
            ]
        },
    )?;
    let u = &rows.used_filenames;
    insert_chunked(
        tx,
        "INSERT INTO index_used_filenames(filename_key, filename) \
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[])",
        u.len(),
        &|r| vec![col(u, &r, |x| filename_key(x)), col(u, &r, |x| x.clone())],
    )?;
    let d = &rows.used_dists;
    insert_chunked(
        tx,
        "INSERT INTO index_used_dists(key, filename) SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[])",
        d.len(),
        &|r| vec![col(d, &r, |x| x.0.clone()), col(d, &r, |x| x.1.clone())],
    )?;
    let g = &rows.pages;
    insert_chunked(
        tx,
        "INSERT INTO index_pages(sha256, blake2b, project, kind, size) \
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[])",
        g.len(),
        &|r| {
            vec![
                col(g, &r, |x| x.sha256.clone()),
                col(g, &r, |x| x.blake2b.clone()),
                col(g, &r, |x| x.project.clone()),
                col(g, &r, |x| x.kind.clone()),
                col(g, &r, |x| x.size as i64),
            ]
        },
    )?;
    let t = &rows.tokens;
    insert_chunked(
        tx,
        "INSERT INTO index_tokens(hash, project, description, created) \
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[])",
        t.len(),
        &|r| {
            vec![
                col(t, &r, |x| x.hash.clone()),
                col(t, &r, |x| x.project.clone()),
                col(t, &r, |x| x.description.clone()),
                col(t, &r, |x| x.created.clone()),
            ]
        },
    )?;
    // Row by row, in order: the identity column numbers them as they come.
    for c in &rows.outbox {
        let (op, path, size, sha256, blake2b) = outbox_row(c);
        tx.execute(
            "INSERT INTO index_outbox(op, path, size, sha256, blake2b) VALUES ($1, $2, $3, $4, $5)",
            &[&op, &path, &size, &sha256, &blake2b],
        )?;
    }
    Ok(())
}
