-- Sites, meetings, their invitations and join tokens, attendance, and the server's
-- secrets. Times are milliseconds since the Unix epoch, UTC (BIGINT). Identifiers are
-- TEXT chosen by the application. Plain SQL that PostgreSQL accepts as well.

-- The directory of sites. A deleted site is retired, not removed: past meetings keep
-- naming it.
CREATE TABLE sites (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    tier TEXT NOT NULL CHECK (tier IN ('central', 'province', 'commune')),
    kind TEXT CHECK (kind IN ('ward', 'commune')),
    -- Directory order: the default file's order, new sites at the end.
    position BIGINT NOT NULL,
    retired BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE meetings (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    agenda TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    chair_site TEXT NOT NULL REFERENCES sites (code),
    floor_mode TEXT NOT NULL CHECK (floor_mode IN ('chair', 'open')),
    status TEXT NOT NULL CHECK (status IN ('scheduled', 'cancelled')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK (ends_at > starts_at)
);

CREATE INDEX meetings_by_time ON meetings (starts_at);

-- The sites a meeting invites, the chair among them with role 'chair'.
CREATE TABLE invitations (
    meeting_id TEXT NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    site_code TEXT NOT NULL REFERENCES sites (code),
    role TEXT NOT NULL CHECK (role IN ('chair', 'participant')),
    PRIMARY KEY (meeting_id, site_code)
);

CREATE INDEX invitations_by_site ON invitations (site_code);

-- Every join token issued, by its id (the JWT's jti). A token is accepted only while
-- its row exists and is not revoked.
CREATE TABLE join_tokens (
    id TEXT PRIMARY KEY,
    meeting_id TEXT NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    site_code TEXT NOT NULL REFERENCES sites (code),
    role TEXT NOT NULL CHECK (role IN ('chair', 'participant', 'observer')),
    issued_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX join_tokens_by_meeting ON join_tokens (meeting_id, site_code);

-- The roll call: one record per site and meeting, written by the running meeting.
CREATE TABLE attendance (
    meeting_id TEXT NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    site_code TEXT NOT NULL REFERENCES sites (code),
    status TEXT NOT NULL CHECK (status IN ('not_called', 'present', 'late', 'left', 'absent')),
    joined_at BIGINT,
    left_at BIGINT,
    reason TEXT,
    PRIMARY KEY (meeting_id, site_code)
);

-- Values made once and kept: the join-token signing key, the admin token's hash.
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
