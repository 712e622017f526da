//! Line history in the database: 5-second samples, 1-minute roll-ups, events and
//! alerts, and the pruning that keeps them within their retention.
//!
//! Writes come from one task fed by a channel, so the media path and the sessions
//! never wait on the disk. Each batch is one transaction.

use serde::Serialize;
use sqlx::sqlite::SqlitePool;
use sqlx::{QueryBuilder, Row};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::model::Millis;

/// One stored sample: a site's line over one sample interval.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct SampleRow {
    /// Unix seconds at the end of the interval.
    pub t: i64,
    pub score: f64,
    pub level: String,
    pub rtt_ms: Option<f64>,
    pub loss_in: Option<f64>,
    pub loss_out: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub bitrate_in: Option<f64>,
    pub bitrate_out: Option<f64>,
}

/// Something that happened to a site's line.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct LinkEvent {
    /// RFC 3339.
    pub at: String,
    pub site: String,
    /// `joined`, `left`, `dropped`, `reconnected` or `level`.
    pub kind: String,
    pub level: Option<String>,
    pub previous: Option<String>,
    pub detail: Option<String>,
}

/// An alert raised about a site.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct Alert {
    pub id: i64,
    pub site: String,
    /// RFC 3339.
    pub at: String,
    /// `degraded` (stayed poor or lost) or `dropped` (lost its connection in a meeting).
    pub kind: String,
    pub level: Option<String>,
    /// In English, for logs and webhooks; pages compose their own from the fields.
    pub message: String,
    pub meeting: Option<String>,
    /// For `degraded`: how long the line had been bad, and its score then. Not
    /// stored: alerts read back after a restart have only their message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// What the writer task stores.
#[derive(Debug)]
pub(crate) enum Write {
    Sample {
        site: String,
        meeting: Option<String>,
        at: Millis,
        row: SampleRow,
    },
    Event {
        at: Millis,
        event: LinkEvent,
    },
    Alert {
        at: Millis,
        alert: Alert,
    },
    /// Roll the minutes before `before` up and drop rows older than their retention.
    Maintain {
        before: Millis,
        raw_cutoff: Millis,
        rollup_cutoff: Millis,
    },
    /// Everything before this is stored: say so (a server stopping waits for it).
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Stores writes until the channel closes. A failed write is logged and dropped: the
/// line history must never stop the meeting.
pub(crate) async fn write(pool: SqlitePool, mut writes: UnboundedReceiver<Write>) {
    let mut batch = Vec::new();
    while writes.recv_many(&mut batch, 256).await > 0 {
        if let Err(error) = write_batch(&pool, &batch).await {
            tracing::warn!(%error, "cannot store line history");
        }
        for write in batch.drain(..) {
            if let Write::Flush(done) = write {
                let _ = done.send(());
            }
        }
    }
}

async fn write_batch(pool: &SqlitePool, batch: &[Write]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for write in batch {
        match write {
            Write::Sample {
                site,
                meeting,
                at,
                row,
            } => {
                sqlx::query(
                    "INSERT INTO link_samples (site, at, meeting_id, score, level, rtt_ms, \
                     loss_in, loss_out, jitter_ms, bitrate_in, bitrate_out) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(site)
                .bind(at)
                .bind(meeting)
                .bind(row.score)
                .bind(&row.level)
                .bind(row.rtt_ms)
                .bind(row.loss_in)
                .bind(row.loss_out)
                .bind(row.jitter_ms)
                .bind(row.bitrate_in)
                .bind(row.bitrate_out)
                .execute(&mut *tx)
                .await?;
            }
            Write::Event { at, event } => {
                sqlx::query(
                    "INSERT INTO link_events (site, at, kind, level, previous, detail) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(&event.site)
                .bind(at)
                .bind(&event.kind)
                .bind(&event.level)
                .bind(&event.previous)
                .bind(&event.detail)
                .execute(&mut *tx)
                .await?;
            }
            Write::Alert { at, alert } => {
                sqlx::query(
                    "INSERT INTO link_alerts (id, site, at, kind, level, message, meeting_id) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(alert.id)
                .bind(&alert.site)
                .bind(at)
                .bind(&alert.kind)
                .bind(&alert.level)
                .bind(&alert.message)
                .bind(&alert.meeting)
                .execute(&mut *tx)
                .await?;
            }
            // Answered once the batch it came in is stored.
            Write::Flush(_) => {}
            Write::Maintain {
                before,
                raw_cutoff,
                rollup_cutoff,
            } => {
                // Minutes already rolled up are replaced: a late sample only refines them.
                sqlx::query(
                    "INSERT OR REPLACE INTO link_rollups (site, at, score, min_score, level, \
                     rtt_ms, loss_in, loss_out, jitter_ms, bitrate_in, bitrate_out) \
                     SELECT site, (at / 60000) * 60000 AS minute, AVG(score), MIN(score), \
                     CASE MIN(CASE level WHEN 'lost' THEN 0 WHEN 'poor' THEN 1 \
                       WHEN 'good' THEN 2 ELSE 3 END) \
                       WHEN 0 THEN 'lost' WHEN 1 THEN 'poor' WHEN 2 THEN 'good' \
                       ELSE 'excellent' END, \
                     AVG(rtt_ms), AVG(loss_in), AVG(loss_out), AVG(jitter_ms), \
                     AVG(bitrate_in), AVG(bitrate_out) \
                     FROM link_samples WHERE at >= ? AND at < ? GROUP BY site, minute",
                )
                .bind(before - 10 * 60_000)
                .bind(before)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM link_samples WHERE at < ?")
                    .bind(raw_cutoff)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM link_rollups WHERE at < ?")
                    .bind(rollup_cutoff)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM link_events WHERE at < ?")
                    .bind(rollup_cutoff)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM link_alerts WHERE at < ?")
                    .bind(rollup_cutoff)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    tx.commit().await
}

/// Which table a range is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    Raw,
    Minute,
}

/// A site's samples in `[from, to)`, oldest first, at most `limit` of them.
pub(crate) async fn samples(
    pool: &SqlitePool,
    site: &str,
    from: Millis,
    to: Millis,
    resolution: Resolution,
    limit: i64,
) -> Result<Vec<SampleRow>, sqlx::Error> {
    let table = match resolution {
        Resolution::Raw => "link_samples",
        Resolution::Minute => "link_rollups",
    };
    let mut query = QueryBuilder::new(format!(
        "SELECT at, score, level, rtt_ms, loss_in, loss_out, jitter_ms, bitrate_in, \
         bitrate_out FROM {table} WHERE site = "
    ));
    query
        .push_bind(site)
        .push(" AND at >= ")
        .push_bind(from)
        .push(" AND at < ")
        .push_bind(to)
        .push(" ORDER BY at LIMIT ")
        .push_bind(limit);
    let rows = query.build().fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(SampleRow {
                t: row.try_get::<i64, _>("at")? / 1000,
                score: row.try_get("score")?,
                level: row.try_get("level")?,
                rtt_ms: row.try_get("rtt_ms")?,
                loss_in: row.try_get("loss_in")?,
                loss_out: row.try_get("loss_out")?,
                jitter_ms: row.try_get("jitter_ms")?,
                bitrate_in: row.try_get("bitrate_in")?,
                bitrate_out: row.try_get("bitrate_out")?,
            })
        })
        .collect()
}

/// A site's events in `[from, to)`, oldest first, at most `limit`.
pub(crate) async fn events(
    pool: &SqlitePool,
    site: &str,
    from: Millis,
    to: Millis,
    limit: i64,
) -> Result<Vec<LinkEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT at, site, kind, level, previous, detail FROM link_events \
         WHERE site = ? AND at >= ? AND at < ? ORDER BY at, id LIMIT ?",
    )
    .bind(site)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LinkEvent {
                at: crate::model::format_time(row.try_get("at")?),
                site: row.try_get("site")?,
                kind: row.try_get("kind")?,
                level: row.try_get("level")?,
                previous: row.try_get("previous")?,
                detail: row.try_get("detail")?,
            })
        })
        .collect()
}

/// The newest alerts, newest last, and the highest alert id ever stored.
pub(crate) async fn recent_alerts(
    pool: &SqlitePool,
    limit: i64,
) -> Result<(Vec<Alert>, i64), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, site, at, kind, level, message, meeting_id FROM link_alerts \
         ORDER BY id DESC LIMIT ?",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut alerts = rows
        .iter()
        .map(|row| {
            Ok(Alert {
                id: row.try_get("id")?,
                site: row.try_get("site")?,
                at: crate::model::format_time(row.try_get("at")?),
                kind: row.try_get("kind")?,
                level: row.try_get("level")?,
                message: row.try_get("message")?,
                meeting: row.try_get("meeting_id")?,
                seconds: None,
                score: None,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    alerts.reverse();
    let max_id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM link_alerts")
        .fetch_one(pool)
        .await?;
    Ok((alerts, max_id.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::TempStore;

    fn row(at: Millis, score: f64, level: &str, loss: f64) -> Write {
        Write::Sample {
            site: "ha-quang".into(),
            meeting: None,
            at,
            row: SampleRow {
                t: at / 1000,
                score,
                level: level.into(),
                rtt_ms: Some(20.0),
                loss_in: Some(loss),
                loss_out: None,
                jitter_ms: Some(3.0),
                bitrate_in: Some(500_000.0),
                bitrate_out: Some(600_000.0),
            },
        }
    }

    #[tokio::test]
    async fn minutes_roll_up_and_old_rows_are_pruned() {
        let temp = TempStore::new().await;
        let pool = temp.store.pool().clone();
        const MINUTE: Millis = 60_000;
        let base = 1_000 * MINUTE;
        // Minute 0: two good samples and a poor one; minute 1: one excellent sample.
        let writes = vec![
            row(base + 5_000, 90.0, "excellent", 0.0),
            row(base + 10_000, 70.0, "good", 0.02),
            row(base + 15_000, 50.0, "poor", 0.07),
            row(base + MINUTE + 5_000, 95.0, "excellent", 0.0),
            Write::Maintain {
                before: base + 2 * MINUTE,
                raw_cutoff: base + MINUTE,
                rollup_cutoff: base - MINUTE,
            },
        ];
        write_batch(&pool, &writes).await.unwrap();

        let minutes = samples(
            &pool,
            "ha-quang",
            0,
            base + 10 * MINUTE,
            Resolution::Minute,
            100,
        )
        .await
        .unwrap();
        assert_eq!(minutes.len(), 2);
        assert_eq!(minutes[0].t, base / 1000);
        assert!((minutes[0].score - 70.0).abs() < 1e-9, "{:?}", minutes[0]);
        // A minute is as bad as its worst sample.
        assert_eq!(minutes[0].level, "poor");
        assert!((minutes[0].loss_in.unwrap() - 0.03).abs() < 1e-9);
        assert_eq!(minutes[1].level, "excellent");

        // Raw samples before the raw cutoff are gone; the later one stays.
        let raw = samples(
            &pool,
            "ha-quang",
            0,
            base + 10 * MINUTE,
            Resolution::Raw,
            100,
        )
        .await
        .unwrap();
        assert_eq!(raw.len(), 1);
        assert_eq!(raw[0].t, (base + MINUTE + 5_000) / 1000);

        // Roll-ups past their retention go too.
        let prune = Write::Maintain {
            before: base,
            raw_cutoff: base,
            rollup_cutoff: base + MINUTE,
        };
        write_batch(&pool, &[prune]).await.unwrap();
        let minutes = samples(
            &pool,
            "ha-quang",
            0,
            base + 10 * MINUTE,
            Resolution::Minute,
            100,
        )
        .await
        .unwrap();
        assert_eq!(minutes.len(), 1);
        assert_eq!(minutes[0].t, (base + MINUTE) / 1000);
    }
}
