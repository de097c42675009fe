import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';

const run = promisify(execFile);

/** A private PostgreSQL server a test owns: its own data folder and port, stopped and started at will. */
export interface ThrowawayPostgres {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication, loopback only). */
  readonly url: string;
  readonly port: number;
  /** The folder holding the cluster, its socket and its log. */
  readonly folder: string;
  /**
   * Stops the server. `fast` (the default) ends sessions and shuts down
   * cleanly; `immediate` is the closest to a crash that keeps the folder usable.
   */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts it again on the same port and data, resolving once it accepts connections. */
  start(): Promise<void>;
  /** Stops it if running and removes its folder. */
  destroy(): Promise<void>;
}

/** Options of {@link startThrowawayPostgres}. */
export interface ThrowawayPostgresOptions {
  /** The folder holding `initdb` and `pg_ctl`; found under /usr/lib/postgresql by default. */
  binDir?: string;
}

/**
 * `initdb` into a temporary folder and `pg_ctl start` on a free loopback
 * port. PostgreSQL refuses to run as root, so when the tests run as root (as
 * in CI containers) the binaries run as the `postgres` user, which owns the folder.
 */
export async function startThrowawayPostgres(options: ThrowawayPostgresOptions = {}): Promise<ThrowawayPostgres> {
  const binDir = options.binDir ?? (await findPostgresBinDir());
  const folder = await mkdtemp(path.join(tmpdir(), 'callme-pg-'));
  const dataDir = path.join(folder, 'data');
  const runAs = await postgresUserIfRoot();
  if (runAs) await chown(folder, runAs.uid, runAs.gid);
  const exec = async (binary: string, args: string[]) => {
    const file = path.join(binDir, binary);
    const [command, commandArgs] = runAs ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
    try {
      return await run(command, commandArgs, { cwd: folder, timeout: 60_000 });
    } catch (error) {
      const { stderr, stdout } = error as { stderr?: string; stdout?: string };
      throw new Error(`${binary} ${args.join(' ')} failed: ${(stderr || stdout || String(error)).trim()}`);
    }
  };

  let running = false;
  let port = 0;
  const start = async () => {
    // The socket lives in the private folder so no other cluster's socket is touched.
    const settings = ['-p', String(port), '-k', folder, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'];
    await exec('pg_ctl', ['start', '-D', dataDir, '-l', path.join(folder, 'server.log'), '-w', '-t', '60', '-o', settings.join(' ')]);
    running = true;
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    if (!running) return;
    await exec('pg_ctl', ['stop', '-D', dataDir, '-m', mode, '-w', '-t', '60']);
    running = false;
  };

  try {
    // --no-sync and fsync=off: durability against a power cut is not what these tests are about; a clean stop still flushes everything.
    await exec('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    port = await freePort();
    await start();
  } catch (error) {
    await stop('immediate').catch(() => {});
    await rm(folder, { recursive: true, force: true });
    throw error;
  }

  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    folder,
    stop,
    start,
    async destroy() {
      await stop('immediate').catch(() => {});
      await rm(folder, { recursive: true, force: true });
    },
  };
}

/** The newest PostgreSQL installed under /usr/lib/postgresql/<version>/bin. */
export async function findPostgresBinDir(root = '/usr/lib/postgresql'): Promise<string> {
  const versions = existsSync(root) ? await readdir(root) : [];
  const candidates = versions
    .filter((version) => existsSync(path.join(root, version, 'bin', 'pg_ctl')))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  if (candidates.length === 0) throw new Error(`no PostgreSQL server binaries (pg_ctl) under ${root}/*/bin`);
  return path.join(root, candidates[0]!, 'bin');
}

async function postgresUserIfRoot(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const id = async (flag: string) => Number((await run('id', [flag, 'postgres'])).stdout.trim());
  try {
    return { uid: await id('-u'), gid: await id('-g') };
  } catch {
    throw new Error('running as root, and there is no "postgres" user to run PostgreSQL as (initdb refuses root)');
  }
}

