-- The study ledger, version 1. Times are Unix epoch milliseconds (UTC).
-- No patient name, patient ID or birth date is stored anywhere in this schema.

-- One row per study: where it came from, where it is, what the service concluded.
CREATE TABLE studies (
    study_uid            TEXT PRIMARY KEY,
    job_id               TEXT,              -- the latest reception of the study
    incoming_prefix      TEXT,              -- its received files (what `studies retry` re-reads)
    accession_number     TEXT NOT NULL DEFAULT '',
    station_name         TEXT NOT NULL DEFAULT '',
    manufacturer         TEXT NOT NULL DEFAULT '',
    model                TEXT NOT NULL DEFAULT '',
    series_uid           TEXT NOT NULL DEFAULT '',
    series_number        TEXT NOT NULL DEFAULT '',
    series_description   TEXT NOT NULL DEFAULT '',
    received_at_ms       BIGINT,
    finished_at_ms       BIGINT,
    state                TEXT NOT NULL DEFAULT 'in_progress', -- in_progress | done | dead_lettered
    status               TEXT,              -- ok | technical_defect | abstained
    reason_code          TEXT,
    reason_text          TEXT,
    has_fracture         BOOLEAN,
    fracture_probability DOUBLE PRECISION,
    max_deformity        DOUBLE PRECISION,
    bone_density_level   TEXT,
    bone_density_hu      DOUBLE PRECISION,
    bone_density_category TEXT,             -- ISCD 2023 reading
    bone_density_band    TEXT,              -- Pickhardt 2013 band
    end_to_end_ms        BIGINT,
    sla_met              BOOLEAN,
    delivery             TEXT,              -- delivered | failed
    result_key           TEXT
);
CREATE INDEX studies_accession ON studies (accession_number);
CREATE INDEX studies_station_received ON studies (station_name, received_at_ms);
CREATE INDEX studies_received ON studies (received_at_ms);

-- Graded vertebrae of a study's latest result.
CREATE TABLE findings (
    study_uid     TEXT NOT NULL REFERENCES studies (study_uid) ON DELETE CASCADE,
    level         TEXT NOT NULL,
    genant_grade  SMALLINT NOT NULL,
    deformity     DOUBLE PRECISION NOT NULL,
    deformity_type TEXT NOT NULL,
    PRIMARY KEY (study_uid, level)
);

-- Milliseconds per stage (and end_to_end) of a study's latest result.
CREATE TABLE stage_times (
    study_uid TEXT NOT NULL REFERENCES studies (study_uid) ON DELETE CASCADE,
    stage     TEXT NOT NULL,
    ms        BIGINT NOT NULL,
    PRIMARY KEY (study_uid, stage)
);

-- Receptions: a job before ingest knows its study.
CREATE TABLE jobs (
    job_id          TEXT PRIMARY KEY,
    incoming_prefix TEXT NOT NULL,
    received_at_ms  BIGINT NOT NULL
);

-- The events feed, once each (event_id is deterministic: a replay adds nothing).
CREATE TABLE events (
    event_id    TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL,
    study_uid   TEXT,
    stage       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    at_ms       BIGINT NOT NULL,
    reason      TEXT,
    destination TEXT
);
CREATE INDEX events_job ON events (job_id);
CREATE INDEX events_study ON events (study_uid);

-- Instances acknowledged per destination.
CREATE TABLE deliveries (
    study_uid        TEXT NOT NULL,
    destination      TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    job_id           TEXT NOT NULL,
    delivered_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (study_uid, destination, sop_instance_uid)
);
