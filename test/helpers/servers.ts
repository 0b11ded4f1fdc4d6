// A stand-in for an inference server where only health and the model list matter (the load
// itself comes from elsewhere: a replaying engine, a failing engine).
import { createServer } from 'node:http';
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
