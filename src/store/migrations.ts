// Schema migrations, applied in order inside one transaction each. Never edit a shipped
// migration: add the next one. Times are epoch milliseconds (REAL, sub-ms precision).

export const MIGRATIONS: readonly string[] = [
  /* 1: the walking skeleton */ `
  CREATE TABLE runs (
    id            TEXT PRIMARY KEY,
    plan_name     TEXT NOT NULL,
    plan_json     TEXT NOT NULL,
    plan_source   TEXT,
    status        TEXT NOT NULL CHECK (status IN ('running','completed','aborted','failed')),
    started_at    REAL NOT NULL,
    load_started_at REAL,
    load_ended_at REAL,
    ended_at      REAL,
    time_scale    REAL NOT NULL DEFAULT 1,
    seed          INTEGER NOT NULL,
    error         TEXT,
    host          TEXT,
    gauntlet_version TEXT
  );

  CREATE TABLE nodes (
    run_id        TEXT NOT NULL REFERENCES runs(id),
    name          TEXT NOT NULL,
    endpoint      TEXT NOT NULL,
    container_id  TEXT,
    container_name TEXT,
    image         TEXT,
    restart_count_start INTEGER,
    restart_count_end   INTEGER,
    PRIMARY KEY (run_id, name)
  );

  CREATE TABLE requests (
    run_id        TEXT NOT NULL,
    node          TEXT NOT NULL,
    scheduled_at  REAL NOT NULL,
    sent_at       REAL NOT NULL,
    first_token_at REAL,
    end_at        REAL NOT NULL,
    ttft_ms       REAL,
    e2e_ms        REAL NOT NULL,
    queue_delay_ms REAL NOT NULL,
    outcome       TEXT NOT NULL,
    status        INTEGER,
    output_tokens INTEGER,
    tokens_source TEXT,
    chunks        INTEGER NOT NULL DEFAULT 0,
    itl_max_ms    REAL,
    error         TEXT
  );
  CREATE INDEX requests_run_node_sent ON requests(run_id, node, sent_at);

  CREATE TABLE probes (
    run_id        TEXT NOT NULL,
    node          TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('health','inference')),
    sent_at       REAL NOT NULL,
    latency_ms    REAL NOT NULL,
    ok            INTEGER NOT NULL,
    status        INTEGER,
    error         TEXT
  );
  CREATE INDEX probes_run_node_sent ON probes(run_id, node, sent_at);

  CREATE TABLE docker_events (
    run_id        TEXT NOT NULL,
    node          TEXT NOT NULL,
    container_id  TEXT NOT NULL,
    at            REAL NOT NULL,
    action        TEXT NOT NULL,
    exit_code     INTEGER,
    attributes    TEXT NOT NULL
  );
  CREATE INDEX docker_events_run ON docker_events(run_id, at);

  -- The fault ledger: a row is written (state 'injecting', with its undo record) before the
  -- target is touched, and every later step is recorded next to it.
  CREATE TABLE faults (
    id            TEXT PRIMARY KEY,
    run_id        TEXT,
    kind          TEXT NOT NULL,
    node          TEXT NOT NULL,
    params        TEXT NOT NULL,
    undo          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('injecting','active','reverted','failed')),
    planned_at    REAL,
    injected_at   REAL,
    reverted_at   REAL,
    detail        TEXT,
    revert_action TEXT,
    error         TEXT
  );
  CREATE INDEX faults_state ON faults(state);

  CREATE TABLE episodes (
    id            TEXT PRIMARY KEY,
    run_id        TEXT NOT NULL,
    node          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('open','recovered','recovery_failed')),
    cause         TEXT NOT NULL,
    fault_id      TEXT,
    started_at    REAL NOT NULL,
    detected_at   REAL NOT NULL,
    running_again_at REAL,
    ready_at      REAL,
    serving_again_at REAL,
    first_evidence TEXT NOT NULL,
    evidence      TEXT NOT NULL,
    requests_affected INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX episodes_run ON episodes(run_id, started_at);
  `,
  /* 2: the process that owns a fault, so another Gauntlet sharing the database does not
        revert a fault that a live run is still measuring; and when each response began,
        which is what "serving again" is measured from */ `
  ALTER TABLE faults ADD COLUMN owner TEXT;
  ALTER TABLE requests ADD COLUMN response_at REAL;
  ALTER TABLE probes ADD COLUMN response_at REAL;
  `,
];
