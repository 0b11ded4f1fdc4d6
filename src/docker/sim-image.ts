// Builds Gauntlet's images locally, with no registry: FROM scratch plus the host's node binary,
// the shared libraries `ldd` lists for it, and a bundle — the simulator (dist/sim.cjs) for
// `gauntlet-sim`, the fault proxy (dist/helpers/proxy.cjs) for `gauntlet-helper`. The tag
// carries a hash of those inputs, so a changed bundle gets a new image.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { GauntletError } from '../errors.js';
import type { Logger } from '../log.js';
import { packageRoot } from '../util/paths.js';
import type { Docker } from './engine.js';

const run = promisify(execFile);
export const SIM_IMAGE_REPO = 'gauntlet-sim';
export const SIM_PORT = 8000;

/** The bundled simulator that goes into the image (built by `npm run build`). */
export function simBundlePath(): string {
  return join(packageRoot(), 'dist', 'sim.cjs');
}

/** The files a dynamically linked binary needs, from `ldd` output. */
export function parseLdd(output: string): string[] {
  const files: string[] = [];
  for (const line of output.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) files.push(m[1]);
  }
  return files;
}

/** Every file under a folder (following no symlinked folders), sorted. */
function listTree(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listTree(p));
    else if (e.isFile() || e.isSymbolicLink()) out.push(p);
  }
  return out.sort();
}

async function imageExists(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch {
    return false;
  }
}

/** What goes into a FROM-scratch image besides node and its libraries. */
interface ScratchImageSpec {
  repo: string;
  /** Host file → path in the image. */
  files: { src: string; dest: string; content: Buffer }[];
  /**
   * Dockerfile lines after `FROM scratch` and `COPY rootfs/ /`. The context holds only the listed
   * files: an empty directory (/tmp) does not reach the image, so nothing may rely on one.
   */
  dockerfile: string[];
  /** What the build log calls it. */
  what: string;
  /** Host programs to copy in (path in the image = host path), with the libraries `ldd` lists for each. */
  programs?: { src: string; dest: string }[];
  /** Host folders copied in whole (their files, recursively; e.g. iptables' extensions). */
  trees?: string[];
}

/**
 * Builds (unless present) `<repo>:<hash>` FROM scratch: the host's node binary, the libraries
 * `ldd` lists for it, and the given files; also tags it `<repo>:latest`. The hash covers the
 * files, the node version and the library list, so a changed input gets a new image.
 */
async function ensureScratchImage(docker: Docker, log: Logger, spec: ScratchImageSpec): Promise<string> {
  const nodeBin = process.execPath;
  const programs = spec.programs ?? [];
  const libSet = new Set<string>();
  for (const bin of [nodeBin, ...programs.map((p) => p.src)]) {
    const { stdout } = await run('ldd', [bin]).catch((err: Error) => {
      throw new GauntletError('GAUNTLET_DOCKER_IMAGE_BUILD', [spec.repo, `ldd ${bin}: ${err.message}`]);
    });
    for (const lib of parseLdd(stdout)) libSet.add(lib);
  }
  const libs = [...libSet].sort();
  const treeFiles = (spec.trees ?? []).flatMap((dir) => listTree(dir));
  const h = createHash('sha256');
  for (const f of spec.files) h.update(f.content);
  for (const p of programs) h.update(p.dest).update(await readFile(p.src));
  for (const f of treeFiles) h.update(f).update(String(statSync(f).size));
  const hash = h.update(process.version).update(libs.join('\n')).digest('hex').slice(0, 12);
  const tag = `${spec.repo}:${hash}`;
  if (await imageExists(docker, tag)) return tag;

  log.info({ tag }, `building ${spec.what} image (FROM scratch, host node binary)`);
  const ctx = await mkdtemp(join(tmpdir(), `${spec.repo}-image-`));
  try {
    const files: string[] = ['Dockerfile'];
    const put = async (src: string, dest: string): Promise<void> => {
      const to = join(ctx, 'rootfs', dest);
      await mkdir(dirname(to), { recursive: true });
      await copyFile(src, to); // follows symlinks: the image gets the real file under the linked name
      files.push(join('rootfs', dest));
    };
    await put(nodeBin, '/usr/bin/node');
    for (const lib of libs) await put(lib, lib);
    for (const p of programs) await put(p.src, p.dest);
    for (const f of treeFiles) await put(f, f);
    for (const f of spec.files) await put(f.src, f.dest);
    await writeFile(join(ctx, 'Dockerfile'), ['FROM scratch', 'COPY rootfs/ /', ...spec.dockerfile, ''].join('\n'));
    const stream = await docker.buildImage({ context: ctx, src: files }, { t: tag, rm: true, forcerm: true });
    const output = await new Promise<{ error?: string; errorDetail?: { message?: string } }[]>((resolve, reject) => {
      docker.modem.followProgress(stream, (err: Error | null, res: unknown[]) => (err ? reject(err) : resolve(res as never)));
    });
    const failed = output.find((o) => o.error || o.errorDetail);
    if (failed) throw new Error(failed.errorDetail?.message ?? failed.error);
    await docker.getImage(tag).tag({ repo: spec.repo, tag: 'latest' });
    log.info({ tag }, `${spec.what} image built`);
    return tag;
  } catch (err) {
    if (err instanceof GauntletError) throw err;
    throw new GauntletError('GAUNTLET_DOCKER_IMAGE_BUILD', [tag, (err as Error).message], { cause: err });
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

async function readBundle(repo: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch {
    throw new GauntletError('GAUNTLET_DOCKER_IMAGE_BUILD', [repo, `${path} is missing; run npm run build first`]);
  }
}

/** Returns the tag of an up-to-date simulator image, building it if needed. */
export async function ensureSimImage(docker: Docker, log: Logger): Promise<string> {
  const bundle = simBundlePath();
  const sim = await readBundle(SIM_IMAGE_REPO, bundle);
  return ensureScratchImage(docker, log, {
    repo: SIM_IMAGE_REPO,
    what: 'simulator',
    files: [{ src: bundle, dest: '/opt/gauntlet/sim.cjs', content: sim }],
    dockerfile: [
      'ENV NODE_OPTIONS=--max-old-space-size=256',
      `EXPOSE ${SIM_PORT}`,
      'LABEL gauntlet=1 gauntlet.component=sim',
      'ENTRYPOINT ["/usr/bin/node", "/opt/gauntlet/sim.cjs"]',
      `CMD ["--host", "0.0.0.0", "--port", "${SIM_PORT}"]`,
    ],
  });
}

export const HELPER_IMAGE_REPO = 'gauntlet-helper';
/** Where the fault proxy lives in the helper image; the image's entrypoint runs it. */
export const HELPER_PROXY_PATH = '/opt/gauntlet/proxy.cjs';

/** The bundled fault proxy that goes into the helper image (built by `npm run build`). */
export function proxyBundlePath(): string {
  return join(packageRoot(), 'dist', 'helpers', 'proxy.cjs');
}

/**
 * Returns the tag of an up-to-date fault-helper image (node and the TCP fault proxy; its
 * entrypoint is the proxy, so a container's command is the proxy's flags), building it if needed.
 */
export async function ensureHelperImage(docker: Docker, log: Logger): Promise<string> {
  const bundle = proxyBundlePath();
  const proxy = await readBundle(HELPER_IMAGE_REPO, bundle);
  return ensureScratchImage(docker, log, {
    repo: HELPER_IMAGE_REPO,
    what: 'fault helper',
    files: [{ src: bundle, dest: HELPER_PROXY_PATH, content: proxy }],
    dockerfile: ['ENV NODE_OPTIONS=--max-old-space-size=128', 'LABEL gauntlet=1 gauntlet.component=helper-image', `ENTRYPOINT ["/usr/bin/node", "${HELPER_PROXY_PATH}"]`],
  });
}

export interface SimContainerSpec {
  name: string;
  /** Value of the gauntlet.target label; the plan can select the container by it. */
  targetLabel: string;
  gpus: number;
  loadMs: number;
  ttftMs?: number;
  itlMs?: number;
  /** Host port on 127.0.0.1 (fixed: a Docker-chosen port changes at every restart). */
  hostPort: number;
  memoryMb?: number;
  /** Docker restart policy; default on-failure (restart after a crash, as in production). */
  restart?: 'no' | 'on-failure';
  extraArgs?: string[];
  labels?: Record<string, string>;
  /**
   * Share the host's network instead of publishing a port: the simulator then listens on
   * 127.0.0.1:hostPort itself. For an engine run without a bridge network (a test's second
   * dockerd).
   */
  hostNetwork?: boolean;
}

/** Creates and starts a simulator container (restart on-failure by default), published on 127.0.0.1 only. */
export async function startSimContainer(docker: Docker, image: string, spec: SimContainerSpec): Promise<Docker.ContainerInspectInfo> {
  const args = spec.hostNetwork ? ['--host', '127.0.0.1', '--port', String(spec.hostPort)] : ['--host', '0.0.0.0', '--port', String(SIM_PORT)];
  args.push('--gpus', String(spec.gpus), '--load-ms', String(spec.loadMs));
  if (spec.ttftMs !== undefined) args.push('--ttft-ms', String(spec.ttftMs));
  if (spec.itlMs !== undefined) args.push('--itl-ms', String(spec.itlMs));
  args.push(...(spec.extraArgs ?? []));
  const container = await docker.createContainer({
    name: spec.name,
    Image: image,
    Cmd: args,
    Labels: { gauntlet: '1', 'gauntlet.component': 'sim', 'gauntlet.target': spec.targetLabel, ...spec.labels },
    ...(spec.hostNetwork ? {} : { ExposedPorts: { [`${SIM_PORT}/tcp`]: {} } }),
    HostConfig: {
      ...(spec.hostNetwork
        ? { NetworkMode: 'host' }
        : { PortBindings: { [`${SIM_PORT}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: String(spec.hostPort) }] } }),
      RestartPolicy: { Name: spec.restart ?? 'on-failure', MaximumRetryCount: 0 },
      ...(spec.memoryMb ? { Memory: spec.memoryMb * 1024 * 1024, MemorySwap: spec.memoryMb * 1024 * 1024 } : {}),
    },
  });
  await container.start();
  return container.inspect();
}

/** Removes containers by name, ignoring those already gone. */
export async function removeContainers(docker: Docker, names: string[]): Promise<void> {
  await Promise.all(
    names.map(async (n) => {
      try {
        await docker.getContainer(n).remove({ force: true });
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      }
    }),
  );
}

export const AGENT_IMAGE_REPO = 'gauntlet-agent';

/** Where the agent's programs are on this machine (Debian: util-linux, iptables, iproute2). */
const AGENT_PROGRAMS = ['/usr/bin/nsenter', '/usr/bin/unshare', '/usr/bin/true', '/usr/sbin/iptables', '/usr/sbin/iptables-save', '/usr/sbin/tc', '/usr/sbin/ip', '/usr/bin/ss'];
const XTABLES_DIRS = ['/usr/lib/x86_64-linux-gnu/xtables', '/usr/lib/aarch64-linux-gnu/xtables', '/usr/lib/xtables'];

/**
 * Returns the tag of an up-to-date agent image (src/fault/host-access.ts), building it on the
 * engine if needed: node, nsenter, iptables (and its extensions), tc, ip and ss, from this
 * machine, with their libraries. Its entrypoint is node.
 */
export async function ensureAgentImage(docker: Docker, log: Logger): Promise<string> {
  const missing = AGENT_PROGRAMS.filter((p) => {
    try {
      return !statSync(p).isFile();
    } catch {
      return true;
    }
  });
  if (missing.length > 0) throw new GauntletError('GAUNTLET_DOCKER_IMAGE_BUILD', [AGENT_IMAGE_REPO, `this machine lacks ${missing.join(', ')} (apt-get install util-linux iptables iproute2)`]);
  const xtables = XTABLES_DIRS.filter((d) => {
    try {
      return statSync(d).isDirectory();
    } catch {
      return false;
    }
  });
  return ensureScratchImage(docker, log, {
    repo: AGENT_IMAGE_REPO,
    what: 'agent',
    files: [{ src: '/etc/protocols', dest: '/etc/protocols', content: await readFile('/etc/protocols').catch(() => Buffer.from('tcp 6 TCP\nudp 17 UDP\n')) }],
    programs: AGENT_PROGRAMS.map((p) => ({ src: p, dest: p })),
    trees: xtables,
    dockerfile: ['LABEL gauntlet=1 gauntlet.component=agent-image', 'ENTRYPOINT ["/usr/bin/node"]'],
  });
}
