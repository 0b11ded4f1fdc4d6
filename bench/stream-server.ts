// The benchmarks' server: as cheap as an OpenAI-style server can be, so the client is what is
// measured. Streams `--chunks` content chunks per request, `--gap-ms` apart, each stamped with
// its send time in field "t" (epoch ms, the same clock base as Gauntlet's); answers
// non-streamed requests at once. Run it pinned to its own core.
import { createServer } from 'node:http';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i] as string, process.argv[i + 1] as string);
const port = Number(args.get('--port') ?? 18900);
const chunks = Number(args.get('--chunks') ?? 64);
const gapMs = Number(args.get('--gap-ms') ?? 1);
const now = (): number => performance.timeOrigin + performance.now();
const head = 'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" tok"},"finish_reason":null}],"t":';
const tail = `data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\ndata: {"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":${chunks},"total_tokens":${chunks + 8}}}\n\ndata: [DONE]\n\n`;
const json = `{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"length"}],"usage":{"prompt_tokens":8,"completion_tokens":${chunks},"total_tokens":${chunks + 8}}}`;

const server = createServer((req, res) => {
  if (req.url === '/health') return void res.end('{"status":"ok"}');
  if (req.url === '/clock') return void res.end(String(now()));
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    if (!body.includes('"stream":true')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
      return void res.end(json);
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let i = 0;
    const next = (): void => {
      if (res.destroyed) return;
      res.write(`${head}${now()}}\n\n`);
      if (++i < chunks) setTimeout(next, gapMs);
      else res.end(tail);
    };
    next();
  });
});
server.keepAliveTimeout = 10_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
process.on('SIGTERM', () => process.exit(0));
