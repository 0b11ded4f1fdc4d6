// The fault plug-ins, by kind. A plan names a kind; an unknown one is refused with this list.
import type { FaultInjector } from '../src/fault/types.js';
import { nodeKill } from './node-kill.js';

export const FAULTS: Readonly<Record<string, FaultInjector<unknown>>> = {
  [nodeKill.kind]: nodeKill as FaultInjector<unknown>,
};

export function faultKinds(): string[] {
  return Object.keys(FAULTS).sort();
}
