//! `pasar regions import`: loads the official region table (gzipped CSV) idempotently.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::{RegionRow, code_level};
use crate::db::schema::regions;

/// Rows per INSERT: 6 binds each stays far below PostgreSQL's 65,535-parameter limit.
const BATCH: usize = 5_000;

pub const DEFAULT_FILE: &str = "data/regions/regions.csv.gz";

#[derive(Debug)]
pub struct ImportReport {
    pub rows: usize,
    pub seconds: f64,
}

/// Reads the CSV (gzipped when the name ends in `.gz`), keeping rows whose code starts with one of
/// `only` (all when empty).
pub fn read_file(path: &Path, only: &[String]) -> anyhow::Result<Vec<RegionRow>> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut csv = csv::Reader::from_reader(reader);
    let mut rows = Vec::with_capacity(92_000);
    for (i, record) in csv.records().enumerate() {
        let r = record.map_err(|e| anyhow::anyhow!("line {}: {e}", i + 2))?;
        let get = |n: usize| r.get(n).unwrap_or("").trim().to_string();
        let code = get(0);
        let level = code_level(&code)
            .ok_or_else(|| anyhow::anyhow!("line {}: bad region code {code:?}", i + 2))?;
        if level.to_string() != get(2) {
            anyhow::bail!(
                "line {}: level {} does not match code {code}",
                i + 2,
                get(2)
            );
        }
        if !only.is_empty() && !only.iter().any(|p| code.starts_with(p.as_str())) {
            continue;
        }
        let opt = |s: String| if s.is_empty() { None } else { Some(s) };
        rows.push(RegionRow {
            parent_code: opt(get(1)),
            level,
            kind: get(3),
            name: get(4),
            postal_code: opt(get(5)),
            code,
        });
    }
    // Parents before children, whatever the file's order.
    rows.sort_by(|a, b| (a.level, &a.code).cmp(&(b.level, &b.code)));
    Ok(rows)
}

/// Upserts the rows in batches inside one transaction, so a failed import changes nothing.
pub fn import(
    conn: &mut PgConnection,
    rows: &[RegionRow],
    progress: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<ImportReport> {
    let start = Instant::now();
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        for chunk in rows.chunks(BATCH) {
            diesel::insert_into(regions::table)
                .values(chunk)
                .on_conflict(regions::code)
                .do_update()
                .set((
                    regions::parent_code.eq(excluded(regions::parent_code)),
                    regions::level.eq(excluded(regions::level)),
                    regions::kind.eq(excluded(regions::kind)),
                    regions::name.eq(excluded(regions::name)),
                    regions::postal_code.eq(excluded(regions::postal_code)),
                ))
                .execute(conn)?;
            if let Some(pb) = progress {
                pb.inc(chunk.len() as u64);
            }
        }
        Ok(())
    })?;
    Ok(ImportReport {
        rows: rows.len(),
        seconds: start.elapsed().as_secs_f64(),
    })
}
