// A stand-in for an inference server where only health and the model list matter (the load
// itself comes from elsewhere: a replaying engine, a failing engine).
import { createServer } from 'node:http';
import { afterAll, beforeAll } from 'vitest';
import type { AddressInfo } from 'node:net';

export async function standInServer(model = 'm'): Promise<{ endpoint: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume();
    res.end(req.url === '/v1/models' ? JSON.stringify({ data: [{ id: model }] }) : '{"status":"ok"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** Starts a stand-in server for the enclosing describe block (or file) and stops it after. */
export function useStandInServer(model = 'm'): { readonly endpoint: string } {
  let server: Awaited<ReturnType<typeof standInServer>> | null = null;
  beforeAll(async () => {
    server = await standInServer(model);
  });
  afterAll(() => server?.close());
  return {
    get endpoint(): string {
      if (!server) throw new Error('stand-in server not started yet (use it inside a test)');
      return server.endpoint;
    },
  };
}
