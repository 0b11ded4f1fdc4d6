// One simulated GPU shard (a tensor-parallel rank). It holds its "weights" in memory,
// reports ready after the load delay, and acknowledges every decode step. It dies with its
// parent: an orphaned rank is useless, as in real engines.

export interface WorkerMessage {
  type: 'ready' | 'ack';
  step?: number;
  rank: number;
}

export function runWorker(rank: number, loadMs: number, weightsMb: number): void {
  const send = (m: WorkerMessage): void => {
    process.send?.(m);
  };
  // Touch every page so the memory is really resident (anonymous, not file-backed).
  const weights = Buffer.alloc(Math.round(weightsMb * 1024 * 1024));
  for (let i = 0; i < weights.length; i += 4096) weights[i] = (i / 4096 + rank) & 0xff;

  process.on('disconnect', () => process.exit(1));
  process.on('message', (m: { type?: string; step?: number }) => {
    if (m?.type === 'step') {
      // A step reads a little of the weights, so a stopped process cannot fake progress.
      const i = (m.step ?? 0) % Math.max(1, weights.length);
      if (weights.length > 0) weights[i] = (weights[i] as number) ^ 1;
      send({ type: 'ack', step: m.step, rank });
    }
  });
  setTimeout(() => send({ type: 'ready', rank }), loadMs);
}
