// A Unix-socket relay in front of the Docker engine, for tests of Gauntlet losing it: cut
// (connections dropped, socket removed), silent (connections accepted, nothing relayed either
// way: an engine that stopped answering), and up again.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export const ENGINE_SOCKET = process.env.DOCKER_SOCKET ?? '/var/run/docker.sock';

export class Relay {
  private server: Server | null = null;
  private readonly open = new Set<Socket>();
  private silent = false;
  constructor(readonly path: string) {}

  async up(): Promise<void> {
    this.silent = false;
    if (this.server) return;
    const server = createServer((client) => {
      this.open.add(client);
      if (this.silent) {
        // Accepted and never answered; what the client sends is read and dropped.
        client.on('data', () => undefined).on('error', () => this.open.delete(client)).on('close', () => this.open.delete(client));
        return;
      }
      const engine = createConnection(ENGINE_SOCKET);
      this.open.add(engine);
      const drop = (): void => {
        client.destroy();
        engine.destroy();
        this.open.delete(client);
        this.open.delete(engine);
      };
      client.on('error', drop).on('close', drop);
      engine.on('error', drop).on('close', drop);
      client.on('data', (d) => void (this.silent || engine.write(d)));
      engine.on('data', (d) => void (this.silent || client.write(d)));
    });
    await new Promise<void>((res, rej) => server.once('error', rej).listen(this.path, () => res()));
    this.server = server;
  }

  /** The engine stops answering: connections stay open (new ones are accepted) and nothing goes through. */
  hush(): void {
    this.silent = true;
  }

  async cut(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const sock of this.open) sock.destroy();
    this.open.clear();
    if (s) await new Promise<void>((res) => s.close(() => res()));
  }
}
