import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './free-port.js';

/** One line of the balancer's access log: which instance answered what. */
export interface BalancedRequest {
  /** `127.0.0.1:PORT` of the instance that answered (nginx's `$upstream_addr`). */
  upstream: string;
  method: string;
  /** Path and query. */
  uri: string;
  status: number;
  /** The request's `X-Test-Call` header (tests set it to the CallSid), or `''`. */
  testCall: string;
}

/** Debian's nginx in front of several callme processes, started by a test. */
export interface NginxBalancer {
  /** Where clients (the simulated Twilio) send requests. */
  url: string;
  port: number;
  /** The requests nginx has logged so far, in order. */
  requests(): Promise<BalancedRequest[]>;
  /** The generated configuration, for a failure message or the README. */
  config: string;
  stop(): Promise<void>;
}

export interface NginxBalancerOptions {
  /** `host:port` of each instance; nginx takes them in turn (round robin). */
  upstreams: string[];
  /** Its port on 127.0.0.1; instances must know it before they start, since it is their `PUBLIC_URL`. Default: a free one. */
  port?: number;
}

const candidates = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'];

/** The nginx binary, or `undefined` when it is not installed (`.ci/run` installs Debian's). */
export function findNginx(): string | undefined {
  const onPath = (process.env.PATH ?? '').split(path.delimiter).map((dir) => path.join(dir, 'nginx'));
  for (const file of [...candidates, ...onPath]) {
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here; try the next place
    }
  }
  return undefined;
}

/**
 * The configuration a test runs nginx with: everything (pid, logs, temporary
 * bodies) under its own prefix, in the foreground (`daemon off`, so the test
 * owns the process), one worker (nginx keeps a round-robin turn per worker). The parts that matter for callme are the
 * same as the README's example: round robin over the instances, keep-alive
 * connections to them, WebSocket upgrades passed through for media streams,
 * and Twilio's `X-Twilio-Signature` passed untouched (callme checks it
 * against `PUBLIC_URL`, not the Host header).
 */
export function nginxConfig(options: { prefix: string; port: number; upstreams: string[]; runAsRoot: boolean }): string {
  const { prefix, port, upstreams } = options;
  return `# generated for a test; see README "Running several instances"
${options.runAsRoot ? 'user root;\n' : ''}daemon off;
master_process on;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  log_format balanced '$upstream_addr $request_method "$request_uri" $status "$http_x_test_call"';
  access_log ${prefix}/access.log balanced;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream callme {
${upstreams.map((upstream) => `    server ${upstream};`).join('\n')}
    keepalive 64;
  }
  # The same instances for <Play> downloads, with a round-robin turn of their own, so
  # a call's consecutive webhooks alternate between instances whatever audio it fetches.
  upstream callme_audio {
${upstreams.map((upstream) => `    server ${upstream};`).join('\n')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 1m;
    location / {
      proxy_pass http://callme;
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 3600s;
    }
    location /audio/ {
      proxy_pass http://callme_audio;
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header Connection '';
    }
  }
}
`;
}

/** Starts nginx on a free loopback port in front of `upstreams` and waits until it accepts connections. */
export async function startNginxBalancer(options: NginxBalancerOptions): Promise<NginxBalancer> {
  const binary = findNginx();
  if (!binary) throw new Error('nginx is not installed (apt-get install nginx)');
  const prefix = await mkdtemp(path.join(tmpdir(), 'callme-nginx-'));
  const port = options.port ?? (await freePort());
  const config = nginxConfig({ prefix, port, upstreams: options.upstreams, runAsRoot: process.getuid?.() === 0 });
  const configFile = path.join(prefix, 'nginx.conf');
  await writeFile(configFile, config);
  const child: ChildProcess = spawn(binary, ['-p', prefix, '-c', configFile, '-e', path.join(prefix, 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let running = true;
  void exited.then(() => (running = false));

  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    const log = await readFile(path.join(prefix, 'error.log'), 'utf8').catch(() => '');
    if (!running || Date.now() > deadline) {
      child.kill('SIGKILL');
      await rm(prefix, { recursive: true, force: true });
      throw new Error(`nginx did not start:\n${stderr}${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    config,
    async requests() {
      // nginx writes each line when the request ends, and a short request at a time: a read sees whole lines.
      const text = await readFile(path.join(prefix, 'access.log'), 'utf8').catch(() => '');
      return text.split('\n').filter(Boolean).map(parseLine).filter((line): line is BalancedRequest => line !== undefined);
    },
    async stop() {
      if (running) {
        // SIGQUIT: nginx's graceful stop (finish requests in flight).
        child.kill('SIGQUIT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(prefix, { recursive: true, force: true });
    },
  };
}

const linePattern = /^(\S+) (\S+) "([^"]*)" (\d+) "([^"]*)"$/;

function parseLine(line: string): BalancedRequest | undefined {
  const match = linePattern.exec(line);
  if (!match) return undefined;
  return { upstream: match[1], method: match[2], uri: match[3], status: Number(match[4]), testCall: match[5] === '-' ? '' : match[5] };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

