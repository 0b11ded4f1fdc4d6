// Schema migrations, applied in order inside one transaction each. Never edit a shipped
// migration: add the next one. Times are epoch milliseconds (REAL, sub-ms precision).

export const MIGRATIONS: readonly string[] = [
  /* 1 */ `
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
    gauntlet_version TEXT,
    engine        TEXT            -- load engine and what it can measure (JSON)
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

  -- One row per request attempt (optional: load.raw_requests); the windows below always exist.
  CREATE TABLE requests (
    run_id        TEXT NOT NULL,
    node          TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    attempt       INTEGER NOT NULL DEFAULT 1,
    final         INTEGER NOT NULL DEFAULT 1,
    mix           TEXT NOT NULL DEFAULT 'default',
    prompt_tokens INTEGER,
    max_tokens    INTEGER,
    scheduled_at  REAL NOT NULL,
    sent_at       REAL NOT NULL,
    response_at   REAL,
    first_token_at REAL,
    end_at        REAL NOT NULL,
    ttft_ms       REAL,
    e2e_ms        REAL NOT NULL,
    queue_delay_ms REAL,
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
    response_at   REAL,
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
    error         TEXT,
    owner         TEXT            -- host|pid|start-time of the Gauntlet process that injected it
  );
  CREATE INDEX faults_state ON faults(state);

  -- Per node and window: counters, and one HDR histogram per latency metric.
  CREATE TABLE load_windows (
    run_id        TEXT NOT NULL,
    node          TEXT NOT NULL,
    window_start  REAL NOT NULL,
    part          INTEGER NOT NULL DEFAULT 0,   -- > 0: samples that came after the window was written
    window_ms     REAL NOT NULL,
    attempts      INTEGER NOT NULL,
    ok            INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    cancelled     INTEGER NOT NULL,
    retries       INTEGER NOT NULL,
    final_ok      INTEGER NOT NULL,
    final_failed  INTEGER NOT NULL,
    outcomes      TEXT NOT NULL,
    output_tokens INTEGER NOT NULL,
    tokens_from_usage  INTEGER NOT NULL,
    tokens_from_chunks INTEGER NOT NULL,
    schedule_misses INTEGER NOT NULL,
    PRIMARY KEY (run_id, node, window_start, part)
  );
  CREATE TABLE latency_windows (
    run_id        TEXT NOT NULL,
    node          TEXT NOT NULL,
    window_start  REAL NOT NULL,
    part          INTEGER NOT NULL DEFAULT 0,
    metric        TEXT NOT NULL,
    count         INTEGER NOT NULL,
    min_ms        REAL NOT NULL,
    max_ms        REAL NOT NULL,
    mean_ms       REAL NOT NULL,
    p50_ms        REAL NOT NULL,
    p90_ms        REAL NOT NULL,
    p99_ms        REAL NOT NULL,
    hist          TEXT NOT NULL,
    PRIMARY KEY (run_id, node, window_start, part, metric)
  );

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
  /* 2 */ `
  -- The ledger learns 'skipped' (blast radius, halt, unsupported here: recorded, never touched),
  -- which mechanism a fault used, what it turned out to do, and the container it touched —
  -- so a revert after a crash, and the label sweep, know where to look.
  CREATE TABLE faults_v2 (
    id            TEXT PRIMARY KEY,
    run_id        TEXT,
    kind          TEXT NOT NULL,
    node          TEXT NOT NULL,
    params        TEXT NOT NULL,
    undo          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('injecting','active','reverted','failed','skipped')),
    planned_at    REAL,
    injected_at   REAL,
    reverted_at   REAL,
    detail        TEXT,
    revert_action TEXT,
    error         TEXT,
    owner         TEXT,
    driver        TEXT,
    result        TEXT,
    container_id  TEXT
  );
  INSERT INTO faults_v2 (id,run_id,kind,node,params,undo,state,planned_at,injected_at,reverted_at,detail,revert_action,error,owner)
    SELECT id,run_id,kind,node,params,undo,state,planned_at,injected_at,reverted_at,detail,revert_action,error,owner FROM faults;
  DROP TABLE faults;
  ALTER TABLE faults_v2 RENAME TO faults;
  CREATE INDEX faults_state ON faults(state);
  CREATE INDEX faults_run ON faults(run_id);

  -- The run's journal of decisions that are not rows elsewhere: halts, skipped injections,
  -- orchestrator notes. Chaos Toolkit's journal, in SQL.
  CREATE TABLE run_events (
    run_id        TEXT NOT NULL,
    at            REAL NOT NULL,
    kind          TEXT NOT NULL,
    message       TEXT NOT NULL,
    detail        TEXT
  );
  CREATE INDEX run_events_run ON run_events(run_id, at);
  `,
  /* 3 */ `
  -- Each node's state over time (up, busy, down, recovering): when the evidence says it began
  -- (at), when the detector decided it (detected_at), and why. Availability counts busy spans
  -- (health probes failing while the node serves) as available.
  CREATE TABLE node_states (
    run_id        TEXT NOT NULL,
    node          TEXT NOT NULL,
    at            REAL NOT NULL,
    detected_at   REAL NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('up','busy','degraded','down','recovering')),
    reason        TEXT NOT NULL
  );
  CREATE INDEX node_states_run ON node_states(run_id, node, at);
  `,
  /* 4 */ `
  -- Node telemetry as time series: the container's memory and CPU (Docker stats) and the
  -- node's own Prometheus metrics (vLLM's names), one row per sample and metric.
  CREATE TABLE telemetry (
    run_id        TEXT NOT NULL,
    node          TEXT NOT NULL,
    at            REAL NOT NULL,
    metric        TEXT NOT NULL,
    value         REAL NOT NULL
  );
  CREATE INDEX telemetry_run ON telemetry(run_id, node, metric, at);
  `,
  /* 5 */ `
  -- Every planned arrival accounted for: how many the schedule had due in each window, sent or
  -- not (planned = sent + missed + interrupted + cancelled). 0 for windows of older runs.
  ALTER TABLE load_windows ADD COLUMN planned INTEGER NOT NULL DEFAULT 0;
  `,
  /* 6 */ `
  -- Hourly rollups (an hour of plan time per node): the windows of the hour merged, written in
  -- the same transaction as the window that closed the hour, so a report reads one row per node
  -- and hour. last_window: the latest window merged — windows after the node's last rollup (a
  -- run that crashed mid-hour) are read from load_windows. part > 0: windows that came late.
  CREATE TABLE load_rollups (
    run_id        TEXT NOT NULL,
    node          TEXT NOT NULL,
    span_start    REAL NOT NULL,
    part          INTEGER NOT NULL,
    span_ms       REAL NOT NULL,
    windows       INTEGER NOT NULL,
    last_window   REAL NOT NULL,
    attempts      INTEGER NOT NULL,
    ok            INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    cancelled     INTEGER NOT NULL,
    retries       INTEGER NOT NULL,
    final_ok      INTEGER NOT NULL,
    final_failed  INTEGER NOT NULL,
    outcomes      TEXT NOT NULL,
    output_tokens INTEGER NOT NULL,
    tokens_from_usage  INTEGER NOT NULL,
    tokens_from_chunks INTEGER NOT NULL,
    schedule_misses INTEGER NOT NULL,
    planned       INTEGER NOT NULL,
    PRIMARY KEY (run_id, node, span_start, part)
  );
  CREATE TABLE latency_rollups (
    run_id        TEXT NOT NULL,
    node          TEXT NOT NULL,
    span_start    REAL NOT NULL,
    part          INTEGER NOT NULL,
    metric        TEXT NOT NULL,
    count         INTEGER NOT NULL,
    min_ms        REAL NOT NULL,
    max_ms        REAL NOT NULL,
    mean_ms       REAL NOT NULL,
    p50_ms        REAL NOT NULL,
    p90_ms        REAL NOT NULL,
    p99_ms        REAL NOT NULL,
    hist          TEXT NOT NULL,
    PRIMARY KEY (run_id, node, span_start, part, metric)
  );
  `,
  /* 7 */ `
  -- Telemetry per node, metric and hour: what a report and a trend need without reading every
  -- sample (count, sum, min, max, first and last). Samples after a node's metric's last rollup
  -- (a run that crashed mid-hour) are read from telemetry.
  CREATE TABLE telemetry_rollups (
    run_id        TEXT NOT NULL,
    node          TEXT NOT NULL,
    metric        TEXT NOT NULL,
    span_start    REAL NOT NULL,
    span_ms       REAL NOT NULL,
    count         INTEGER NOT NULL,
    sum           REAL NOT NULL,
    min           REAL NOT NULL,
    max           REAL NOT NULL,
    first_at      REAL NOT NULL,
    first_value   REAL NOT NULL,
    last_at       REAL NOT NULL,
    last_value    REAL NOT NULL,
    PRIMARY KEY (run_id, node, metric, span_start)
  );
  -- The generator verdict reads only windows that show a signal.
  CREATE INDEX load_windows_missed ON load_windows(run_id, window_start) WHERE schedule_misses > 0;
  CREATE INDEX latency_windows_queue ON latency_windows(run_id, p99_ms) WHERE metric = 'queue_delay';
  `,
  /* 8 */ `
  -- Where a run is in its life, in the store rather than in the process that runs it, so a
  -- daemon restarted after a crash can tell a run cut off mid-way (phase not 'done', owner gone)
  -- and take it up: prepare → start → steady (load, faults, detection) → stop → finalize
  -- (reverts, flush, report) → done. planned_end_at: load start + duration (the run's clock);
  -- faults_done: scheduled faults run or skipped so far (the next is faults_done + 1);
  -- owner: host|pid|start time of the Gauntlet process running it.
  ALTER TABLE runs ADD COLUMN phase TEXT NOT NULL DEFAULT 'done' CHECK (phase IN ('prepare','start','steady','stop','finalize','done'));
  ALTER TABLE runs ADD COLUMN phase_at REAL;
  ALTER TABLE runs ADD COLUMN planned_end_at REAL;
  ALTER TABLE runs ADD COLUMN faults_done INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE runs ADD COLUMN owner TEXT;
  `,
  /* 9 */ `
  -- Each time a daemon schedule came due: whether it started a run, was queued behind one or
  -- skipped (and why), so a nightly soak that did not happen says so the next morning.
  CREATE TABLE schedule_fires (
    schedule   TEXT NOT NULL,
    due_at     REAL NOT NULL,
    fired_at   REAL NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('started','queued','skipped')),
    run_id     TEXT,
    reason     TEXT
  );
  CREATE INDEX schedule_fires_by_schedule ON schedule_fires(schedule, due_at);
  `,
  /* 10 */ `
  -- What a daemon restarted after a crash needs to take a run up: the model the load used
  -- (a resumed run does not ask a node that may be down), and how often it was resumed (episode
  -- ids, window parts and the load's seed of each resumption are its own).
  ALTER TABLE runs ADD COLUMN model TEXT;
  ALTER TABLE runs ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0;
  `,
  /* 11 */ `
  -- The Docker engine a fault's container is on (JSON: name, host, TLS or SSH key files), so a
  -- revert after a crash goes to that engine without the plan; NULL: DOCKER_HOST's.
  ALTER TABLE faults ADD COLUMN engine TEXT;
  -- The engine each node's container is on, as the report names it ("rack-b (tcp://…)").
  ALTER TABLE nodes ADD COLUMN docker_engine TEXT;
  `,
];
