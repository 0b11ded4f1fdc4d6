// The fault plug-ins, by kind. A plan names a kind; an unknown one is refused with this list.
import type { FaultInjector } from '../src/fault/types.js';
import { gpuMemoryPressure } from './gpu-memory-pressure.js';
import { gpuWorkerKill } from './gpu-worker-kill.js';
import { hang } from './hang.js';
import { latency } from './latency.js';
import { nodeKill } from './node-kill.js';
import { oom } from './oom.js';
import { packetLoss } from './packet-loss.js';

export const FAULTS: Readonly<Record<string, FaultInjector<unknown>>> = {
  [nodeKill.kind]: nodeKill as FaultInjector<unknown>,
  [gpuWorkerKill.kind]: gpuWorkerKill as FaultInjector<unknown>,
  [gpuMemoryPressure.kind]: gpuMemoryPressure as FaultInjector<unknown>,
  [hang.kind]: hang as FaultInjector<unknown>,
  [oom.kind]: oom as FaultInjector<unknown>,
  [packetLoss.kind]: packetLoss as FaultInjector<unknown>,
  [latency.kind]: latency as FaultInjector<unknown>,
};

export function faultKinds(): string[] {
  return Object.keys(FAULTS).sort();
}
