// Request bodies. A pool of prompts of the requested length is made once from the seed and
// their JSON bodies pre-serialised, so sending costs no string building.
import { seededRandom, deriveSeed } from '../util/random.js';
import type { Workload } from './types.js';

const WORDS =
  'tell me about the history of distributed systems and why consensus is hard when nodes fail and networks partition while clients keep sending requests to every replica'.split(
    ' ',
  );

/** About four characters per token, as for English text with common tokenizers. */
function promptText(tokens: number, seed: number): string {
  const rng = seededRandom(seed);
  const parts: string[] = [];
  let chars = 0;
  while (chars < tokens * 4) {
    const w = WORDS[Math.floor(rng.next() * WORDS.length)] as string;
    parts.push(w);
    chars += w.length + 1;
  }
  return parts.join(' ');
}

export function requestBodies(w: Pick<Workload, 'api' | 'model' | 'promptTokens' | 'maxTokens' | 'stream' | 'seed'>, count = 32): string[] {
  const bodies: string[] = [];
  for (let i = 0; i < count; i++) {
    const text = promptText(w.promptTokens, deriveSeed(w.seed, `prompt-${i}`));
    const common = {
      model: w.model,
      max_tokens: w.maxTokens,
      stream: w.stream,
      ...(w.stream ? { stream_options: { include_usage: true } } : {}),
    };
    bodies.push(JSON.stringify(w.api === 'chat' ? { ...common, messages: [{ role: 'user', content: text }] } : { ...common, prompt: text }));
  }
  return bodies;
}

export function apiPath(api: Workload['api']): string {
  return api === 'chat' ? '/v1/chat/completions' : '/v1/completions';
}
