-- What the chair of a running meeting has decided, so that a restarted server resumes
-- the meeting as it was: open or not, who holds the floor, who waits for it, the
-- layout and the sites the chair muted. One row per meeting that has run, replaced on
-- every change. Lists are site codes joined by commas (a site code has no comma).
CREATE TABLE meeting_runs (
    meeting_id TEXT PRIMARY KEY REFERENCES meetings (id) ON DELETE CASCADE,
    opened BOOLEAN NOT NULL,
    floor TEXT,
    queue TEXT NOT NULL,
    layout TEXT NOT NULL,
    muted TEXT NOT NULL,
    saved_at BIGINT NOT NULL
);
