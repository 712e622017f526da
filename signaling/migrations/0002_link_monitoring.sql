-- Line-stability monitoring: each site's line over time, what happened to it, and
-- the alerts raised. Times are Unix milliseconds, like the rest of the schema.

-- One row per site per sample interval (5 s by default), kept raw_retention_hours.
CREATE TABLE link_samples (
    site TEXT NOT NULL,
    at INTEGER NOT NULL,
    meeting_id TEXT,
    score REAL NOT NULL,
    level TEXT NOT NULL,
    rtt_ms REAL,
    loss_in REAL,
    loss_out REAL,
    jitter_ms REAL,
    bitrate_in REAL,
    bitrate_out REAL
);
CREATE INDEX link_samples_site_at ON link_samples (site, at);
CREATE INDEX link_samples_at ON link_samples (at);

-- One row per site per minute: averages, the worst score and level of the minute.
CREATE TABLE link_rollups (
    site TEXT NOT NULL,
    at INTEGER NOT NULL,
    score REAL NOT NULL,
    min_score REAL NOT NULL,
    level TEXT NOT NULL,
    rtt_ms REAL,
    loss_in REAL,
    loss_out REAL,
    jitter_ms REAL,
    bitrate_in REAL,
    bitrate_out REAL,
    PRIMARY KEY (site, at)
);
CREATE INDEX link_rollups_at ON link_rollups (at);

-- Joins, leaves, drops, reconnections and level changes.
CREATE TABLE link_events (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    level TEXT,
    previous TEXT,
    detail TEXT
);
CREATE INDEX link_events_site_at ON link_events (site, at);

CREATE TABLE link_alerts (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    level TEXT,
    message TEXT NOT NULL,
    meeting_id TEXT
);
CREATE INDEX link_alerts_at ON link_alerts (at);
