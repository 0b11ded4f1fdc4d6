// Row shapes of the store, as SQLite holds them (times in epoch ms; JSON in TEXT columns).

export type RunStatus = 'running' | 'completed' | 'aborted' | 'failed';

export interface RunRow {
  id: string;
  plan_name: string;
  plan_json: string;
  plan_source: string | null;
  status: RunStatus;
  started_at: number;
  load_started_at: number | null;
  load_ended_at: number | null;
  ended_at: number | null;
  time_scale: number;
  seed: number;
  error: string | null;
  host: string | null;
  gauntlet_version: string | null;
  /** JSON: {name, capabilities} of the load engine. */
  engine: string | null;
  /** Where the run is in its life (migration 8); 'done' once it ended, whatever its status. */
  phase?: RunPhase;
  phase_at?: number | null;
  /** Load start + the plan's duration, on the run's clock. */
  planned_end_at?: number | null;
  /** Scheduled faults run or skipped so far. */
  faults_done?: number;
  /** host|pid|start time of the Gauntlet process running it. */
  owner?: string | null;
  /** The model the load used (migration 10). */
  model?: string | null;
  /** How often a daemon took the run up after the Gauntlet running it was killed. */
  resumes?: number;
}

export type RunPhase = 'prepare' | 'start' | 'steady' | 'stop' | 'finalize' | 'done';

export interface NodeRow {
  run_id: string;
  name: string;
  endpoint: string;
  container_id: string | null;
  container_name: string | null;
  image: string | null;
  restart_count_start: number | null;
  restart_count_end: number | null;
  /** The Docker engine of its container, as the report names it; null for a bare endpoint. */
  docker_engine?: string | null;
}

export { isSuccess, type Outcome } from '../load/outcome.js';
import type { Outcome } from '../load/outcome.js';

export interface RequestRow {
  run_id: string;
  node: string;
  seq: number;
  attempt: number;
  final: boolean;
  mix: string;
  prompt_tokens: number | null;
  max_tokens: number | null;
  scheduled_at: number;
  sent_at: number;
  /** When the response began (headers); null when none came. */
  response_at: number | null;
  first_token_at: number | null;
  end_at: number;
  ttft_ms: number | null;
  e2e_ms: number;
  queue_delay_ms: number | null;
  outcome: Outcome;
  status: number | null;
  output_tokens: number | null;
  tokens_source: 'usage' | 'chunks' | null;
  chunks: number;
  itl_max_ms: number | null;
  error: string | null;
}

export interface ProbeRow {
  run_id: string;
  node: string;
  kind: 'health' | 'inference';
  sent_at: number;
  response_at: number | null;
  latency_ms: number;
  ok: boolean;
  status: number | null;
  error: string | null;
}

export interface DockerEventRow {
  run_id: string;
  node: string;
  container_id: string;
  at: number;
  action: string;
  exit_code: number | null;
  attributes: string;
}

export type FaultState = 'injecting' | 'active' | 'reverted' | 'failed' | 'skipped';

export interface FaultRow {
  id: string;
  run_id: string | null;
  kind: string;
  node: string;
  params: string;
  undo: string;
  state: FaultState;
  planned_at: number | null;
  injected_at: number | null;
  reverted_at: number | null;
  detail: string | null;
  revert_action: string | null;
  error: string | null;
  /** host|pid|start-time of the Gauntlet process that injected it. */
  owner: string | null;
  /** The mechanism used where there is a choice (netem, proxy, iptables …). */
  driver?: string | null;
  /** What the fault turned out to do (JSON), e.g. oom: OOM-killed or survived with numbers. */
  result?: string | null;
  /** The container it touched, for the label/rule sweep. */
  container_id?: string | null;
  /** The engine of that container (JSON EngineSpec); null: DOCKER_HOST's. */
  engine?: string | null;
}

export interface RunEventRow {
  run_id: string;
  at: number;
  kind: string;
  message: string;
  detail: string | null;
}

export interface NodeStateRow {
  run_id: string;
  node: string;
  at: number;
  detected_at: number;
  state: 'up' | 'busy' | 'degraded' | 'down' | 'recovering';
  reason: string;
}

export interface TelemetryRow {
  run_id: string;
  node: string;
  at: number;
  metric: string;
  value: number;
}

export type EpisodeStatus = 'open' | 'recovered' | 'recovery_failed';

export interface EpisodeRow {
  id: string;
  run_id: string;
  node: string;
  status: EpisodeStatus;
  cause: string;
  fault_id: string | null;
  started_at: number;
  detected_at: number;
  running_again_at: number | null;
  ready_at: number | null;
  serving_again_at: number | null;
  first_evidence: string;
  evidence: string;
  requests_affected: number;
}

export interface LoadWindowRow {
  run_id: string;
  node: string;
  window_start: number;
  part: number;
  window_ms: number;
  attempts: number;
  ok: number;
  failed: number;
  cancelled: number;
  retries: number;
  final_ok: number;
  final_failed: number;
  /** JSON {outcome: count} */
  outcomes: string;
  output_tokens: number;
  tokens_from_usage: number;
  tokens_from_chunks: number;
  schedule_misses: number;
  /** Arrivals due in the window (0 in runs from before schema 5: unknown). */
  planned: number;
}

export interface LatencyWindowRow {
  run_id: string;
  node: string;
  window_start: number;
  part: number;
  metric: string;
  count: number;
  min_ms: number;
  max_ms: number;
  mean_ms: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  /** HdrHistogram compressed base64 (µs) */
  hist: string;
}

export interface TelemetryRollupRow {
  run_id: string;
  node: string;
  metric: string;
  span_start: number;
  span_ms: number;
  count: number;
  sum: number;
  min: number;
  max: number;
  first_at: number;
  first_value: number;
  last_at: number;
  last_value: number;
}

export interface ScheduleFireRow {
  schedule: string;
  due_at: number;
  fired_at: number;
  outcome: 'started' | 'queued' | 'skipped';
  run_id: string | null;
  reason: string | null;
}
